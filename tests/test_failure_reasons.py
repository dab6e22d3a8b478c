"""Failures that explain themselves: the last error line of a command's output; `repro status` by reason."""

from mlflow.tracking import MlflowClient

from repro_mlflow.cli import main
from repro_mlflow.runtime.reason import explain, group, last_error_line
from tests.analysis.store import add_runs

TRACEBACK = """Epoch 1/2\r 10/100 [==>...]\r100/100 [======] loss 0.3
Traceback (most recent call last):
  File "train.py", line 3, in <module>
    main()
  File "train.py", line 2, in main
    raise ValueError("epochs must be positive")
ValueError: epochs must be positive
cleanup: something printed after
"""


def test_exception_last_line_wins():
    # a progress bar's carriage returns, a traceback, and an unindented line after it: the last such line
    assert last_error_line(TRACEBACK) == "cleanup: something printed after"
    assert last_error_line(TRACEBACK.rsplit("cleanup", 1)[0]) == "ValueError: epochs must be positive"
    # the runtime's own notes share the log but are never the command's reason
    assert last_error_line(TRACEBACK.replace("cleanup:", "repro runtime:")) == "ValueError: epochs must be positive"


def test_error_line_without_traceback_and_plain_last_line(tmp_path):
    assert last_error_line("step 1\nERROR: out of disk\nstep 2\n") == "ERROR: out of disk"
    assert last_error_line("one\n\x1b[31mtwo\x1b[0m\n\n") == "two"
    assert last_error_line("") is None
    log = tmp_path / "output.log"
    log.write_text("loading\nTraceback (most recent call last):\n  x\nKeyError: 'seed'\n")
    assert explain("exit code 1", log) == "exit code 1: KeyError: 'seed'"
    assert explain("exit code 1", tmp_path / "absent.log") == "exit code 1"
    assert explain(None, log) is None


def test_log_noise_is_never_the_reason():
    """As TensorFlow's output really ends when an example refuses its input (tests/examples/test_params.py)."""
    out = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
           "I0000 00:00:1796154402.706855   55450 port.cc:153] oneDNN custom operations are on. You may see "
           "slightly different numerical results due to floating-point round-off errors\n"
           "imbalanced_classification: no file at data_path 'nowhere.csv'\n"
           "W0000 00:00:1796154402.9 cleanup.cc:1] something at exit\n")
    assert last_error_line(out) == "imbalanced_classification: no file at data_path 'nowhere.csv'"
    assert last_error_line("run: error: bad flag\nbye\n") == "run: error: bad flag"
    assert last_error_line("a mention of errors in passing\nthe end\n") == "the end"


def test_group_counts_reasons_with_one_run_each():
    assert group([("r1", "a"), ("r2", "b"), ("r3", "a"), ("r4", None)]) == [
        (2, "a", "r1"), (1, "b", "r2"), (1, "no reason recorded", "r4")]


def test_repro_status_groups_three_failures_with_two_reasons_into_two_lines(tracking, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal does not cut a reason
    client = MlflowClient(tracking)
    exp = client.create_experiment("s")
    long_reason = "exit code 1: ValueError: epochs must be positive, got -3 (parameter epochs of mnist_convnet)"
    base = {"repro.backend": "local", "repro.sweep": "S", "repro.target": "local"}
    ids = add_runs(client, exp, [
        {"tags": {**base, "repro.status_reason": long_reason}, "status": "FAILED"},
        {"tags": {**base, "repro.status_reason": "exit code 137"}, "status": "FAILED"},
        {"tags": {**base, "repro.status_reason": long_reason}, "status": "FAILED"},
        {"tags": base, "status": "FINISHED"},
    ])
    assert main(["status", "--sweep", "S"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if " FAILED: " in x]
    assert len(lines) == 2
    assert lines[0] in (f"2 FAILED: {long_reason} (e.g. run {ids[0]})", f"2 FAILED: {long_reason} (e.g. run {ids[2]})")
    assert lines[1] == f"1 FAILED: exit code 137 (e.g. run {ids[1]})"


def test_repro_status_of_an_unknown_sweep_is_one_line_and_exit_1(tracking, capsys):
    assert main(["status", "--sweep", "nosuch"]) == 1
    ours = [x for x in capsys.readouterr().err.splitlines() if "mlflow.store.db.utils" not in x]  # MLflow's DB set-up
    assert ours == ["repro status: error: no repro runs of sweep 'nosuch'"]


def test_the_runtimes_own_notes_are_never_the_reason(tmp_path):
    """A command that fails silently keeps its bare exit code, whatever the runtime noted in the same log."""
    log = tmp_path / "output.log"
    log.write_text("repro runtime: REPRO_OFFLINE=1: logging to /x/offline only; `repro sync` replays it\n")
    assert explain("exit code 3", log) == "exit code 3"
    log.write_text("Traceback (most recent call last):\n  File \"t.py\", line 1\nKeyError: 'x'\n"
                   "repro runtime: tracking server away; still mirroring\n")
    assert explain("exit code 1", log) == "exit code 1: KeyError: 'x'"
