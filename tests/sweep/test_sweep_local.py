"""The examples swept on this machine: 3 examples x 2 seeds x 2 repeats, all FINISHED, tagged and findable."""

from __future__ import annotations

import pytest

from .conftest import runs, sweep

EXAMPLES = ("mnist_convnet", "imdb_bilstm", "imbalanced_classification")
SMALL = ["params.epochs=1", "params.data=bundled", "params.n_train=500", "params.n_test=100", "params.maxlen=32",
         "params.rows=5000"]


@pytest.mark.slow
def test_three_examples_two_seeds_two_repeats_end_finished_with_sweep_config_and_fingerprint_tags(env, tracking):
    p = sweep([f"example={','.join(EXAMPLES)}", "hardware=local", "seed=1,2", "repeat=0,1", "sweep=local3x2x2",
               "hardware.backend_config.parallel=2", "poll_interval=1", *SMALL], env, timeout=1500)
    assert "12 submitted in 1 batch(es)" in p.stderr
    assert "sweep local3x2x2: 12 FINISHED" in p.stderr

    done = runs("tags.`repro.sweep` = 'local3x2x2' and attributes.status = 'FINISHED'")
    assert len(done) == 12
    for r in done:
        t = r.data.tags
        assert t["repro.target"] == "local" and t["repro.software"] == "current" and t["repro.backend"] == "local"
        assert t["repro.fp.env"] and t["repro.fp.hw"] and t["repro.host"]
    # one config = (example, seed); its two repeats share the hash, and the filters find them
    hashes = {r.data.tags["repro.config_hash"] for r in done}
    assert len(hashes) == 6
    for ex in EXAMPLES:
        for seed in ("1", "2"):
            same = runs(f"tags.`repro.sweep` = 'local3x2x2' and tags.`mlflow.project.entryPoint` = '{ex}' "
                        f"and params.seed = '{seed}'")
            assert sorted(r.data.tags["repro.repeat"] for r in same) == ["0", "1"]
            assert len({r.data.tags["repro.config_hash"] for r in same}) == 1


def test_demo_preset_plans_mnist_under_three_backends_in_one_local_batch(env, tracking):
    p = sweep(["+preset=demo", "--dry-run"], env)
    assert "sweep demo (experiment repro): 6 run(s) planned" in p.stderr
    assert "local (local), software current: 6 run(s) in one batch" in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if " r0 " in ln or " r1 " in ln]
    assert len(lines) == 6 and all("mnist_convnet" in ln for ln in lines)
    assert all("epochs=3" in ln and "data=bundled" in ln for ln in lines)
    for backend in ("tensorflow", "jax", "torch"):
        assert sum(f"keras_backend={backend}" in ln for ln in lines) == 2