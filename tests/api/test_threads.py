"""threads=N: the process is confined to N CPUs (affinity) and every framework's pool is N; the tags say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = """
import json, os, sys
from repro_mlflow import determinism
fw, n = sys.argv[1], int(sys.argv[2])
tags = determinism.configure(seed=1, threads=n, framework=fw)
if fw == "torch":
    import torch
    a = torch.randn(400, 400); float((a @ a).sum())
    torch.nn.functional.conv2d(torch.randn(2, 3, 32, 32), torch.randn(8, 3, 3, 3)).sum()
elif fw == "tensorflow":
    import tensorflow as tf
    a = tf.random.normal((400, 400)); float(tf.reduce_sum(a @ a))
else:
    import jax, jax.numpy as jnp
    a = jnp.ones((400, 400)); (a @ a).block_until_ready()
def ncpus(spec):
    return sum(int(b) - int(a) + 1 for a, _, b in (p.partition("-") if "-" in p else (p, "", p) for p in spec.split(",")))
cpus = []
for t in os.listdir("/proc/self/task"):
    for line in open(f"/proc/self/task/{t}/status"):
        if line.startswith("Cpus_allowed_list:"):
            cpus.append(ncpus(line.split(":", 1)[1].strip()))
print(json.dumps({"tags": tags, "thread_cpus": cpus}))
"""

POOL_TAG = {"tensorflow": "repro.det.tf.intra_op_threads", "torch": "repro.det.torch.num_threads",
            "jax": "repro.det.jax.cpu_threads"}


def probe(framework: str, threads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, framework, str(threads)], capture_output=True, text=True,
                         timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("framework", ["tensorflow", "jax", "torch"])
def test_threads_1_confines_every_thread_to_one_cpu_and_records_it(framework):
    pytest.importorskip(framework)
    r = probe(framework, 1)
    assert r["thread_cpus"] and set(r["thread_cpus"]) == {1}, r["thread_cpus"]  # every thread, pools included
    tags = r["tags"]
    assert tags["repro.det.threads"] == "1" and tags["repro.det.threads.requested"] == "1"
    assert tags["repro.affinity.count"] == "1" and tags["repro.affinity.cpus"].isdigit()
    assert tags[POOL_TAG[framework]] == "1"
    if framework == "jax":
        assert "--xla_cpu_multi_thread_eigen=false" in tags["repro.det.env.xla_flags"]


@pytest.mark.parametrize("framework", ["tensorflow", "jax", "torch"])
def test_threads_2_records_two(framework):
    pytest.importorskip(framework)
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this machine lets the tests use one CPU")
    r = probe(framework, 2)
    assert max(r["thread_cpus"]) == 2, r["thread_cpus"]
    assert r["tags"]["repro.det.threads"] == "2" and r["tags"][POOL_TAG[framework]] == "2"
    assert r["tags"]["repro.affinity.count"] == "2"


def test_threads_0_leaves_the_process_alone_and_says_so():
    r = probe("torch", 0)
    assert r["tags"]["repro.det.threads"] == "0"  # machine-independent: the config is the same everywhere
    assert r["tags"]["repro.affinity.count"] == str(len(os.sched_getaffinity(0)))
