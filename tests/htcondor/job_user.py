"""The one-machine pool runs jobs as its job user, since root cannot own HTCondor jobs. On a real access
point the submitter owns the jobs and its 0700 batch directory. Here `install` makes what the submit side
writes for the jobs the job user's, as it would be the submitter's; modes are untouched. A `repro-sweep`
started as a subprocess gets it through `sitecustomize` (see `sitecustomize_dir`)."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from pathlib import Path


def install(user: str, setattr: Callable = setattr) -> None:
    from repro_mlflow.runtime import record
    from repro_mlflow.schedulers.htcondor import scheduler as hsched

    owner = pwd.getpwnam(user)
    write_submit_files, write_record = hsched.hs.write_submit_files, record.write

    def submit_files(sub, items, wd):
        out = write_submit_files(sub, items, wd)
        for d, dirs, files in os.walk(wd):
            for name in [d, *(os.path.join(d, n) for n in dirs + files)]:
                os.chown(name, owner.pw_uid, owner.pw_gid)
        return out

    def record_file(path, rec):
        out = write_record(path, rec)
        os.chown(out, owner.pw_uid, owner.pw_gid)  # rewritten with the job ids once the jobs are queued
        return out

    setattr(hsched.hs, "write_submit_files", submit_files)
    setattr(record, "write", record_file)


def sitecustomize_dir(tmp: Path, user: str) -> Path:
    """A directory to put first on PYTHONPATH: its sitecustomize installs the above in every interpreter."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "sitecustomize.py").write_text(f"from tests.htcondor.job_user import install\ninstall({user!r})\n")
    return tmp
