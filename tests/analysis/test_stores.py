"""Several stores, one analysis: two sqlite stores + an earlier report's runs.csv, a run id counted once;
MLflow's deprecated file store is refused with a hint."""

import json

from mlflow.tracking import MlflowClient

from repro_mlflow.cli import main

from .store import add_runs, study

COMPARED = ("verdict", "metrics", "groups", "equivalence", "factors", "tests", "environments", "n_runs")


def _stats(out) -> dict:
    res = json.loads((out / "analysis.json").read_text())
    return {"n_runs": res["n_runs"], "examples": [{k: ex[k] for k in COMPARED} for ex in res["examples"]]}


def test_two_stores_and_a_runs_csv_give_the_statistics_of_one_store(tmp_path, capsys):
    runs = study("S")  # 18 runs: 2 seeds x 3 environments x 3 repeats
    one = f"sqlite:///{tmp_path / 'one.db'}"
    c = MlflowClient(one)
    add_runs(c, c.create_experiment("study"), runs)
    lite, files = f"sqlite:///{tmp_path / 'laptop.db'}", f"sqlite:///{tmp_path / 'site.db'}"
    c = MlflowClient(lite)
    e = c.create_experiment("study")
    add_runs(c, e, runs[:6])
    add_runs(c, e, runs[12:], start=1_012)
    c = MlflowClient(files)
    add_runs(c, c.create_experiment("study"), runs[6:12], start=1_006)
    common = ["--sweep", "S", "--no-log", "--no-artifacts"]
    # an earlier report of the laptop's runs: its runs.csv holds the same 12 run ids again
    assert main(["analyze", "--store", lite, *common, "--out", str(tmp_path / "laptop")]) == 0
    assert main(["analyze", "--store", one, *common, "--out", str(tmp_path / "one")]) == 0
    assert main(["analyze", "--store", lite, "--store", files, "--store", str(tmp_path / "laptop" / "runs.csv"),
                 *common, "--out", str(tmp_path / "all")]) == 0
    assert _stats(tmp_path / "all") == _stats(tmp_path / "one")
    assert _stats(tmp_path / "all")["n_runs"] == 18
    res = json.loads((tmp_path / "all" / "analysis.json").read_text())
    assert res["selection"]["stores"][1] == files and res["n_runs_selected"] == 18
    # a runs.csv alone is a store too
    assert main(["analyze", "--store", str(tmp_path / "all" / "runs.csv"), *common, "--out", str(tmp_path / "csv")]) == 0
    assert _stats(tmp_path / "csv") == _stats(tmp_path / "one")


def test_runs_csv_keeps_text_that_pandas_would_read_as_missing(tmp_path):
    from repro_mlflow.analysis.table import read_table

    (tmp_path / "runs.csv").write_text("run_id,tags.repro.det.onednn,tags.x,metrics.m\nr1,n/a,NA,0.5\nr2,,null,\n")
    t = read_table(tmp_path / "runs.csv")
    assert t["tags.repro.det.onednn"].tolist()[0] == "n/a" and t["tags.x"].tolist() == ["NA", "null"]
    assert t["tags.repro.det.onednn"].isna().tolist() == [False, True] and t["metrics.m"].isna().tolist() == [False, True]


def test_a_file_store_is_refused_in_one_line_with_a_hint(tmp_path, capsys):
    store = tmp_path / "mlruns"
    (store / "0").mkdir(parents=True)
    (store / "0" / "meta.yaml").write_text("experiment_id: '0'\nname: Default\n")  # a store an older MLflow left
    assert main(["analyze", "--store", store.as_uri(), "--no-log", "--out", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "file store" in err and "mlflow migrate-filestore" in err
    assert not (tmp_path / "out").exists()
