"""The outage tests' and bench_mirror's entry point: params, a tag, ENTRY_POINTS metric points over
ENTRY_SECONDS seconds (one every ENTRY_SECONDS / ENTRY_POINTS s), an artifact closed half-way and
one at the end. Prints `ENTRY_WALL <seconds>`: how long the logging loop took."""

import os
import time

import mlflow

n = int(os.environ.get("ENTRY_POINTS", "300"))
seconds = float(os.environ.get("ENTRY_SECONDS", "60"))
with mlflow.start_run():
    mlflow.log_params({"lr": "0.01", "points": str(n)})
    mlflow.set_tag("user.kind", "outage")
    t0 = time.time()
    for i in range(n):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        if i == n // 2:
            mlflow.log_text(f"checkpoint at step {i}\n", "out/checkpoint.txt")
        time.sleep(max(0.0, t0 + (i + 1) * seconds / n - time.time()))
    mlflow.log_text("done\n", "out/result.txt")
    print(f"ENTRY_WALL {time.time() - t0:.3f}", flush=True)
