"""The main job: run the MNIST example on the local backend with the default store, wait, summarise.

`bash scripts/main.sh` runs this after setting up `.venv`.
"""

from __future__ import annotations

import argparse
import sys

import mlflow
from mlflow.tracking import MlflowClient


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="repro-demo", description=__doc__)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args(argv)
    uri = mlflow.get_tracking_uri()
    print(f"repro demo: MNIST convnet on bundled data, backend repro-local, tracking {uri}")
    sub = mlflow.projects.run(".", "mnist_convnet", parameters={"epochs": args.epochs, "data": "bundled"},
                              backend="repro-local", experiment_name="repro-demo", synchronous=False)
    ok = sub.wait()
    run = MlflowClient().get_run(sub.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    print(f"run {sub.run_id}: {run.info.status}  test_accuracy={metrics.get('test_accuracy', float('nan')):.4f}")
    print(f"  ran on {tags.get('repro.hw.cpu.model')} ({tags.get('repro.hw.cpu.x86_64_level', tags.get('repro.hw.cpu.arch'))}), "
          f"fingerprint env={tags.get('repro.fp.env')}")
    print(f"  weights digest {tags.get('repro.digest.weights', '')[:16]}…")
    print("browse: .venv/bin/mlflow ui   (then open http://127.0.0.1:5000, experiment 'repro-demo')")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
