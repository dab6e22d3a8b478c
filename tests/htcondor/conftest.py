"""HTCondor tests: the real bindings with no pool (CONDOR_CONFIG=/dev/null), a schedd double, a tiny project."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

os.environ["CONDOR_CONFIG"] = "/dev/null"  # before htcondor2 is imported anywhere

import pytest  # noqa: E402

from repro_mlflow.schedulers.htcondor import scheduler as hc  # noqa: E402

from tests.services.htcondor import condor_env, condor_pool  # noqa: E402,F401  (the real pool's fixtures)

from .schedd_double import ScheddDouble  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "htcondor"


@pytest.fixture
def double(tmp_path, monkeypatch) -> ScheddDouble:
    """The schedd double, plugged in as the schedd every HTCondorScheduler connects to."""
    d = ScheddDouble(tmp_path / "pool", Path(sys.executable).parent)
    monkeypatch.setattr(hc, "SCHEDD_FACTORY", lambda name, collector: d)
    return d


@pytest.fixture
def experiment(tracking, tmp_path) -> str:
    """An experiment whose artifacts live in tmp_path (not in ./mlruns of wherever pytest runs)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking).create_experiment("htcondor", artifact_location=(tmp_path / "artifacts").as_uri())


@pytest.fixture
def project(tmp_path) -> Path:
    """A tiny MLflow project: `ok` logs a metric, `fail` exits 3, `slow` sleeps then logs."""
    p = tmp_path / "proj"
    p.mkdir()
    (p / "MLproject").write_text(textwrap.dedent("""\
        name: tiny
        entry_points:
          ok:
            parameters:
              x: {type: float, default: 1.5}
            command: "python train.py {x}"
          fail:
            command: "python -c 'import sys; sys.exit(3)'"
          slow:
            parameters:
              x: {type: float, default: 2.0}
            command: "python train.py {x} 4"
        """))
    (p / "train.py").write_text(textwrap.dedent("""\
        import sys, time
        import mlflow
        x = float(sys.argv[1])
        if len(sys.argv) > 2:
            time.sleep(float(sys.argv[2]))
        with mlflow.start_run():
            mlflow.log_param("seen_x", x)
            mlflow.log_metric("y", x * 2, step=0)
            mlflow.log_metric("y", x * 3, step=1)
        print("trained", x)
        """))
    return p
