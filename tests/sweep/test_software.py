"""Software entries are real environments: TensorFlow 2.20 and 2.21, each in its own cached virtualenv."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from repro_mlflow.envs.software import Software, ensure_env, env_cache, env_hash

from .conftest import runs, sweep

WANT = {"tf2_20": "2.20.0", "tf2_21": "2.21.0"}


@pytest.mark.slow
def test_two_tensorflow_versions_run_each_in_its_own_cached_env(env, tracking):
    # The first build of each env downloads and installs TensorFlow (minutes); later sweeps reuse it.
    p = sweep(["example=mnist_convnet", "software=tf2_20,tf2_21", "sweep=sw", "params.epochs=1", "params.data=bundled",
               "params.n_train=500", "poll_interval=1"], env, timeout=3000)
    assert "sweep sw: 2 FINISHED" in p.stderr
    found = runs("tags.`repro.sweep` = 'sw'")
    assert sorted(r.data.tags["repro.software"] for r in found) == ["tf2_20", "tf2_21"]
    for r in found:
        name = r.data.tags["repro.software"]
        version = r.data.tags.get("repro.sw.tensorflow") or r.data.tags.get("repro.sw.tensorflow-cpu")
        assert version == WANT[name]
        sw = Software(name, (f"tensorflow-cpu=={WANT[name]}",))
        # the batch ran under the env's interpreter (the batch record names it)
        record = json.loads(Path(r.data.tags["repro.record"]).read_text())
        assert record["layout"]["python"] == str(env_cache() / env_hash(sw) / "bin" / "python")
    assert found[0].data.tags["repro.config_hash"] != found[1].data.tags["repro.config_hash"]

    # cached: asking for the env again builds nothing
    marker = env_cache() / env_hash(Software("tf2_20", ("tensorflow-cpu==2.20.0",))) / "repro-env.json"
    before = marker.stat().st_mtime
    t0 = time.time()
    ensure_env(Software("renamed", ("tensorflow-cpu==2.20.0",)))
    assert time.time() - t0 < 1 and marker.stat().st_mtime == before
