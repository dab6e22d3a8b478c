"""Secrets and who may read what (issue 28 item 3), on real processes and a real `mlflow server`.

Credentials in the tracking URI (`http://user:PW@host`) and MLflow's auth variables reach the job
through its environment and never any file the tool writes; the batch directory and the run's files
are the owner's alone; `repro logs` reads only what the batch record names."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.errors import ReproError
from repro_mlflow.schedulers.ec2.scheduler import EC2Scheduler
from repro_mlflow.schedulers.htcondor.scheduler import HTCondorScheduler
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from tests.conftest import BIN
from tests.helpers import wait_terminal
from tests.services.mlflow_server import MlflowServer

PASSWORD = "S3cret-PW-4711"
TOKEN = "tok-Secret-0815"

MLPROJECT = textwrap.dedent("""
    name: secrets
    entry_points:
      main:
        command: "python -c 'import os, mlflow; mlflow.start_run(); mlflow.log_metric(\\"v\\", 1); print(\\"the password backwards:\\", os.environ.get(\\"MLFLOW_TRACKING_PASSWORD\\", \\"\\")[::-1])'"
""")


@pytest.fixture
def project(tmp_path) -> Path:
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "MLproject").write_text(MLPROJECT)
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with MlflowServer.start(tmp_path_factory.mktemp("server")) as s:
        yield s


def _files_holding(root: Path, *secrets: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)]


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_credentials_in_the_uri_reach_the_job_never_a_file(server, project, tmp_path, monkeypatch, capfd):
    uri = server.uri.replace("http://", f"http://alice:{PASSWORD}@")
    home = tmp_path / "repro"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)  # an auth variable: passed on, never written
    monkeypatch.setenv("REPRO_HOME", str(home))
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    try:
        sub = mlflow.projects.run(str(project), "main", backend="repro-local", env_manager="local",
                                  experiment_name="secrets", synchronous=False)
        client = MlflowClient(uri)
        [run] = wait_terminal([sub.run_id], timeout=120, client=client)
    finally:
        mlflow.set_tracking_uri(None)
    assert run.info.status == "FINISHED", run.data.tags.get("repro.status_reason")
    assert run.data.metrics == {"v": 1.0}
    log = Path(client.download_artifacts(run.info.run_id, "repro/output.log", str(tmp_path / "dl"))).read_text()
    assert f"the password backwards: {PASSWORD[::-1]}" in log  # the job got the credentials, through its environment
    # in no file the tool wrote: the batch record, the driver's log, output.log, bundle.json, the local store
    workdir = Path(run.data.tags["repro.workdir"])
    assert (workdir / "batch.json").is_file() and (workdir / "0" / "offline" / "bundle.json").is_file()
    assert _files_holding(home, PASSWORD, TOKEN) == []
    assert _files_holding(server.root / "artifacts", PASSWORD, TOKEN) == []
    assert json.loads((workdir / "batch.json").read_text())["tracking_uri"] == server.uri
    out = capfd.readouterr()
    assert PASSWORD not in out.out + out.err and TOKEN not in out.out + out.err
    # the owner's alone: the batch directory and the run's folders 0700, its files 0600
    for d in (workdir, workdir / "0", workdir / "0" / "offline"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    for f in ("batch.json", "driver.log", "0/output.log", "0/offline/bundle.json", "0/offline/store.db"):
        assert _private(workdir / f), f


@pytest.mark.parametrize("scheduler", [HTCondorScheduler, EC2Scheduler])
def test_a_backend_that_cannot_pass_them_safely_refuses_in_one_line(tracking, project, tmp_path, scheduler):
    client = MlflowClient()
    exp = client.create_experiment("refused")
    with pytest.raises(ReproError) as e:
        submit_batch(client, scheduler(), [make_spec(project, "main", {})], project, exp,
                     f"http://alice:{PASSWORD}@127.0.0.1:1")
    assert "cannot pass the credentials of the tracking URI http://127.0.0.1:1" in str(e.value)
    assert "\n" not in str(e.value) and PASSWORD not in str(e.value)
    assert client.search_runs([exp]) == [] and not (tmp_path / "repro").exists()


def test_repro_logs_reads_only_what_the_batch_record_names(cli_env, tmp_path):
    client = MlflowClient()
    sub = mlflow.projects.run(str(_echo(tmp_path)), "main", backend="repro-local", env_manager="local",
                              synchronous=False)
    [run] = wait_terminal([sub.run_id], timeout=120)
    assert run.info.status == "FINISHED"
    rid = run.info.run_id

    def logs() -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "repro"), "logs", rid], env=cli_env, capture_output=True, text=True, timeout=120)

    own = logs()
    assert own.returncode == 0 and "hello from the run" in own.stdout, own.stderr
    # another output.log somewhere, and the run's tags pointed at it
    other = tmp_path / "other"
    (other / "0").mkdir(parents=True)
    (other / "0" / "output.log").write_text("NOT YOURS\n")
    client.set_tag(rid, "repro.job_id", f"host:{other}:0")
    client.set_tag(rid, "repro.workdir", str(other))
    p = logs()
    assert p.returncode == 0 and "hello from the run" in p.stdout and "NOT YOURS" not in p.stdout, p.stderr
    # a record of its own elsewhere, naming the real batch directory: not read
    forged = other / "batch.json"
    shutil.copy(run.data.tags["repro.record"], forged)
    client.set_tag(rid, "repro.record", str(forged))
    p = logs()
    assert p.returncode != 0 and "outside the batch directory of its record" in p.stderr, p.stderr
    assert "NOT YOURS" not in p.stdout and "hello from the run" not in p.stdout
    assert len(p.stderr.strip().splitlines()) == 1


def _echo(tmp_path: Path) -> Path:
    d = tmp_path / "echo"
    d.mkdir()
    (d / "MLproject").write_text('name: echo\nentry_points:\n  main:\n    command: "echo hello from the run"\n')
    return d


@pytest.mark.parametrize("given", ["environment", "override"])
def test_a_sweep_writes_the_password_nowhere(server, cli_env, tmp_path, given):
    from tests.sweep.conftest import echo_args, sweep

    uri = server.uri.replace("http://", f"http://alice:{PASSWORD}@")
    out = tmp_path / "multirun"
    env = dict(cli_env, MLFLOW_TRACKING_URI=uri if given == "environment" else server.uri,
               MLFLOW_TRACKING_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    args = echo_args("seed=1", "sweep=secret", f"experiment=secrets-{given}", "poll_interval=0.5",
                     "example.params.sleep=0", f"hydra.sweep.dir={out}")
    p = sweep(args + ([f"tracking_uri={uri}"] if given == "override" else []), env, timeout=300)
    assert "sweep secret: 1 FINISHED" in p.stderr, p.stderr
    assert PASSWORD not in p.stdout + p.stderr and TOKEN not in p.stdout + p.stderr
    # Hydra's multirun.yaml (and any .hydra/ of a job), the batch record, the logs, the local stores
    assert (out / "multirun.yaml").is_file()
    assert _files_holding(out, PASSWORD, TOKEN) == []
    assert _files_holding(tmp_path / "repro", PASSWORD, TOKEN) == []
    assert _files_holding(server.root, PASSWORD, TOKEN) == []  # the server's store and artifacts
    client = MlflowClient(server.uri)
    runs = client.search_runs([client.get_experiment_by_name(f"secrets-{given}").experiment_id])
    assert len(runs) == 1
    for run in runs:  # MLflow params and tags
        said = json.dumps([run.data.params, run.data.tags])
        assert PASSWORD not in said and TOKEN not in said
