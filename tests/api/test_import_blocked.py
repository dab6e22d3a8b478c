"""The public API imports no framework: it works in an environment that has none."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

BLOCKED = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "torch", "jax", "jaxlib", "keras", "flax"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
sys.meta_path.insert(0, Block())
import json
import numpy as np
from repro_mlflow import determinism, evidence
tags = determinism.configure(seed=3, threads=1, framework="numpy")  # nothing else to infer: named
w = {"dense": {"kernel": np.ones((2, 2), np.float32), "bias": np.zeros(2, np.float32)}}
d = evidence.digest_weights(w)
print(json.dumps({"tags": tags, "digest": d, "same": d == evidence.digest_weights({"dense": dict(w["dense"])})}))
"""


def test_evidence_and_determinism_import_and_work_with_tensorflow_torch_jax_blocked():
    out = subprocess.run([sys.executable, "-c", BLOCKED], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["tags"]["repro.det.framework"] == "numpy" and r["tags"]["repro.det.seed"] == "3"
    assert r["tags"]["repro.det.threads"] == "1" and len(r["digest"]) == 64 and r["same"]
