"""mnist_convnet on the jax and torch Keras backends: it finishes, learns, says which backend it used,
and never loads TensorFlow (the GPU machines have none)."""

from __future__ import annotations

import pytest
from tests.examples.examples_runs import SMALL, digests, finished, submit, wait


@pytest.mark.slow
def test_mnist_on_jax_and_torch(examples_env, tracking):
    ids = {b: submit(examples_env, "mnist_convnet", **SMALL["mnist_convnet"], keras_backend=b, threads=1, xla="auto")
           for b in ("jax", "torch")}
    runs = wait(list(ids.values()))
    for backend, rid in ids.items():
        run = runs[rid]
        finished(run)
        tags = run.data.tags
        assert tags["repro.det.keras_backend"] == backend and tags["repro.sw.keras_backend"] == backend
        assert tags["repro.sw.framework_build"].startswith(backend)
        assert "tensorflow" not in tags["repro.sw.frameworks_loaded"].split(",")
        assert backend in tags["repro.sw.frameworks_loaded"].split(",")
        assert run.data.metrics["test_accuracy"] > 0.6, run.data.metrics  # 10 classes: chance is 0.1
        assert 0 < run.data.metrics["train_seconds"] < (run.info.end_time - run.info.start_time) / 1000
        assert {"repro.digest.weights", "repro.digest.predictions", "repro.digest.weights.epoch.2"} <= set(digests(run))
    jax_tags, torch_tags = runs[ids["jax"]].data.tags, runs[ids["torch"]].data.tags
    assert jax_tags["repro.det.xla"] == "true"  # Keras compiles with XLA on JAX when asked for auto
    assert "--xla_gpu_deterministic_ops=true" in jax_tags["repro.det.env.xla_flags"]
    assert torch_tags["repro.det.torch.deterministic_algorithms"] == "true"
    assert torch_tags["repro.det.torch.num_threads"] == "1"
    assert torch_tags["repro.det.env.cublas_workspace_config"] == ":4096:8"
    # Same data on every backend: the input digest does not depend on the framework.
    assert jax_tags["repro.digest.data"] == torch_tags["repro.digest.data"]
