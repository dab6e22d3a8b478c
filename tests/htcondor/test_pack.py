"""What travels to the execute point: the project without its stores and caches, the runtime as a zip."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile

import pytest

from repro_mlflow.schedulers.htcondor import pack as hp
from repro_mlflow.errors import ReproError
from tests.planted import MARKER, NOTICE, make_git_checkout, plant, planted_in


def test_project_tarball_leaves_out_vcs_stores_caches_and_the_batch(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    for rel in ["MLproject", "train.py", "pkg/mod.py", "data/small.csv", ".git/HEAD", "mlruns/0/meta.yaml",
                "mlflow.db", ".repro/batches/b1/project.tar.gz", "pkg/__pycache__/mod.cpython-311.pyc", ".venv/bin/python",
                "batch/batch.json"]:
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text("x")
    monkeypatch.setattr(hp, "MAX_PROJECT_BYTES", 1 << 20)
    out = proj / "batch" / "p.tar.gz"  # the batch directory inside the project: left out, with the tarball
    hp.pack_project(proj, out, skip=(proj / "batch",))
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["MLproject", "data/small.csv", "pkg/mod.py", "train.py"]
    (proj / "data" / "big.bin").write_bytes(b"\0" * (2 << 20))
    with pytest.raises(ReproError, match="over the 1 MiB a batch ships"):
        hp.pack_project(proj, tmp_path / "p2.tar.gz")


@pytest.mark.parametrize("git", [False, True], ids=["folder", "git"])
def test_project_tarball_holds_no_credential(tmp_path, git, capfd):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "MLproject").write_text("name: p\n")
    plant(proj)
    if git:
        make_git_checkout(proj)
    assert hp.pack_project(proj, tmp_path / "project.tar.gz") == tmp_path / "project.tar.gz"
    with tarfile.open(tmp_path / "project.tar.gz") as tar:
        assert planted_in(tar.getnames()) == []
        assert "train.py" in tar.getnames() and "check_staged.py" in tar.getnames()
        assert not any(MARKER.encode() in tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert capfd.readouterr().err.splitlines() == [NOTICE]


def test_runtime_zip_runs_from_pythonpath_alone(tmp_path):
    z = hp.pack_runtime(tmp_path / "repro_runtime.zip")
    names = zipfile.ZipFile(z).namelist()
    assert "repro_mlflow/runtime/__main__.py" in names and "repro_mlflow/fingerprint/__init__.py" in names
    assert not any("__pycache__" in n for n in names)
    r = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "--help"], cwd=tmp_path,
                       env={"PYTHONPATH": str(z), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "RECORD INDEX" in r.stdout and "--run-id" in r.stdout
    assert str(z) in subprocess.run([sys.executable, "-c", "import repro_mlflow; print(repro_mlflow.__file__)"],
                                    env={"PYTHONPATH": str(z)}, capture_output=True, text=True, cwd=tmp_path).stdout


def test_wrapper_is_executable_and_stdlib_only(tmp_path):
    w = hp.install_wrapper(tmp_path / "repro_job.py")
    assert w.stat().st_mode & 0o111
    assert w.read_text().startswith("#!/usr/bin/env python3\n")
    r = subprocess.run([sys.executable, "-I", str(w)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "usage: repro_job.py RUN_ID RUN_INDEX" in r.stderr
