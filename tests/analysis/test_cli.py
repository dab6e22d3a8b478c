"""`repro analyze` as a user runs it: JSON schema, output folder, analysis run, one-line errors."""

import json

import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.cli import main

from .store import add_runs, study

SCHEMA_KEYS = {"schema", "environment_by", "n_runs_selected", "n_runs", "excluded_by_status", "statuses", "bootstrap",
               "notes", "examples", "selection", "timing_s"}
EXAMPLE_KEYS = {"verdict", "environment_labels", "cost", "example", "n_runs", "environments", "n_environments", "n_configs", "primary_metric", "metrics",
                "outcomes", "groups", "equivalence", "tests", "env_variance", "factors", "predictions", "divergence",
                "summary", "notes", "variance", "explanation", "noise"}


@pytest.fixture
def store(tracking):
    client = MlflowClient(tracking)
    exp = client.create_experiment("study")
    add_runs(client, exp, study("S"))
    return tracking


def test_json_schema_and_values(store, capsys):
    assert main(["analyze", "--sweep", "S", "--json", "--no-report"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert SCHEMA_KEYS <= set(res) and res["schema"] == "repro-analysis/2"
    ex = res["examples"][0]
    assert EXAMPLE_KEYS <= set(ex)
    m = ex["metrics"]["test_accuracy"]
    assert {"n", "n_unique", "n_independent", "min", "max", "range", "mean", "std", "cv", "iqr", "std_ci"} <= set(m)
    assert "range_ci" not in m  # a bootstrap interval of a range can never exceed the observed range
    # 18 runs, but bit-identical repeats count once: 2 configs x (a: one outcome, b: one, c: two)
    assert (m["n"], m["n_independent"]) == (18, 8) and m["std_ci"] is not None
    assert {"term", "partial_omega_squared", "omega_ci"} <= set(ex["variance"]["terms"][0])
    assert {"config", "environment", "repeatable"} <= set(ex["groups"][0])
    assert {"classes", "reproducible"} <= set(ex["equivalence"][0])
    assert {"test", "statistic", "pvalue"} <= set(ex["tests"][0])
    assert {"factor", "eta_squared", "rank"} <= set(ex["factors"][0])
    assert "analysis_run_id" not in res
    assert list(ex)[0] == "verdict" and ex["verdict"]["repeatable"]["answer"] == "partly"
    assert [e["key"] for e in res["environment_legend"]] == ["a", "b", "c"]


def test_report_folder_and_analysis_run(store, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", "--sweep", "S", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "  repeatable: partly (4 of 6 config x environment groups bit-identical; not in site-y)\n" in text
    assert "  classes: site-x (a), site-x (b) | site-y (2 config(s))\n" in text
    assert {p.name for p in out.iterdir()} == {"report.html", "analysis.json", "runs.csv", "figures"}
    import pandas as pd

    table = pd.read_csv(out / "runs.csv")
    assert dict(zip(table["environment"], table["environment_label"])) == {"a": "site-x (a)", "b": "site-x (b)",
                                                                          "c": "site-y"}
    html = (out / "report.html").read_text()
    assert html.index('id="verdict"') < html.index("<h2>mnist_convnet</h2>")  # the verdict comes first
    res = json.loads((out / "analysis.json").read_text())
    client = MlflowClient(store)
    run = client.get_run(res["analysis_run_id"])
    assert run.data.tags["repro.analysis_of"] == "S"
    assert run.data.metrics["mnist_convnet.not_repeatable"] == 2
    # a second analysis does not analyse the first one
    assert main(["analyze", "--sweep", "S", "--json", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out)["n_runs_selected"] == 18


@pytest.mark.parametrize("args,message", [
    (["--experiment", "nope"], "no active experiment named 'nope'"),
    (["--sweep", "nope"], "no runs match the selection"),
    (["--by", "nope"], "no tag or param named 'nope'"),
    (["--by", "tags.nosuch"], "no selected run has the tag 'nosuch' (18 runs selected)"),
    (["--metric", "nope"], "no selected run has the metric 'nope'"),
    (["--filter", "params.x ~ 1"], "bad filter string"),
    (["--n-boot", "0"], "--n-boot must be at least 1"),
    (["--primary", "nope"], "no selected run has the metric 'nope'"),
    (["--store", "/nonexistent/dir"], "no tracking store at /nonexistent/dir (no such folder or runs.csv)"),
])
def test_bad_input_is_one_line_and_exit_1(store, capsys, args, message):
    assert main(["analyze", "--no-report", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("repro analyze: error:")
    assert MlflowClient(store).search_runs(["1"], "tags.`repro.analysis_of` != ''") == []  # no analysis run


def test_a_store_that_is_not_one_is_refused_and_not_created(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emptydir").mkdir()
    assert main(["analyze", "--store", "notastore"]) == 1
    assert main(["analyze", "--store", "emptydir"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["repro analyze: error: no tracking store at notastore (no such folder or runs.csv)",
                   "repro analyze: error: emptydir is not an MLflow tracking store (no experiment folder with meta.yaml)"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["emptydir"]


def test_a_missing_sqlite_store_is_refused_and_never_created(tmp_path, monkeypatch, capsys):
    """The analysis run's process (analysis/logrun.py) starts before the store is read: it must not make
    the missing database MLflow would create on opening it, even after the command has refused."""
    import psutil

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = {c.pid for c in psutil.Process().children()}
    assert main(["analyze", "--sweep", "S", "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.strip() == f"repro analyze: error: no tracking store at {uri} (no such sqlite file)"

    def cmdline(p: psutil.Process) -> list[str]:
        try:
            return p.cmdline()
        except psutil.Error:  # already ended
            return []

    loggers = [c for c in psutil.Process().children() if c.pid not in before
               and "repro_mlflow.analysis.logrun" in cmdline(c)]
    assert len(loggers) == 1  # started before the store was read
    assert loggers[0].environ()["REPRO_LOGRUN_URI"] == uri and uri not in loggers[0].cmdline()  # no URI in `ps`
    _gone, alive = psutil.wait_procs(loggers, timeout=60)  # it ends by itself once its imports are done
    assert alive == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("columns", ["80", "40", None])
def test_default_output_fits_any_width_whole(store, tmp_path, capsys, monkeypatch, columns):
    """At 80 columns, at 40, and with no terminal at all: no "…", every verdict line whole on one line."""
    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    else:
        monkeypatch.delenv("COLUMNS", raising=False)
    long_out = tmp_path / ("a-rather-long-folder-name-" * 4) / "out"  # the report path is printed first
    assert main(["analyze", "--sweep", "S", "--out", str(long_out), "--no-log"]) == 0
    text = capsys.readouterr().out
    res = json.loads((long_out / "analysis.json").read_text())
    assert "…" not in text
    lines = text.splitlines()
    assert f"report: {long_out / 'report.html'}" in lines
    for v in res["examples"][0]["verdict"]["lines"]:
        assert "  " + v in lines
    # the default shows the primary metric only (in the verdict); --metric adds one, --wide shows every metric
    assert any(x.startswith("  spread of test_accuracy: ") for x in lines) and "test_loss" not in text
    assert main(["analyze", "--sweep", "S", "--no-report", "--metric", "test_accuracy", "--metric", "test_loss"]) == 0
    assert "  test_loss: n 18" in capsys.readouterr().out
    assert main(["analyze", "--sweep", "S", "--no-report", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "…" not in wide and "  test_loss: n 18" in wide and "factors (marginal eta^2): environment" in wide


def test_no_figures_writes_no_figure(store, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", "--sweep", "S", "--out", str(out), "--no-log", "--no-figures"]) == 0
    assert (out / "report.html").exists() and (out / "runs.csv").exists()
    assert list(out.rglob("*.png")) == [] and list(out.rglob("*.svg")) == []
    assert "data:image/svg" not in (out / "report.html").read_text()


def test_by_a_plain_tag_on_a_sqlite_store(tracking, tmp_path, capsys):
    # docs/analysis.md, "Runs tracked without repro": `--by host` for a plain tag `host`, no --filter naming it
    import mlflow

    for host, acc in (("a", 0.5), ("a", 0.5), ("b", 0.6), ("b", 0.6)):
        with mlflow.start_run():
            mlflow.set_tag("host", host)
            mlflow.log_param("lr", "0.1")
            mlflow.log_metric("acc", acc)
    assert main(["analyze", "--by", "host", "--json", "--no-report"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["environment_by"] == "tags.host"
    assert res["examples"][0]["n_environments"] == 2
