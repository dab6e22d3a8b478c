"""The one staging rule (repro_mlflow/schedulers/staging.py): what Slurm copies, HTCondor and EC2 tar.

A project with every credential of issue #22 planted (tests/planted.py), in a folder and in a git
checkout that tracks them: none is staged, the ordinary files are, and one line says what was left out.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from repro_mlflow.errors import ReproError
from repro_mlflow.schedulers import staging
from tests.planted import MARKER, NOTICE, ORDINARY, WITHHELD, files_holding_marker, make_git_checkout, plant, planted_in
from tests.test_imports import import_graph

JUNK = ["mlruns/0/meta.yaml", "mlflow.db", ".repro/batches/b1/x", "pkg/__pycache__/m.cpython-311.pyc", ".venv/bin/python",
        "outputs/2026-12-02/run.log", "node_modules/x/index.js", "m.pyc"]


def _project(tmp_path: Path, git: bool) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "MLproject").write_text("name: p\nentry_points:\n  main:\n    command: python train.py\n")
    plant(proj)
    for rel in JUNK:
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text("junk")
    if git:
        make_git_checkout(proj)  # tracks the credentials (and the junk) with `git add -f`
        (proj / ".gitignore").write_text("ignored.csv\n")
        (proj / "ignored.csv").write_text("git ignores me")
        (proj / "untracked.py").write_text("print('untracked but not ignored')")
        (proj / ".env.untracked").write_text("untracked credential")
    return proj


EXPECTED = sorted(["MLproject", "check_staged.py", *ORDINARY])


@pytest.mark.parametrize("git", [False, True], ids=["folder", "git"])
def test_no_credential_is_selected_and_the_notice_names_each(tmp_path, git):
    proj = _project(tmp_path, git)
    staged = staging.select_files(proj)
    assert staged.listing == ("git" if git else "walk")
    names = sorted(p.as_posix() for p in staged.files)
    assert planted_in(names) == []
    if git:
        assert names == sorted([*EXPECTED, ".gitignore", "untracked.py"])  # git's list: not ignored.csv
        assert staged.withheld == tuple(sorted([*WITHHELD, ".env.untracked"]))
    else:
        assert names == EXPECTED
        assert staged.withheld == tuple(WITHHELD)
        assert staged.notice() == NOTICE


@pytest.mark.parametrize("git", [False, True], ids=["folder", "git"])
def test_copy_and_tarball_hold_no_credential_and_say_so_once(tmp_path, git, capfd):
    proj = _project(tmp_path, git)
    dest = tmp_path / "staged"
    copied = staging.stage_project(proj, dest)
    assert files_holding_marker(dest) == []
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == \
        sorted(p.as_posix() for p in copied.files)
    buf = io.BytesIO()
    tarred = staging.tar_project(proj, buf)  # the same project staged a second time in this process
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        members = tar.getnames()
        assert not any(MARKER.encode() in tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert planted_in(members) == [] and sorted(members) == sorted(p.as_posix() for p in tarred.files)
    assert tarred == copied
    err = capfd.readouterr().err.splitlines()
    assert err == [copied.notice()]  # one line, once
    assert err[0].startswith("repro: not shipped: .aws/, .condor/tokens.d/, .databrickscfg, .env, ")


def test_a_symlink_to_a_credential_is_not_followed_into_the_batch(tmp_path, capfd):
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("secret")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "MLproject").write_text("name: p\n")
    (proj / "settings.ini").symlink_to(home / ".aws" / "credentials")
    (proj / "data.csv").symlink_to(tmp_path / "data.csv")  # an ordinary symlink: its content is shipped
    staged = staging.stage_project(proj, tmp_path / "staged")
    assert [p.as_posix() for p in staged.files] == ["MLproject", "data.csv"]
    assert (tmp_path / "staged" / "data.csv").read_text() == "a,b\n1,2\n"
    assert staged.withheld == ("settings.ini",)
    assert capfd.readouterr().err == "repro: not shipped: settings.ini (credentials)\n"


def test_nothing_to_say_when_nothing_is_withheld_and_excluded_paths_stay_out(tmp_path, capfd):
    proj = tmp_path / "proj"
    (proj / "batches" / "b1").mkdir(parents=True)
    (proj / "MLproject").write_text("name: p\n")
    (proj / "batches" / "b1" / "job.sh").write_text("#!/bin/sh\n")
    staged = staging.stage_project(proj, proj / "batches" / "b1" / "project", exclude=proj / "batches")
    assert [p.as_posix() for p in staged.files] == ["MLproject"] and staged.notice() is None
    assert capfd.readouterr().err == ""


def test_a_project_over_the_limit_is_refused_in_one_line(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "big.bin").write_bytes(b"\0" * (3 << 20))
    with pytest.raises(ReproError) as e:
        staging.tar_project(proj, tmp_path / "p.tar.gz", max_bytes=1 << 20)
    assert str(e.value) == f"the project in {proj} is 3 MiB, over the 1 MiB a batch ships; keep large data out of it"
    assert not (tmp_path / "p.tar.gz").exists()


def test_a_missing_project_is_one_line(tmp_path):
    with pytest.raises(ReproError, match=r"^the project directory .*nope does not exist$"):
        staging.select_files(tmp_path / "nope")


def test_git_list_and_walk_agree_on_an_untouched_checkout(tmp_path):
    """The same files from either list when git ignores nothing: the one rule, not two."""
    proj = _project(tmp_path, git=False)
    walked = staging.select_files(proj)
    make_git_checkout(proj)
    listed = staging.select_files(proj)
    assert (listed.listing, walked.listing) == ("git", "walk")
    assert (listed.files, listed.withheld) == (walked.files, walked.withheld)


@pytest.mark.parametrize("module", ["repro_mlflow.schedulers.slurm.scheduler", "repro_mlflow.schedulers.htcondor.pack",
                                    "repro_mlflow.schedulers.ec2.scheduler"])
def test_every_shipping_scheduler_stages_through_the_one_module(module):
    assert "repro_mlflow.schedulers.staging" in import_graph()[module]


def test_the_rule_is_importable_without_the_schedulers_heavy_packages():
    code = "import sys, repro_mlflow.schedulers.staging; sys.exit(any(m in sys.modules for m in ('boto3', 'htcondor2')))"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_the_docs_list_every_pattern_of_the_rule():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    section = doc.split("## Staging: what a batch ships", 1)[1].split("\n## ", 1)[0]
    names = [*staging.CREDENTIAL_NAMES, *staging.JUNK_NAMES, *staging.JUNK_DIRS]
    names += [f"{d}/" for d in staging.CREDENTIAL_DIRS] + [f"{a}/{b}/" for a, b in staging.CREDENTIAL_SUBDIRS]
    missing = [n for n in names if f"`{n}`" not in section and not (n.startswith("secrets.") and "`secrets.{" in section)]
    assert missing == []
