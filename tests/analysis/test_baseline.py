"""`repro analyze --baseline DIR`: a re-run checked against an earlier report, group by group."""

import json

from mlflow.tracking import MlflowClient

from repro_mlflow.cli import main

from .store import add_runs, study


def _analyse(sweep: str, out, *extra: str) -> int:
    return main(["analyze", "--sweep", sweep, "--out", str(out), "--no-log", "--no-artifacts", *extra])


def test_rerun_agrees_with_baseline_where_repeatable(tracking, tmp_path, capsys):
    client = MlflowClient(tracking)
    exp = client.create_experiment("study")
    add_runs(client, exp, study("first"))
    add_runs(client, exp, study("again"))
    assert _analyse("first", tmp_path / "base") == 0
    assert _analyse("again", tmp_path / "again", "--baseline", str(tmp_path / "base")) == 0
    b = json.loads((tmp_path / "again" / "analysis.json").read_text())["baseline"]
    # repeatable in the baseline: seeds 1, 2 x environments a, b (c is not); each checked against a, b and c now
    assert b["compared"] == 12 and b["absent"] == 0
    assert b["same_environment"] == {"agrees": 4, "differs": 0}
    # a and b agree with each other; c never gives the baseline's value
    assert b["other_environment"] == {"agrees": 4, "differs": 4}
    assert {r["environment"] for r in b["rows"] if r["verdict"] == "differs"} == {"c"}
    assert "Against the baseline" in (tmp_path / "again" / "report.html").read_text()
    assert "same environment 4 agree, 0 differ" in capsys.readouterr().out


def test_changed_result_fails_and_names_the_outcome(tracking, tmp_path, capsys):
    client = MlflowClient(tracking)
    exp = client.create_experiment("study")
    add_runs(client, exp, study("first"))
    changed = study("again")
    for r in changed:
        if r["tags"]["repro.fp.env"] == "a" and r["tags"]["repro.det.seed"] == 1:
            r["tags"]["repro.digest.weights"] = "w-moved"  # same metric, other weights
    add_runs(client, exp, changed)
    assert _analyse("first", tmp_path / "base") == 0
    assert _analyse("again", tmp_path / "again", "--baseline", str(tmp_path / "base")) == 1
    b = json.loads((tmp_path / "again" / "analysis.json").read_text())["baseline"]
    moved = [r for r in b["rows"] if r["verdict"] == "differs" and r["same_environment"]]
    assert [(r["environment"], r["config"], r["columns"]) for r in moved] == [("a", "seed=1", ["repro.digest.weights"])]
    assert "differs" in capsys.readouterr().out


def test_baseline_that_is_not_an_analysis_is_one_line(tracking, tmp_path, capsys):
    assert main(["analyze", "--no-report", "--baseline", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "not a `repro analyze` output folder" in err and "\n" not in err
