"""GPU study: mnist_convnet with the torch backend, op determinism on and off, run twice each.

Runs through the real runtime and the repro-local backend (the code path of
`mlflow run . -e mnist_convnet --backend repro-local`) into an MLflow file store under OUT, then
writes OUT/gpu_study.json: per run the digests (data, initial, per epoch, final, predictions),
the accuracy, the determinism settings, the device the model ran on and the machine's
fingerprint tags; per op_determinism setting whether the repeats were bit-identical and the
first epoch at which their weights part.

python analysis/gpu_study/study.py --out OUT [--epochs 3] [--repeats 2] [--allow-cpu]
Exit status: 0 done on a GPU; 3 the model ran on no GPU (without --allow-cpu); 4 a run did not finish.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINT = "mnist_convnet"


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gpu_study", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "analysis" / "gpu_study" / "out")))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--keras_backend", choices=["torch", "jax", "tensorflow"], default="torch")
    p.add_argument("--n_train", type=int, default=0, help="first N bundled training digits (0 = all 4,500)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--allow-cpu", action="store_true", help="do not fail when the model ran on no GPU (tests here)")
    return p.parse_args(argv)


def _run_record(client, run, op_determinism: str, repeat: int) -> dict:
    tags, rid = run.data.tags, run.info.run_id
    record = {"run_id": rid, "op_determinism": op_determinism, "repeat": repeat, "status": run.info.status,
              "status_reason": tags.get("repro.status_reason"),
              "wall_s": round(((run.info.end_time or 0) - run.info.start_time) / 1000, 1),
              "metrics": dict(run.data.metrics), "params": dict(run.data.params),
              "digests": {k: v for k, v in tags.items() if k.startswith("repro.digest.")},
              "det": {k: v for k, v in tags.items() if k.startswith("repro.det.")},
              "device": {k: v for k, v in tags.items() if k.startswith("repro.sw.")},
              "hw": {k: v for k, v in tags.items() if k.startswith(("repro.hw.", "repro.fp.", "repro.host"))}}
    try:
        record["weights_epochs"] = json.loads(Path(client.download_artifacts(rid, "repro/digests.json")).read_text())["weights_epochs"]
        record["framework"] = json.loads(Path(client.download_artifacts(rid, "repro/framework.json")).read_text())
    except Exception as e:  # noqa: BLE001 - a failed run has no evidence
        record["evidence_error"] = f"{type(e).__name__}: {e}"
    return record


def summarize(runs: list[dict]) -> dict:
    """Per op_determinism setting: bit-identical repeats?, first divergent epoch, accuracies."""
    from repro_mlflow.evidence import first_divergent_epoch

    out = {}
    for op in sorted({r["op_determinism"] for r in runs}):
        group = [r for r in runs if r["op_determinism"] == op and r["status"] == "FINISHED"]
        final = {r["digests"].get("repro.digest.weights") for r in group}
        preds = {r["digests"].get("repro.digest.predictions") for r in group}
        epochs = [r.get("weights_epochs", []) for r in group]
        out[f"op_determinism={op}"] = {
            "finished": len(group),
            "bit_identical_weights": len(group) > 1 and len(final) == 1,
            "bit_identical_predictions": len(group) > 1 and len(preds) == 1,
            "first_divergent_epoch": [first_divergent_epoch(epochs[0], e) for e in epochs[1:]],
            "test_accuracy": [r["metrics"].get("test_accuracy") for r in group],
        }
    return out


def main(argv=None) -> int:
    args = parse(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///" + str(out / "mlflow.db"))  # MLflow's SQLite store
    os.environ.setdefault("REPRO_HOME", str(out / "repro"))
    sys.path.insert(0, str(ROOT))
    from mlflow.tracking import MlflowClient

    from repro_mlflow.mlflow_plugin.backends import local_backend

    uri = os.environ["MLFLOW_TRACKING_URI"]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("gpu_study")
    exp_id = exp.experiment_id if exp else client.create_experiment("gpu_study", artifact_location=(out / "artifacts").as_uri())
    backend = local_backend()
    runs = []
    for op in ("true", "false"):
        for repeat in range(args.repeats):
            params = {"seed": str(args.seed), "epochs": str(args.epochs), "data": "bundled", "n_train": str(args.n_train),
                      "keras_backend": args.keras_backend, "op_determinism": op}
            t0 = time.monotonic()
            submitted = backend.run(str(ROOT), ENTRY_POINT, params, None, {}, uri, exp_id)
            submitted.wait(poll_s=0.5)
            run = client.get_run(submitted.run_id)
            rec = _run_record(client, run, op, repeat)
            rec["observed_s"] = round(time.monotonic() - t0, 1)
            runs.append(rec)
            print(f"op_determinism={op} repeat={repeat}: {run.info.status} test_accuracy={rec['metrics'].get('test_accuracy')} "
                  f"device={rec['device'].get('repro.sw.device')} weights={rec['digests'].get('repro.digest.weights', '')[:16]}", flush=True)
    on_gpu = all(r["device"].get("repro.sw.device", "").startswith(("cuda", "gpu", "/job")) and "CPU" not in r["device"].get("repro.sw.device", "")
                 for r in runs if r["status"] == "FINISHED")
    study = {"study": "gpu_study", "entry_point": ENTRY_POINT, "keras_backend": args.keras_backend, "epochs": args.epochs,
             "repeats": args.repeats, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "tracking_uri": uri, "model_on_gpu": on_gpu, "summary": summarize(runs), "runs": runs}
    (out / "gpu_study.json").write_text(json.dumps(study, indent=1, sort_keys=True))
    print(json.dumps(study["summary"], indent=1))
    print(f"wrote {out / 'gpu_study.json'}")
    if any(r["status"] != "FINISHED" for r in runs):
        return 4
    if not on_gpu and not args.allow_cpu:
        print("gpu_study: the model ran on no GPU (repro.sw.device); pass --allow-cpu to accept that", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
