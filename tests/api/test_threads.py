"""threads=N: every thread of the process is confined to N CPUs (affinity), every pool is N; the tags say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.schedulers.local import LocalConfig, LocalScheduler
from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.submit.project import make_spec
from tests.conftest import ROOT
from tests.helpers import wait_terminal

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
    assert tags["repro.affinity.pools"] != "none" and all(p.endswith("=1") for p in tags["repro.affinity.pools"].split(","))
    assert "xla_cpu_multi_thread_eigen" not in tags.get("repro.det.env.xla_flags", "")  # changes nothing: not set


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


EARLY_THREAD = """
import json, os, sys, threading
import numpy as np
from threadpoolctl import threadpool_info
stop = threading.Event()
early = threading.Thread(target=stop.wait, daemon=True); early.start()  # a thread that exists before configure
a = np.random.default_rng(0).normal(size=(300, 300)); a @ a  # NumPy's BLAS pool started
before = {p["prefix"]: p["num_threads"] for p in threadpool_info()}
from repro_mlflow import determinism
tags = determinism.configure(seed=1, threads=int(sys.argv[1]), framework="numpy")
a @ a
out = {"tags": tags, "before": before, "early": sorted(os.sched_getaffinity(early.native_id)),
       "main": sorted(os.sched_getaffinity(0)), "pools": {p["prefix"]: p["num_threads"] for p in threadpool_info()},
       "tasks": [sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")]}
stop.set(); early.join()
print(json.dumps(out))
"""


def early(threads: int, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", EARLY_THREAD, str(threads)], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_thread_started_before_configure_and_numpys_blas_pool_obey_threads_1():
    r = early(1)
    assert len(r["main"]) == 1 and r["early"] == r["main"], r  # the thread from before: the same one CPU
    assert all(t == r["main"] for t in r["tasks"]), r["tasks"]  # every thread of the process, BLAS workers too
    assert r["pools"] and set(r["pools"].values()) == {1}, r["pools"]  # NumPy's BLAS pool reads back 1
    tags = r["tags"]
    assert tags["repro.affinity.cpus"] == str(r["main"][0]) and tags["repro.affinity.count"] == "1"
    assert tags["repro.affinity.pools"] == ",".join(f"{k}=1" for k in sorted(r["pools"]))


def test_numpys_blas_pool_reads_back_n_after_threads_n():
    n = len(os.sched_getaffinity(0))
    if n < 2:
        pytest.skip("this machine lets the tests use one CPU")
    r = early(2)
    assert set(r["pools"].values()) == {2} and len(r["early"]) == 2
    assert r["tags"]["repro.affinity.pools"].endswith("=2")


def test_threads_0_leaves_pools_and_threads_as_they_were_and_reads_them_back():
    r = early(0)
    assert r["pools"] == r["before"] and r["early"] == sorted(os.sched_getaffinity(0))
    assert r["tags"]["repro.affinity.pools"] == ",".join(f"{k}={v}" for k, v in sorted(r["pools"].items()))


def test_cpu_slots_give_parallel_runs_disjoint_cpus_and_say_when_they_must_share():
    n = len(os.sched_getaffinity(0))
    if n < 2:
        pytest.skip("this machine lets the tests use one CPU")
    a, b = early(1, REPRO_CPU_SLOT="0/2"), early(1, REPRO_CPU_SLOT="1/2")
    assert a["main"] != b["main"] and len(a["main"]) == len(b["main"]) == 1
    assert a["tags"]["repro.affinity.slot"] == "0/2" and a["tags"]["repro.affinity.shared"] == "false"
    assert b["tags"]["repro.affinity.shared"] == "false"
    crowded = early(1, REPRO_CPU_SLOT=f"{n}/{n + 1}")  # one run more than CPUs: it must share one
    assert crowded["main"] == a["main"] and crowded["tags"]["repro.affinity.shared"] == "true"
    unlimited = early(0, REPRO_CPU_SLOT="1/2")  # every CPU for each of two runs: shared
    assert len(unlimited["main"]) == n and unlimited["tags"]["repro.affinity.shared"] == "true"


def test_a_bad_cpu_slot_is_a_one_line_error():
    out = subprocess.run([sys.executable, "-c", EARLY_THREAD, "1"], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "REPRO_CPU_SLOT": "2/2"})
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1].endswith("REPRO_CPU_SLOT must be k/m with 0 <= k < m, got '2/2'")


SLOT_PROJECT = {
    "MLproject": "name: slots\nentry_points:\n  main:\n    parameters: {seed: {type: int, default: 1}}\n"
                 "    command: python train.py {seed}\n",
    "train.py": "import sys\nimport mlflow\nfrom repro_mlflow import determinism, evidence\n"
                "determinism.configure(seed=int(sys.argv[1]), threads=1, framework='numpy')\n"
                "with mlflow.start_run():\n    evidence.log_evidence()\n",
}


def test_two_runs_of_a_parallel_2_batch_with_threads_1_get_different_cpus(tracking, tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this machine lets the tests use one CPU")
    for name, text in SLOT_PROJECT.items():
        (tmp_path / name).write_text(text)
    specs = [make_spec(tmp_path, "main", {"seed": s}) for s in ("1", "2")]
    exp = mlflow.set_experiment("slots").experiment_id
    ids = submit_batch(MlflowClient(), LocalScheduler(LocalConfig(parallel=2)), specs, tmp_path, exp, tracking)
    runs = wait_terminal(ids, timeout=180)
    assert [r.info.status for r in runs] == ["FINISHED"] * 2, [r.data.tags.get("repro.status_reason") for r in runs]
    tags = [r.data.tags for r in runs]
    assert {t["repro.affinity.slot"] for t in tags} == {"0/2", "1/2"}
    assert all(t["repro.affinity.count"] == "1" and t["repro.affinity.shared"] == "false" for t in tags)
    assert tags[0]["repro.affinity.cpus"] != tags[1]["repro.affinity.cpus"]  # disjoint: one core each, none idle
