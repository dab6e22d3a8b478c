"""End to end: a real local sweep (threads 1/2 x 2 repeats of mnist_convnet), `repro analyze`, the report
in headless Chromium, and the analysis run's artifacts served by a real `mlflow server`."""

import hashlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from repro_mlflow.submit.batch import submit_batch
from repro_mlflow.schedulers.local import LocalConfig, LocalScheduler
from repro_mlflow.submit.project import make_spec

from .servers import mlflow_server

ROOT = Path(__file__).resolve().parents[2]
SWEEP = "e2e-threads"
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _sweep(client: MlflowClient, tracking: str) -> list[str]:
    exp = client.create_experiment("e2e")
    specs = []
    for threads in (1, 2):
        params = {"epochs": "1", "data": "bundled", "threads": str(threads)}
        cfg = hashlib.sha256(json.dumps(["mnist_convnet", params], sort_keys=True).encode()).hexdigest()[:12]
        for repeat in (0, 1):
            specs.append(make_spec(ROOT, "mnist_convnet", params, tags={
                "repro.sweep": SWEEP, "repro.repeat": str(repeat), "repro.config_hash": cfg}))
    ids = submit_batch(client, LocalScheduler(LocalConfig(parallel=2)), specs, ROOT, exp, tracking)
    deadline = time.time() + 900
    while True:
        states = {client.get_run(r).info.status for r in ids}
        if states <= {"FINISHED", "FAILED", "KILLED"}:
            break
        assert time.time() < deadline, f"runs still {states}"
        time.sleep(3)
    assert states == {"FINISHED"}, [client.get_run(r).data.tags.get("repro.status_reason") for r in ids]
    return ids


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(CHROMIUM + [f"--user-data-dir={tmp / 'chromium-profile'}"] + args,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_sweep_analyze_report_chromium_and_server(tracking, cli_env, tmp_path):
    client = MlflowClient(tracking)
    run_ids = _sweep(client, tracking)
    out = tmp_path / "report"
    proc = subprocess.run([str(Path(sys.executable).parent / "repro"), "analyze", "--sweep", SWEEP, "--out", str(out),
                           "--json"], env=cli_env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    ex = result["examples"][0]
    assert ex["example"] == "mnist_convnet" and ex["n_runs"] == 4 and ex["primary_metric"] == "test_accuracy"
    accs = [client.get_run(r).data.metrics["test_accuracy"] for r in run_ids]
    assert ex["metrics"]["test_accuracy"]["range"] == pytest.approx(np.ptp(accs))
    cfgs = sorted(g["config"] for g in ex["groups"])  # more det.* tags may follow the thread count
    assert len(cfgs) == 2 and cfgs[0].startswith("threads=1") and cfgs[1].startswith("threads=2")
    assert all(g["n"] == 2 and g["repeatable"] in (True, False) for g in ex["groups"])
    assert any(f["factor"] == "params.threads" for f in ex["factors"]) or ex["metrics"]["test_accuracy"]["range"] == 0
    assert ex["n_environments"] == 1 and ex["equivalence"][0]["note"] == "single environment"

    # the analysis run, in the sweep's experiment, holding the report
    rid = result["analysis_run_id"]
    run = client.get_run(rid)
    assert run.data.tags["repro.analysis_of"] == SWEEP
    assert run.info.experiment_id == client.get_run(run_ids[0]).info.experiment_id
    arts = {a.path for a in client.list_artifacts(rid)} | {a.path for a in client.list_artifacts(rid, "figures")}
    assert {"report.html", "analysis.json", "runs.csv", "figures/heatmap_mnist_convnet.png"} <= arts

    # headless Chromium: the heat map is in the DOM, decoded, and visible in a screenshot
    page = (out / "report.html").resolve().as_uri()
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom", page], tmp_path).stdout
    assert 'id="heatmap-mnist_convnet"' in dom and "data:image/png;base64," in dom
    loaded = dom.split('id="heatmap-mnist_convnet"', 1)[1].split(">", 1)[0]
    assert 'data-loaded="' in loaded and int(loaded.split('data-loaded="')[1].split('"')[0]) > 100
    shot = tmp_path / "shot.png"
    _chromium([f"--screenshot={shot}", "--window-size=1280,1400", page], tmp_path)
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] >= 1000 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # not one colour
    heat = mpimg.imread(out / "figures" / "heatmap_mnist_convnet.png")[..., :3]
    colours, counts = np.unique((heat * 255).round().reshape(-1, 3), axis=0, return_counts=True)
    cells = colours[(counts > 500) & (colours.max(1) - colours.min(1) > 60)]  # the saturated heat-map cells
    assert len(cells)
    px = (img * 255).round().reshape(-1, 3)
    shown = sum(int((np.abs(px - c).max(1) <= 3).sum()) for c in cells)
    assert shown > 2000, "the heat map's cell colours are not on screen"

    # a real mlflow server serves the analysis run's report
    with mlflow_server(tracking, tmp_path) as http:
        with urllib.request.urlopen(f"{http}/get-artifact?path=report.html&run_uuid={rid}", timeout=60) as r:
            served = r.read()
        assert served == (out / "report.html").read_bytes()
        with urllib.request.urlopen(f"{http}/ajax-api/2.0/mlflow/artifacts/list?run_id={rid}", timeout=60) as r:
            listed = {f["path"] for f in json.loads(r.read())["files"]}
        assert "report.html" in listed
