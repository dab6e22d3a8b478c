"""Credential files planted in a project, to show that no backend ships one.

Every planted file holds MARKER; `CHECK_SCRIPT` (written into the project as `check_staged.py`) runs
where the project was staged, lists any planted file it can see and exits 3 if there is one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

MARKER = "REPRO-PLANTED-" + "CREDENTIAL"  # built, so that no source file holds it whole

# Each credential of issue #22 item 4, as a project might hold it.
PLANTED = [
    ".env", ".env.local", "conf/.env.prod", "deploy/.env/db",    # .env* (and a folder .env/)
    ".aws/credentials", ".aws/config",                            # .aws/
    ".netrc", ".ssh/id_ed25519", ".ssh/config",                   # .netrc, .ssh/
    "certs/server.pem", "tls.key", "id_rsa", "id_rsa.pub",        # *.pem, *.key, id_rsa*
    ".git-credentials", ".mlflow/credentials", ".databrickscfg",  # git, MLflow, Databricks
    ".pypirc", ".kube/config",                                    # PyPI, Kubernetes
    "hf_token", "secrets/api.token", ".condor/tokens.d/pool",     # token files (HTCondor IDTOKENS)
]
# What the one-line notice names for them: a credential folder once, with its slash.
WITHHELD = sorted({".aws/", ".condor/tokens.d/", ".databrickscfg", ".env", ".env.local", ".git-credentials",
                   ".kube/", ".mlflow/credentials", ".netrc", ".pypirc", ".ssh/", "certs/server.pem",
                   "conf/.env.prod", "deploy/.env/", "hf_token", "id_rsa", "id_rsa.pub", "secrets/api.token",
                   "tls.key"})
NOTICE = f"repro: not shipped: {', '.join(WITHHELD)} (credentials)"
# Ordinary files beside them, which must be shipped.
ORDINARY = ["train.py", "conf/config.yaml", "certs/README.md", "secrets/README.md", "data/small.csv", "tokenizer.json",
            "environment.yml", "keys.py", "app/credentials/__init__.py", "app/token/refresh.py"]

CHECK_SCRIPT = f'''\
import os, sys
marker = {MARKER[:7]!r} + {MARKER[7:]!r}
found = []
for root, _dirs, names in os.walk("."):
    for n in names:
        p = os.path.join(root, n)
        try:
            with open(p, "rb") as f:
                if marker.encode() in f.read():
                    found.append(p)
        except OSError:
            pass
print("planted credentials seen here:", sorted(found) or "none")
print("ordinary files seen here:", sum(os.path.exists(p) for p in {ORDINARY!r}))
sys.exit(3 if found else 0)
'''


def plant(project: Path) -> list[str]:
    """Write the planted credentials, the ordinary files and `check_staged.py` into `project`."""
    for rel in PLANTED:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(f"{MARKER} {rel}\n")
    for rel in ORDINARY:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(f"ordinary {rel}\n")
    (project / "check_staged.py").write_text(CHECK_SCRIPT)
    return PLANTED


def make_git_checkout(project: Path) -> None:
    """Make `project` a git checkout that tracks everything, credentials included (`git add -f`)."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                       check=True, capture_output=True, timeout=60)

    git("init", "-q")
    git("add", "-f", ".")
    git("commit", "-qm", "a project that tracks its credentials")


def planted_in(paths: list[str]) -> list[str]:
    """The planted credentials among `paths` (relative names, as in a tarball or a staged folder)."""
    names = {p.removeprefix("./") for p in paths}
    return sorted(n for n in names if n in PLANTED or any(n.startswith(d.rstrip("/") + "/") for d in WITHHELD))


def files_holding_marker(root: Path) -> list[str]:
    """Every file under `root` whose bytes hold MARKER."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and MARKER.encode() in p.read_bytes())
