"""A campaign's load on one server: each request within MLflow's batch limits, and a busy server
(503) backed off, with every point still delivered exactly once."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from repro_mlflow.runtime import offline
from repro_mlflow.runtime.batching import MAX_METRICS, MAX_PARAMS_TAGS, MAX_REQUEST_BYTES, chunks
from repro_mlflow.runtime.mirror import Mirror, client_settings
from repro_mlflow.runtime.pacing import Pace
from repro_mlflow.submit.offline import offline_client
from tests.services import free_port


def _request_bytes(run_id: str, chunk: list) -> int:
    """The JSON of one log-batch request as MLflow's client writes it (compact, ASCII)."""
    kind = "metrics" if isinstance(chunk[0], Metric) else "params" if isinstance(chunk[0], Param) else "tags"
    body = [{"key": e.key, "value": e.value, **({"timestamp": e.timestamp, "step": e.step} if kind == "metrics" else {})}
            for e in chunk]
    return len(json.dumps({"run_id": run_id, kind: body}, separators=(",", ":")))


def test_each_request_holds_at_most_mlflows_batch_limits(tracking):
    client = MlflowClient()
    rid = client.create_run(client.create_experiment("limits")).info.run_id
    metrics = [Metric(f"m{i % 7}", float(i), 1_700_000_000_000 + i, i) for i in range(1100)]
    params = [Param(f"p{i}", "é" * 6000) for i in range(60)]  # 6 JSON bytes a character: size, not count, binds
    tags = [RunTag(f"t{i}", "x" * 10) for i in range(150)]
    sent = {"metrics": 0, "params": 0, "tags": 0}
    for kind, items, limit in (("metrics", metrics, MAX_METRICS), ("params", params, MAX_PARAMS_TAGS),
                               ("tags", tags, MAX_PARAMS_TAGS)):
        parts = list(chunks(items, limit))
        assert [e for part in parts for e in part] == items  # all, in order
        for part in parts:
            assert len(part) <= limit and _request_bytes(rid, part) <= MAX_REQUEST_BYTES
            client.log_batch(rid, **{kind: part})  # the store's own validation accepts it
            sent[kind] += len(part)
        full = -(-len(items) // limit)
        assert len(parts) > full if kind == "params" else len(parts) == full  # full requests where size allows
    assert sent == {"metrics": 1100, "params": 60, "tags": 150}
    run = client.get_run(rid)
    assert len(run.data.params) == 60 and sum(k.startswith("t") for k in run.data.tags) == 150
    assert len(client.get_metric_history(rid, "m0")) == 158


def test_the_pace_spreads_backs_off_and_waits_out_slow_answers():
    half = Pace(1.0, cap=10.0, rng=lambda: 0.5)
    assert [round(half.next_wait(False), 2) for _ in range(6)] == [1.5, 2.5, 4.5, 5.5, 5.5, 5.5]  # capped at 10
    assert half.next_wait(True) == 1.0  # back to the interval after a success
    assert half.next_wait(False) == 1.5  # and the growth starts over
    assert half.next_wait(True, took=4.0) == 4.0  # a slow answer is waited out
    assert half.next_wait(False, took=30.0) == 10.0  # a timeout: at least min(cap, took)
    import random

    spread = [Pace(1.0, rng=random.Random(i).random).next_wait(True) for i in range(200)]
    assert 0.75 <= min(spread) and max(spread) <= 1.25 and len({round(w, 3) for w in spread}) > 100


class BusyFront:
    """An HTTP front on 127.0.0.1 before a real tracking server: answers 503 (Retry-After: 1) to the
    next `busy` requests, passes the others on; notes (time, path, status) of each."""

    def __init__(self, upstream_port: int):
        self.busy, self.seen, self.port = 0, [], free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if front.busy > 0:
                    front.busy -= 1
                    front.seen.append((time.monotonic(), self.path, 503))
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                conn.request(self.command, self.path, body, {k: v for k, v in self.headers.items() if k.lower() != "host"})
                r = conn.getresponse()
                data = r.read()
                front.seen.append((time.monotonic(), self.path, r.status))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def refusals(self) -> list[float]:
        return [t for t, _p, status in self.seen if status == 503]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _wait(cond, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_a_busy_server_is_backed_off_and_gets_every_point_once(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    client_settings()  # the runtime's client: one try per request (the mirror is the retry loop)
    real = MlflowClient(mlflow_server.uri)
    rid = real.create_run(real.create_experiment("busy")).info.run_id
    real.update_run(rid, "SCHEDULED")
    front = BusyFront(mlflow_server.port)
    try:
        local_uri, lid = offline.start(tmp_path / "b", rid, front.uri)
        local = offline_client(tmp_path / "b")
        local.log_batch(lid, metrics=[Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(50)])
        front.busy = 6
        mirror = Mirror(rid, front.uri, tmp_path / "b", local_uri, lid, {}, {"REPRO_MIRROR_INTERVAL": "0.2",
                                                                             "REPRO_MIRROR_BACKOFF_MAX": "3"})
        mirror.pace = Pace(0.2, cap=3.0, rng=lambda: 0.5)  # the midpoint of each jittered wait
        t0 = time.monotonic()
        while len(front.refusals()) < 6:
            ok, wait = mirror._timed_tick()
            assert not ok
            time.sleep(wait)
        refused = front.refusals()
        gaps = [b - a for a, b in zip(refused, refused[1:])]
        # without backing off every gap would be the 0.2 s interval; the midpoints are 0.3, 0.5, 0.9, 1.6, 1.6
        assert all(g >= w - 0.05 for g, w in zip(gaps, [0.3, 0.5, 0.9, 1.6, 1.6])), gaps
        assert time.monotonic() - t0 >= 4.8
        _wait(lambda: mirror.tick())
        assert len(real.get_metric_history(rid, "loss")) == 50

        # busy again in the middle of a delivery, then the run's end: nothing lost, nothing twice
        local.log_batch(lid, metrics=[Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(50, 100)])
        front.busy = 3
        assert mirror.finish("FINISHED", None, 1_700_000_100_000)
    finally:
        front.close()
    steps = [m.step for m in real.get_metric_history(rid, "loss")]
    assert sorted(steps) == list(range(100))
    run = real.get_run(rid)
    assert (run.info.status, run.info.end_time) == ("FINISHED", 1_700_000_100_000)
    assert len(front.refusals()) == 9
