"""The one replay: copy a run's local store into its real run, incrementally, exactly once.

Used by the worker's mirror while the command runs (a step every second or two) and by
`repro sync` for what the mirror could not deliver (`submit/offline.py:replay_bundle`).
`Replayer.step()` sends what the real run does not have yet:

- params the real run does not have;
- tags that differ (not the local run's own `mlflow.*` tags: the real run has its own);
- metric points: read from the local store through MlflowClient (`localstore.SqlLocalRun`; a bundle
  of the previous layout: its files, by byte offset), each sent once. A point whose delivery is uncertain (a request that failed: the server
  may have applied it) is reconciled before it is sent again: every local point of that key is
  matched against the real run's history by (value, step, timestamp), and only the unmatched are
  sent (identical points are one point: SQL stores keep one of them). A fresh `Replayer` (a new process) reconciles every key first;
- artifacts: files new or changed since they were sent; while the command runs, only files left
  untouched for `settle_s` seconds (closed), at the final step all of them. A model logged with
  `mlflow.<flavor>.log_model` (an MLflow 3 logged model of the local run) goes as the run's
  artifacts under the model's name, so `runs:/<real run>/<name>` loads it from the real server;
- MLflow 3 LoggedModels as LoggedModels of the server, with their params, tags, files and linked
  metric points, and the run's model inputs/outputs (runtime/logged_models.py: the server's model
  carries the id the project saw as its tag `repro.local_model_id`);
- dataset inputs (`mlflow.log_input`) the real run lacks; then the model registrations queued in
  the bundle, each after its model's files (runtime/registration.py);
- what it does not deliver as itself (a bundle of the previous layout's logged-model entities and
  inputs, a registration the server refused, a model input/output of a model the store lacks) is
  said in the real run's tag `repro.replay.skipped`.

A step that meets a request failing raises; the next step carries on from where it stopped.
`end()` then ends the real run with the command's status. Stdlib + mlflow(-skinny).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .. import tags as T
from . import offline, registration
from .batching import MAX_METRICS, MAX_PARAMS_TAGS, chunks
from .logged_models import ModelReplay

TERMINAL = ("FINISHED", "FAILED", "KILLED")


def open_local(bundle: str | Path, meta: dict | None = None):
    """The reader of a bundle's local run: `SqlLocalRun` on its SQLite store, or `LocalRun` on a
    bundle of the previous layout (an MLflow file store `mlruns/`, read as files)."""
    meta = meta or offline.read_bundle(bundle)
    if offline.is_legacy(bundle):
        return LocalRun(bundle, meta)
    from .localstore import SqlLocalRun  # noqa: PLC0415

    return SqlLocalRun(offline.store_uri(bundle), meta["offline_run_id"], bundle, meta.get("attempt_times"))


class LocalRun:
    """Incremental reader of the one run of a bundle of the previous layout (MLflow's file-store
    layout `mlruns/`, made before the SQLite store): read as files, so that `repro sync` still replays it."""

    def __init__(self, bundle: str | Path, meta: dict | None = None):
        self.bundle = Path(bundle)
        self.meta = meta or offline.read_bundle(self.bundle)
        self.dir = self.bundle / offline.STORE_DIR / str(self.meta.get("experiment_id", "0")) / self.meta["offline_run_id"]
        self.offsets: dict[str, int] = {}  # metric key -> bytes of its file already read
        # a requeued job logs on into the same local run: per later attempt, where its points begin
        # ({key: byte offset}); a point of a later attempt at a step an earlier attempt logged is left
        # out (every step once: the earlier point stays), so an attempt that starts over duplicates nothing
        self.attempt_starts: list[dict[str, int]] = [dict(s) for s in self.meta.get("attempt_starts") or []]
        self.steps: dict[str, list[set[int]]] = {}  # metric key -> steps read, per attempt

    def _files(self, sub: str) -> dict[str, Path]:
        root = self.dir / sub
        out: dict[str, Path] = {}
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                out[p.relative_to(root).as_posix()] = p
        return out

    def params(self, settle_s: float = 0.0) -> dict[str, str]:
        """The params, but those written in the last `settle_s` s (a param is never changed: none half-written)."""
        now = time.time()
        out = {}
        for k, p in self._files("params").items():
            try:
                if not settle_s or now - p.stat().st_mtime >= settle_s:
                    out[k] = p.read_text()
            except OSError:
                continue
        return out

    def metric_keys(self) -> set[str]:
        return set(self._files("metrics"))

    def tags(self) -> dict[str, str]:
        return {k: p.read_text() for k, p in self._files("tags").items()
                if not k.startswith("mlflow.") and not k.endswith(".tmp")}

    def new_points(self, key: str | None = None, since_start: bool = False, full: bool = False) -> dict[str, list]:
        """Points written since the last call ({key: [Metric]}); `since_start`: all of `key`'s points
        (`full`: no other meaning here, the files are read from their last offset)."""
        from mlflow.entities import Metric

        out: dict[str, list] = {}
        files = self._files("metrics")
        for k, path in files.items():
            if key is not None and k != key:
                continue
            start = 0 if since_start else self.offsets.get(k, 0)
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read()
            end = data.rfind(b"\n") + 1  # a line being written is read next time
            if not end:
                continue
            self.offsets[k] = max(self.offsets.get(k, 0), start + end)
            points = []
            pos = start
            for raw in data[:end].split(b"\n")[:-1]:
                at, pos = pos, pos + len(raw) + 1
                parts = raw.decode().split()
                if len(parts) < 2:
                    continue
                m = Metric(k, float(parts[1]), int(parts[0]), int(parts[2]) if len(parts) > 2 else 0)
                if self._earlier_step(k, at, m.step):
                    continue
                points.append(m)
            if points:
                out[k] = points
        return out

    def _earlier_step(self, key: str, at: int, step: int) -> bool:
        """Whether the point at byte `at` of `key`'s file repeats a step of an earlier attempt (and note its step)."""
        if not self.attempt_starts:
            return False
        attempt = sum(1 for s in self.attempt_starts if at >= s.get(key, 0))
        seen = self.steps.setdefault(key, [set() for _ in range(len(self.attempt_starts) + 1)])
        if any(step in seen[a] for a in range(attempt)):
            return True
        seen[attempt].add(step)
        return False

    def set_tag(self, key: str, value: str) -> None:
        """Write a tag into the local run (as MLflow's file store does: one file per tag)."""
        path = self.dir / "tags" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(value)
        os.replace(tmp, path)

    def add_file(self, file: str | Path, artifact_path: str) -> None:
        """Copy `file` into the run's artifacts as `artifact_path`."""
        import shutil  # noqa: PLC0415

        dest = self.dir / "artifacts" / artifact_path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, dest)

    def inputs(self) -> list:
        """Dataset inputs: not read from the previous layout."""
        return []

    def logged_models(self) -> list:
        """Logged-model entities: not read from the previous layout (their files go as artifacts)."""
        return []

    def model_io(self) -> tuple[list, list]:
        return [], []

    def model_files(self, uri: str) -> Path:
        return Path(uri)

    def not_replayed(self) -> dict[str, int]:
        """{kind: how many} of what the run holds and the replay does not deliver as itself."""
        n = sum(1 for _ in (self.dir / "inputs").glob("*")) if (self.dir / "inputs").is_dir() else 0
        return {"inputs (previous layout)": n,
                "logged model entities (previous layout; files sent as artifacts)": len(self._model_dirs())}

    def _model_dirs(self) -> dict[str, Path]:
        """{name: files} of the MLflow 3 logged models of this run (`mlflow.<flavor>.log_model`), finished ones."""
        import yaml  # a dependency of mlflow-skinny

        out = {}
        for meta in (self.dir.parent / "models").glob("*/meta.yaml"):
            try:
                m = yaml.safe_load(meta.read_text())
            except (OSError, yaml.YAMLError):
                continue
            if m.get("source_run_id") == self.dir.name and m.get("status") == 2 and m.get("name"):  # 2: READY
                out[str(m["name"])] = meta.parent / "artifacts"
        return out

    def artifacts(self) -> dict[str, tuple[int, int, Path]]:
        """{artifact path: (size, mtime in ns, file)}: the run's artifacts, and each logged model's
        files under its name (so `runs:/<real run>/<name>` loads it from the real run)."""
        from .localstore import walk_artifacts  # noqa: PLC0415

        return walk_artifacts({"": self.dir / "artifacts", **{name + "/": d for name, d in self._model_dirs().items()}})


def _point(m) -> tuple:
    return (m.value, m.step, m.timestamp)


class Replayer:
    """Delivers a local run into its real run; one instance per process, any number of steps."""

    def __init__(self, client, run_id: str, bundle: str | Path, settle_s: float = 2.0, list_artifacts: bool = True):
        meta = offline.read_bundle(bundle)
        if meta.get("run_id") != run_id:
            raise ValueError(f"local store {bundle} belongs to run {meta.get('run_id')}, not {run_id}")
        self.client, self.run_id, self.local = client, run_id, open_local(bundle, meta)
        self.bundle = Path(bundle)
        self.settle_s = settle_s
        # Whether to ask which artifacts the real run has before sending (`repro sync`: what the mirror
        # sent is not sent again). Uploading one again only overwrites it, so the mirror skips the
        # listing for a run that never ran (SCHEDULED): fewer requests to a slow server.
        self.list_artifacts = list_artifacts
        self.params: dict[str, str] | None = None  # what the real run has (None: not read yet)
        self.tags: dict[str, str] = {}
        self.artifacts: dict[str, tuple[int, int]] = {}
        self.inputs: set[tuple] = set()  # dataset inputs the real run has
        self.pending: dict[str, list] = {}  # points read locally, not yet confirmed on the server
        self.unsure: set[str] = set()  # keys whose pending points may be partly on the server
        self.models = ModelReplay(client, run_id)  # the local run's logged models on the server
        self.sent = 0  # points delivered by this instance
        self.added = False  # anything delivered by this instance

    def _reconcile(self) -> None:
        real = self.client.get_run(self.run_id)
        artifacts = {}
        if self.list_artifacts or real.info.status != "SCHEDULED":
            # there, of an unknown version: compared by size
            # the run's own artifact store: MLflow 3's `list_artifacts(run_id, path)` adds the files of a
            # logged model of the run named `path`, and finds that model through the default tracking URI
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository  # noqa: PLC0415

            repo = get_artifact_repository(real.info.artifact_uri, tracking_uri=self.client.tracking_uri)
            artifacts = {info.path: (info.file_size, -1) for info in self._walk(repo, None)}
        if real.info.status == "SCHEDULED":
            self.client.update_run(self.run_id, status="RUNNING")
        self.artifacts, self.tags = artifacts, dict(real.data.tags)
        self.inputs = {(d.dataset.name, d.dataset.digest, tuple(sorted((t.key, t.value) for t in d.tags or [])))
                       for d in (getattr(real.inputs, "dataset_inputs", None) or [])}
        # only a metric the real run has already may hold some of the local points (a requeued job)
        self.unsure = self.local.metric_keys() & set(real.data.metrics)
        self.models.reconcile(real)
        self.params = dict(real.data.params)  # last: a reconcile that failed half-way is done again

    def _walk(self, repo, path):
        for info in repo.list_artifacts(path):
            if info.is_dir:
                yield from self._walk(repo, info.path)
            else:
                yield info

    def step(self, final: bool = False) -> None:
        """Send what is new; raises if the server fails (nothing is lost: the next step resumes)."""
        from mlflow.entities import Param, RunTag

        if self.params is None:
            self._reconcile()
        params = [Param(k, v) for k, v in self.local.params(0 if final else 0.5).items() if k not in self.params]
        for chunk in chunks(params, MAX_PARAMS_TAGS):
            self.client.log_batch(self.run_id, params=chunk)
            self.params.update((p.key, p.value) for p in chunk)
        for key, points in self.local.new_points(full=final).items():
            self.pending.setdefault(key, []).extend(points)
        for key in sorted(self.unsure):
            self._match(key)
        # the logged models read after the points: every model a pending point is linked to is on the server
        self.added = self.models.step(self.local.logged_models(), self.local.model_files) or self.added
        for m in self.models.unlinked():  # sent before its model existed: again, linked, as `log_model` does
            self.pending.setdefault(m.key, []).append(m)  # (one send of a point pending twice: `_send_metrics`)
        self._send_metrics()
        self.added = self.models.send_io(*self.local.model_io()) or self.added
        tags = [RunTag(k, v) for k, v in self.local.tags().items() if self.tags.get(k) != v]
        for chunk in chunks(tags, MAX_PARAMS_TAGS):
            self.client.log_batch(self.run_id, tags=chunk)
            self.tags.update((t.key, t.value) for t in chunk)
        self._send_inputs()
        self._send_artifacts(final)
        self._send_registrations()
        if final:
            self._note_skipped()

    def _send_inputs(self) -> None:
        """The run's dataset inputs the real run lacks (a dataset is its name and digest, with its context)."""
        def key(d) -> tuple:
            return (d.dataset.name, d.dataset.digest, tuple(sorted((t.key, t.value) for t in d.tags or [])))

        new = [d for d in self.local.inputs() if key(d) not in self.inputs]
        if new:
            self.client.log_inputs(self.run_id, datasets=new)
            self.inputs.update(key(d) for d in new)
            self.added = True

    def _note_skipped(self) -> None:
        """What the replay did not deliver as itself, said in the real run (`repro.replay.skipped`)."""
        skipped = {**self.local.not_replayed(), "model registrations refused by the server": registration.refused(self.bundle),
                   "model inputs/outputs of models not in the local store": self.models.unknown,
                   "logged models never finalized (PENDING, files not sent)": self.models.unfinished}
        skipped = {k: n for k, n in skipped.items() if n}
        value = T.short(", ".join(f"{k}: {n}" for k, n in sorted(skipped.items())))
        if skipped and self.tags.get(T.REPLAY_SKIPPED) != value:
            self.client.set_tag(self.run_id, T.REPLAY_SKIPPED, value)
            self.tags[T.REPLAY_SKIPPED] = value

    def _sent(self, prefix: str) -> bool:
        """Whether every local file under artifact path `prefix` is on the real run; a prefix that names a
        logged model of the run instead (`runs:/<run>/<name>`, which MLflow 3 resolves to that model):
        whether the model is finalized on the server."""
        files = {p: v for p, v in self.local.artifacts().items() if p == prefix or p.startswith(prefix.rstrip("/") + "/")}
        if not files:
            name = prefix.strip("/").split("/", 1)[0]
            return any(lm.name == name and self.models.finished(lm.model_id) for lm in self.local.logged_models())
        return all(self._known(p, size, mtime) for p, (size, mtime, _f) in files.items())

    def _known(self, path: str, size: int, mtime: int) -> bool:
        known = self.artifacts.get(path)
        return known is not None and (known == (size, mtime) or (known[1] == -1 and known[0] == size))

    def _send_registrations(self) -> None:
        """The model registrations queued in the bundle, after the model's files (runtime/registration.py)."""
        if registration.queued(self.bundle):
            self.added = registration.deliver(self.client, self.bundle, self._sent, self.models.finished) > 0 or self.added

    def _match(self, key: str) -> None:
        """Pending points of `key` = its local points the real history lacks."""
        have = {_point(m) for m in self.client.get_metric_history(self.run_id, key)}
        self.pending[key] = [m for m in self.local.new_points(key, since_start=True).get(key, []) if _point(m) not in have]
        self.unsure.discard(key)

    def _send_metrics(self) -> None:
        # A point is its (key, value, step, timestamp): SQL stores keep one of identical points, so
        # the same point logged twice in one millisecond is one point (sending it twice would fail).
        batch, seen = [], set()
        for key in list(self.pending):
            for m in self.pending[key]:
                if (key, *_point(m)) not in seen:
                    seen.add((key, *_point(m)))
                    batch.append(m)
        # linked to their models on the server first, then cut into one request each (runtime/batching.py)
        for chunk in chunks([self.models.link(m) for m in batch], MAX_METRICS):
            try:
                self.client.log_batch(self.run_id, metrics=chunk)
            except BaseException:
                self.unsure.update(m.key for m in chunk)  # the server may have applied it
                raise
            self.models.delivered(chunk)
            sent = {(m.key, *_point(m)) for m in chunk}
            for key in {m.key for m in chunk}:
                self.pending[key] = [m for m in self.pending[key] if (key, *_point(m)) not in sent]
            self.sent += len(chunk)
            self.added = True

    def _send_artifacts(self, final: bool) -> None:
        now_ns = time.time_ns()
        # a model queued for registration is complete (its log_model returned): sent without settling
        ready = tuple(e["prefix"].rstrip("/") + "/" for e in registration.queued(self.bundle) if e.get("prefix"))
        for path, (size, mtime, file) in sorted(self.local.artifacts().items()):
            if self._known(path, size, mtime):
                continue
            if not final and now_ns - mtime < self.settle_s * 1e9 and not path.startswith(ready):
                continue  # still being written
            parent = Path(path).parent.as_posix()
            self.client.log_artifact(self.run_id, str(file), artifact_path=None if parent == "." else parent)
            self.artifacts[path] = (size, mtime)
            self.added = True

    def requeue(self) -> None:
        """The job was requeued: the real run SCHEDULED again, `repro.attempt` + 1 (unless terminal already)."""
        real = self.client.get_run(self.run_id)
        if real.info.status in TERMINAL:
            return
        try:
            attempt = int(real.data.tags.get(T.ATTEMPT) or 1)
        except ValueError:
            attempt = 1
        self.client.set_tag(self.run_id, T.ATTEMPT, str(attempt + 1))
        self.tags[T.ATTEMPT] = str(attempt + 1)
        self.client.update_run(self.run_id, status="SCHEDULED")

    def end(self, status: str, reason: str | None, end_time: int | None) -> bool:
        """End the real run with the command's status unless it is terminal already; True if this ended it."""
        if self.client.get_run(self.run_id).info.status in TERMINAL:
            return False
        if reason and self.tags.get(T.STATUS_REASON) != T.short(reason):
            self.client.set_tag(self.run_id, T.STATUS_REASON, T.short(reason))
        self.client.set_terminated(self.run_id, status, end_time=end_time)
        return True


__all__ = ["LocalRun", "Replayer", "TERMINAL", "open_local"]
