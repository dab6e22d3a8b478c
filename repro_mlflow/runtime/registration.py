"""The model registry inside a repro run: registrations queued with the run's bundle, delivered once.

MLflow takes the registry URI from the tracking URI, so inside a repro run the registry is the
`repro-local-first:///<offline dir>` store of this package too (entry point group
`mlflow.model_registry_store`, `runtime/registry.py`). `LocalFirstRegistry`:

- `create_model_version` of a model this run logged is written to the bundle's queue
  (`registrations.jsonl`). An MLflow 3 LoggedModel (`log_model(registered_model_name=...)`,
  `register_model("runs:/…/<name>")` or `("models:/<id>")`) is queued by its local id: the replay
  registers it once the server's model is made and finalized (its files sent to it), with that model's
  id as `model_id` and `models:/<server id>` as source, and records the version on the model (tag
  `mlflow.modelVersions`), as plain MLflow 3 does. Model files logged as run artifacts (a path or
  `runs:/<run>/<path>` holding an MLmodel) are queued with source `runs:/<real run>/<path>`, registered
  once those files are on the real run. Either is registered exactly once (the version carries
  the tag `repro.registration` = the queue entry's id, looked for before creating another). While
  the mirror runs and the server answers, the call waits for that delivery (at most
  `REPRO_REGISTRY_WAIT` s, default 120) and returns the server's version, as under plain `mlflow run`;
  otherwise it returns at once a version with status PENDING_REGISTRATION and no number (said once).
- `create_registered_model` goes to the server; while it is away it is queued the same way.
- everything else (get, search, aliases, `models:/name/1` download URIs) is the real server's registry,
  asked with one quick try: while the server is away such a call fails at once with
  TEMPORARILY_UNAVAILABLE (said once on stderr), never after MLflow's minutes of retries.

The delivery side (`deliver`) is stdlib + the replayer's MlflowClient.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

from .. import tags as T
from . import offline

QUEUE_FILE = "registrations.jsonl"
DONE_FILE = "registrations-done.json"


# -- the queue (stdlib) -------------------------------------------------------------------------

def queued(bundle: str | Path) -> list[dict]:
    """The bundle's queued registrations, in order (a line being written is left for later)."""
    try:
        text = (Path(bundle) / QUEUE_FILE).read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def done(bundle: str | Path) -> dict[str, str]:
    """{queue entry id: what the server made of it (the version number, or "model")}."""
    try:
        return json.loads((Path(bundle) / DONE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def enqueue(bundle: str | Path, entry: dict) -> dict:
    """Append `entry` (given an id) to the bundle's queue; one write of one line (O_APPEND)."""
    entry = {"id": uuid.uuid4().hex, **entry}
    fd = os.open(Path(bundle) / QUEUE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)
    return entry


def _mark(bundle: Path, entry_id: str, result: str) -> None:
    data = {**done(bundle), entry_id: result}
    tmp = bundle / (DONE_FILE + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, bundle / DONE_FILE)


# -- delivery (the replayer, under the bundle lock) ----------------------------------------------

REFUSED = "refused: "  # a done entry the server refused (its one-line answer follows)


def deliver(client, bundle: str | Path, sent, model=None) -> int:
    """Register what the queue holds and the server lacks, each once; `sent(prefix)`: whether every
    local file of that artifact prefix has reached the real run; `model(local model id)`: the server's
    id of that logged model once it is finalized there, else None. Returns how many were settled.
    A registration the server refuses (a bad name) is settled as refused, not retried for ever."""
    from mlflow.exceptions import MlflowException, RestException  # noqa: PLC0415

    bundle = Path(bundle)
    finished, n = done(bundle), 0
    for e in queued(bundle):
        if e["id"] in finished:
            continue
        if e["kind"] == "version" and e.get("local_model_id"):
            real = model(e["local_model_id"]) if model is not None else None
            if real is None:
                continue  # after the server's model is made, its files sent and it is finalized
            e = {**e, "source": f"models:/{real}", "model_id": real}
        elif e["kind"] == "version" and not sent(e.get("prefix") or ""):
            continue  # after the model's files
        try:
            _mark(bundle, e["id"], _register(client, e))
        except RestException as ex:  # the server answered: no
            _mark(bundle, e["id"], REFUSED + (str(ex).strip().splitlines() or ["?"])[0][:200])
        except MlflowException as ex:
            if ex.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
                _mark(bundle, e["id"], REFUSED + (str(ex).strip().splitlines() or ["?"])[0][:200])
            else:
                raise
        n += 1
    return n


def _register(client, e: dict) -> str:
    """Make queue entry `e` on the server unless it is there already; what the server made of it."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        client.create_registered_model(e["name"], **({"tags": e["tags"]} if e["kind"] == "model" and e.get("tags") else {}))
    except MlflowException as ex:
        if ex.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    if e["kind"] == "model":
        return "model"
    mine = [v for v in client.search_model_versions(f"name = {T.filter_literal(e['name'])}")
            if (v.tags or {}).get(T.REGISTRATION) == e["id"]]
    mv = mine[0] if mine else client.create_model_version(
        e["name"], e["source"], e.get("run_id"), tags={**(e.get("tags") or {}), T.REGISTRATION: e["id"]},
        description=e.get("description"), **({"model_id": e["model_id"]} if e.get("model_id") else {}))
    if e.get("model_id"):
        _link(client, e["model_id"], e["name"], str(mv.version))
    return str(mv.version)


def _link(client, model_id: str, name: str, version: str) -> None:
    """Record the version on its logged model (tag `mlflow.modelVersions`) as MLflow's `register_model` does
    once the server answered (the server records it too, with the version as a number), once."""
    from .logged_models import MODEL_VERSIONS  # noqa: PLC0415

    tags = client.get_logged_model(model_id).tags or {}
    try:
        have = json.loads(tags.get(MODEL_VERSIONS) or "[]")
    except ValueError:
        have = []
    entry = {"name": name, "version": version}
    if entry not in have:
        client.set_logged_model_tags(model_id, {MODEL_VERSIONS: json.dumps([*have, entry])})


def refused(bundle: str | Path) -> int:
    """How many of the bundle's registrations the server refused."""
    return sum(1 for v in done(bundle).values() if v.startswith(REFUSED))


def real_artifact_uri(uri: str, real_uri: str | None) -> str:
    """An `mlflow-artifacts:` URI of the real server as the http URL it stands for (MLflow resolves
    those against the tracking URI, which inside a repro run is not the server's); others as they are."""
    if not uri.startswith("mlflow-artifacts:") or not real_uri or not real_uri.startswith(("http:", "https:")):
        return uri
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository  # noqa: PLC0415

    return MlflowArtifactsRepository.resolve_uri(uri, real_uri)


# -- the entry point's registry store -----------------------------------------------------------

def _pending(name: str, why: str):
    from mlflow.entities.model_registry import ModelVersion  # noqa: PLC0415

    now = int(time.time() * 1000)
    return ModelVersion(name, None, now, now, status="PENDING_REGISTRATION", status_message=why)


class LocalFirstRegistry:
    """The registry of `repro-local-first:///<offline dir>`: the real server's, with registrations of
    this run's models queued in the bundle and delivered after the model's files (module docstring)."""

    def __init__(self, store_uri: str | None = None, tracking_uri: str | None = None):
        from urllib.request import url2pathname  # noqa: PLC0415

        self.bundle = Path(url2pathname(urlparse(store_uri or "").path))
        meta = offline.read_bundle(self.bundle)
        self.local_run_id, self.real_run_id = meta["offline_run_id"], meta["run_id"]
        self.real_uri = os.environ.get("REPRO_TRACKING_URI") or None
        self._store = None
        self._said = False
        self._said_away = False

    def _real(self):
        if not self.real_uri:
            raise ConnectionError("no real tracking server (REPRO_TRACKING_URI is empty)")
        if self._store is None:
            from mlflow.tracking._model_registry.utils import _get_store  # noqa: PLC0415  (MLflow's own scheme dispatch)

            self._store = _get_store(self.real_uri, self.real_uri)
        return self._store

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._real(), name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args, **kwargs):
            return self._quick(lambda: attr(*args, **kwargs))

        return call

    def _quick(self, call):
        """`call()` on the real registry with one quick try: while the server is away it fails at once
        (said once on stderr), as the reads do, never after MLflow's minutes of retries."""
        from mlflow.exceptions import MlflowException, RestException  # noqa: PLC0415
        from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE  # noqa: PLC0415

        try:
            with offline.quick_requests():
                return call()
        except RestException:
            raise  # the server answered: its answer, as under plain `mlflow run`
        except (MlflowException, OSError, ConnectionError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            if not self._said_away:
                self._said_away = True
                print(f"repro runtime: the model registry of {self.real_uri} is away ({first}); registry calls "
                      "fail at once until it is back (registrations of this run's models are queued)",
                      file=sys.stderr)
            raise MlflowException(f"the model registry of {self.real_uri} is away: {first}",
                                  TEMPORARILY_UNAVAILABLE) from e

    def _up(self) -> bool:
        return bool(self.real_uri) and offline.reachable(self.real_uri, timeout=3)

    def _say(self, what: str) -> None:
        if not self._said:
            self._said = True
            print(f"repro runtime: {what} queued with the run's bundle: the mirror or `repro sync` registers it "
                  f"on {self.real_uri} after the model's files", file=sys.stderr)

    # -- the source as the real server knows it -------------------------------------------------

    def _local_client(self):
        from mlflow.tracking import MlflowClient  # noqa: PLC0415

        return MlflowClient(tracking_uri=offline.store_uri(self.bundle))

    def _roots(self) -> dict[str, Path]:
        """{artifact path prefix: local folder}: the local run's artifacts, and each logged model's under its name."""
        from .localstore import SqlLocalRun  # noqa: PLC0415

        local = SqlLocalRun(offline.store_uri(self.bundle), self.local_run_id, self.bundle)
        return {**{n + "/": d for n, d in local._model_dirs().items()},
                "": local._reroot(local.client.get_run(self.local_run_id).info.artifact_uri)}

    def get_model_version_download_uri(self, name, version):
        """The server's answer, made loadable from here: a model of this run from its local files,
        an `mlflow-artifacts:` location through the real server (this tracking URI is not http)."""
        uri = self._quick(lambda: self._real().get_model_version_download_uri(name, version))
        parsed = urlparse(uri)
        path = None
        if parsed.scheme == "runs":
            rid, _, path = parsed.path.lstrip("/").partition("/")
            path = path.strip("/") if rid in (self.local_run_id, self.real_run_id) else None
        elif f"/{self.real_run_id}/artifacts/" in uri:
            path = uri.split(f"/{self.real_run_id}/artifacts/", 1)[1].strip("/")
        if path:
            for prefix, root in self._roots().items():
                if (path + "/").startswith(prefix) and (root / path[len(prefix):]).exists():
                    return (root / path[len(prefix):]).as_uri()
        return real_artifact_uri(uri, self.real_uri)

    def _in_local_store(self, model_id: str) -> bool:
        """Whether `model_id` is a logged model of the run's local store (its replay makes it on the server)."""
        try:
            self._local_client().get_logged_model(model_id)
        except Exception:  # noqa: BLE001 - not a model of the local store
            return False
        return True

    def _of_this_run(self, source: str, run_id: str | None) -> str | None:
        """The artifact prefix in the real run of model files this run logged as artifacts (None: not this run's)."""
        parsed = urlparse(source)
        if parsed.scheme == "runs":
            rid, _, path = parsed.path.lstrip("/").partition("/") if not parsed.netloc else (parsed.netloc, "", parsed.path.lstrip("/"))
            return path.strip("/") if rid in (self.local_run_id, self.real_run_id) and path else None
        if parsed.scheme in ("", "file"):
            path = Path(source if not parsed.scheme else parsed.path).resolve()
            for prefix, root in self._roots().items():
                try:
                    return (prefix + path.relative_to(root.resolve()).as_posix()).strip("/")
                except ValueError:
                    continue
        return None

    # -- writes -----------------------------------------------------------------------------------

    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        from mlflow.entities.model_registry import RegisteredModel  # noqa: PLC0415

        if self._up():
            kw = {"deployment_job_id": deployment_job_id} if deployment_job_id else {}
            return self._quick(lambda: self._real().create_registered_model(name, tags, description, **kw))
        enqueue(self.bundle, {"kind": "model", "name": name, "tags": {t.key: t.value for t in tags or []},
                              "description": description})
        self._say(f"registered model {name!r}")
        return RegisteredModel(name, description=description)

    def create_model_version(self, name, source, run_id=None, tags=None, run_link=None, description=None,
                             local_model_path=None, model_id=None):
        entry = {"kind": "version", "name": name, "run_id": self.real_run_id, "description": description,
                 "tags": {t.key: t.value for t in tags or []}}
        if model_id and self._in_local_store(model_id):
            # a LoggedModel (MLflow 3's `log_model`, `register_model("runs:/…/<name>")`): registered from the
            # server's model, whose id is known once the replay has made it
            entry["local_model_id"] = model_id
        elif not model_id and (prefix := self._of_this_run(source, run_id)) is not None:
            entry |= {"source": f"runs:/{self.real_run_id}/{prefix}", "prefix": prefix}  # files in the run's artifacts
        else:  # not a model of this run: the server's registry, as it is
            return self._quick(lambda: self._real().create_model_version(
                name, source, run_id, tags, run_link, description, model_id=model_id))
        entry = enqueue(self.bundle, entry)
        live = os.environ.get("REPRO_OFFLINE") != "1"
        if live and self._up():
            deadline = time.monotonic() + float(os.environ.get("REPRO_REGISTRY_WAIT") or 120)
            while time.monotonic() < deadline:
                version = done(self.bundle).get(entry["id"])
                if version is not None and version.startswith(REFUSED):
                    from mlflow.exceptions import MlflowException  # noqa: PLC0415

                    raise MlflowException(version.removeprefix(REFUSED))
                if version is not None:
                    return self._quick(lambda v=version: self._real().get_model_version(name, v))
                time.sleep(0.2)
        self._say(f"version of model {name!r}")
        return _pending(name, "queued in the run's bundle: registered on the tracking server after the model's "
                              "files (the mirror or `repro sync`)")

    def _await_model_version_creation(self, mv, await_creation_for):
        if mv.version is None:  # queued: never waited for
            return
        self._quick(lambda: self._real()._await_model_version_creation(mv, await_creation_for))


__all__ = ["DONE_FILE", "LocalFirstRegistry", "QUEUE_FILE", "deliver", "done", "enqueue", "queued", "real_artifact_uri", "refused"]
