"""Nothing that looks like a credential reaches tags, the artifact or the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from repro_mlflow.fingerprint import capture, to_tags
from repro_mlflow.fingerprint.safety import ALLOWED_ENV, REDACTED, env_allowed, looks_like_credential, redact

from .helpers import ROOT

SECRET_AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
SECRET_TOKEN = "dapi0123456789abcdef0123456789abcdef"


def test_builtin_allow_list_has_no_credential_names():
    assert [n for n in ALLOWED_ENV if looks_like_credential(n)] == []
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_REGION", "MLFLOW_TRACKING_TOKEN",
                 "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME", "MY_API_KEY", "DB_PASSWORD",
                 "GOOGLE_APPLICATION_CREDENTIALS", "HF_TOKEN", "GITHUB_TOKEN", "X509_USER_PROXY"):
        assert looks_like_credential(name), name


def test_user_allow_list_cannot_add_credentials():
    env = {"REPRO_FINGERPRINT_ENV": "AWS_SECRET_ACCESS_KEY, MLFLOW_TRACKING_TOKEN,MY_SETTING,bad-name",
           "AWS_SECRET_ACCESS_KEY": SECRET_AWS, "MLFLOW_TRACKING_TOKEN": SECRET_TOKEN, "MY_SETTING": "on",
           "OMP_NUM_THREADS": "4", "HOME": "/root"}
    assert env_allowed(env) == {"OMP_NUM_THREADS": "4", "MY_SETTING": "on"}


def test_redact_walks_keys_and_values():
    obj = {"a": [f"x{SECRET_AWS}y", {"k": 1}], f"key-{SECRET_TOKEN}": "v", "n": None}
    assert redact(obj, {SECRET_AWS, SECRET_TOKEN}) == {"a": [REDACTED, {"k": 1}], REDACTED: "v", "n": None}


def test_capture_redacts_a_secret_smuggled_into_an_allowed_value():
    env = {"AWS_SECRET_ACCESS_KEY": SECRET_AWS, "XLA_FLAGS": f"--xla_dump_to=/tmp/{SECRET_AWS}",
           "AWS_REGION": "us-east-1", "OMP_NUM_THREADS": "2"}
    rec = capture(environ=env)
    text = json.dumps(rec) + json.dumps(to_tags(rec))
    assert SECRET_AWS not in text
    assert rec["determinism"]["env"] == {"XLA_FLAGS": REDACTED, "OMP_NUM_THREADS": "2"}


def _scan(root) -> list[str]:
    hits = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            data = open(os.path.join(dirpath, f), "rb").read()
            for secret in (SECRET_AWS, SECRET_TOKEN):
                if secret.encode() in data:
                    hits.append(f"{f}: {secret[:6]}…")
    return hits


def test_run_with_secrets_in_its_environment_leaks_none(tracking, tmp_path):
    """A real run through the worker runtime, its environment holding credentials (and a user allow-list
    naming them): the sqlite store and every artifact file are scanned for the values."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = client.create_experiment("secrets", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(exp).info.run_id
    env = dict(os.environ, PYTHONPATH=str(ROOT), AWS_SECRET_ACCESS_KEY=SECRET_AWS, MLFLOW_TRACKING_TOKEN=SECRET_TOKEN,
               REPRO_FINGERPRINT_ENV="AWS_SECRET_ACCESS_KEY,MLFLOW_TRACKING_TOKEN,TF_DETERMINISTIC_OPS",
               TF_DETERMINISTIC_OPS="1", XLA_FLAGS=f"--token={SECRET_TOKEN}")
    cmd = f"{sys.executable} -c \"import mlflow, os; mlflow.log_param('ok', len(os.environ) > 0)\""
    p = subprocess.run([sys.executable, "-m", "repro_mlflow.runtime", "--run-id", run_id, "--", cmd],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["repro.fp.hw"] and tags["repro.env.TF_DETERMINISTIC_OPS"] == "1"  # the fingerprint was written
    assert not any("AWS" in k or "TOKEN" in k for k in tags)
    artifact = tmp_path / "artifacts" / run_id / "artifacts" / "repro" / "fingerprint.json"
    record = json.loads(artifact.read_text())
    assert record["determinism"]["env"]["XLA_FLAGS"] == REDACTED
    assert _scan(tmp_path) == []
    assert SECRET_AWS not in p.stdout + p.stderr and SECRET_TOKEN not in p.stdout + p.stderr
