"""`hydra/launcher=repro` in a Hydra app of its own, plugin discovery stays light, live progress reports failures."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

from .conftest import HERE, PROJECT, echo_args, runs, sweep


def test_plugin_discovery_imports_neither_mlflow_nor_a_framework(env):
    code = ("from hydra.core.plugins import Plugins; from hydra.plugins.launcher import Launcher;"
            "names = [p.__name__ for p in Plugins.instance().discover(Launcher)]; assert 'ReproLauncher' in names, names;"
            "import sys; heavy = [m for m in ('mlflow', 'tensorflow', 'keras', 'repro_mlflow.sweep.launch') if m in sys.modules];"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


def test_any_hydra_app_whose_job_is_an_mlflow_run_launches_through_repro(env, tracking):
    env = dict(env, ECHO_PROJECT=str(PROJECT))
    p = subprocess.run([sys.executable, str(HERE / "app" / "echo_app.py"), "-m", "seed=1,2,3", "hydra.launcher.detach=true"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "3 submitted in 1 batch(es)" in p.stderr
    found = runs(experiment="echo-app")
    assert sorted(r.data.params["seed"] for r in found) == ["1", "2", "3"]
    assert all("xla" not in r.data.params for r in found)  # the entry point does not declare it
    assert len({r.data.tags["repro.job_id"].rsplit(":", 1)[0] for r in found}) == 1  # one batch
    assert len({r.data.tags["repro.sweep"] for r in found}) == 1


def test_live_progress_reports_each_failure_as_it_happens_and_waits_for_the_rest(env, tracking):
    # seed 1 fails at once; seed 2 takes a few seconds longer: the failure line comes before the end.
    p = sweep(echo_args("seed=1,2", "sweep=live", "poll_interval=0.5", "hardware.backend_config.parallel=2",
                        "example.params.sleep=0", "+example.params.fail=true"), env, check=False, timeout=300)
    found = runs("tags.`repro.sweep` = 'live'")
    assert len(found) == 2 and all(r.info.status == "FAILED" for r in found)
    assert p.returncode == 1
    for r in found:
        assert f"FAILED run {r.info.run_id} on local: exit code 3" in p.stderr
    assert p.stderr.index("FAILED run") < p.stderr.index("sweep live: 2 FAILED")


def test_waiting_sweep_ends_when_every_run_finished(env, tracking):
    p = sweep(echo_args("seed=1,2", "sweep=ok", "poll_interval=0.5", "example.params.sleep=1"), env, timeout=300)
    found = runs("tags.`repro.sweep` = 'ok' and attributes.status = 'FINISHED'")
    assert len(found) == 2
    assert "sweep ok: 2 FINISHED" in p.stderr
    assert "2/2 ended" in p.stderr
