"""No credential reaches an execute point: a project (a git checkout that tracks them) with every credential
planted, submitted to the real one-machine pool; the job looks for them in its sandbox."""

from __future__ import annotations

import tarfile
from pathlib import Path

from tests.htcondor.test_pool import _errors, _jobs, _submit, _sync_until_terminal, _workdir, pool  # noqa: F401
from tests.planted import MARKER, NOTICE, ORDINARY, make_git_checkout, plant, planted_in


def test_no_planted_credential_is_transferred_and_the_notice_is_one_line(pool, tracking, project, experiment,  # noqa: F811
                                                                          capfd):
    text = (project / "MLproject").read_text()
    (project / "MLproject").write_text(text + "  check:\n    command: \"python check_staged.py\"\n")
    plant(project)
    make_git_checkout(project)
    capfd.readouterr()
    client, sched, [rid] = _submit(tracking, project, [("check", {})], pool, experiment)
    assert capfd.readouterr().err.splitlines().count(NOTICE) == 1

    wd = _workdir(client, rid)
    sub = dict(line.split(" = ", 1) for line in (wd / "job.sub").read_text().splitlines() if " = " in line)
    inputs = [Path(p) for p in sub["transfer_input_files"].split(", ")]
    assert sorted(p.name for p in inputs) == ["batch.json", "project.tar.gz", "repro_job.py", "repro_runtime.zip"]
    with tarfile.open(wd / "project.tar.gz") as tar:
        assert planted_in(tar.getnames()) == [] and "check_staged.py" in tar.getnames()
    assert not any(MARKER.encode() in p.read_bytes() for p in inputs)

    [run] = _sync_until_terminal(client, [rid], timeout=180)
    out = (wd / "runs" / "0" / "job.out").read_text()
    assert run.info.status == "FINISHED", (run.data.tags.get("repro.status_reason"), _errors(_jobs(client, [rid])))
    assert "planted credentials seen here: none" in out and f"ordinary files seen here: {len(ORDINARY)}" in out
