"""The entry point's tracking store inside a repro run: writes local-first, reads through to the real server.

The worker gives the entry point `MLFLOW_TRACKING_URI=repro-local-first:///<offline dir>` (when this
package is installed in the job's environment: MLflow finds the scheme through the entry point group
`mlflow.tracking_store`). So the project sees a tracking URI that is not a `file:` one, as under plain
`mlflow run` against a server, while:

- everything it logs goes to the run's SQLite local store (`<offline dir>/store.db`, MLflow's own
  `SqlAlchemyStore`), which the mirror delivers to the real run;
- the project sees the server's ids: the local run answers as the real run (`REPRO_RUN_ID`) in the
  real run's experiment (bundle.json's `real_experiment_id`), and those ids are mapped to the local
  ones for writes (the local ids never reach the project, so they cannot collide with the server's);
- `search_runs`, `search_experiments`, `get_experiment_by_name`, `get_experiment`, and `get_run` of
  any other run read the real server (`REPRO_TRACKING_URI`). While the server is away it says so once
  on stderr and answers from the local store (which knows only this run and its experiment).

The registry of this scheme is `runtime/registry.py`. Imported by MLflow only, inside the entry point.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from . import offline
from .storefault import Reporter, quiet_mlflow, store_cause

# the store's writes and reads of the local run, its experiment and its logged models: the real ids
# they are given are mapped to the local ones, and the entities they answer with carry the real ids
_LOCAL = ("get_run", "create_run", "update_run_info", "delete_run", "restore_run", "log_metric", "log_param",
          "set_tag", "delete_tag", "log_batch", "get_metric_history", "get_max_step_for_metric",
          "get_metric_history_bulk_interval_from_steps", "log_inputs", "log_outputs", "record_logged_model",
          "set_experiment_tag", "create_logged_model", "get_logged_model", "finalize_logged_model",
          "search_logged_models")

# writes whose answer a project does not use: once the store cannot be written they are dropped, counted
_DROPPABLE = frozenset(("log_metric", "log_param", "set_tag", "delete_tag", "log_batch", "update_run_info",
                        "set_experiment_tag", "log_inputs", "log_outputs", "record_logged_model"))


def _mapped(name: str):
    parent = getattr(SqlAlchemyStore, name)
    sig = inspect.signature(parent)

    def method(self, *args, **kwargs):
        if self.inside():  # MLflow's own store code calling itself: local ids, local answers
            return parent(self, *args, **kwargs)
        bound = sig.bind(self, *args, **kwargs)
        for k, v in bound.arguments.items():
            if k in ("run_id", "source_run_id"):
                bound.arguments[k] = self.to_local_run(v)
            elif k == "experiment_id":
                bound.arguments[k] = self.to_local_experiment(v)
            elif k == "experiment_ids" and v is not None:
                bound.arguments[k] = [self.to_local_experiment(e) for e in v]
        if name in _DROPPABLE and self.fault.cause is not None:  # said once already: not tried again
            self.fault.failed(self.fault.cause)
            return None
        try:
            with self.within():
                return self.to_real(parent(*bound.args, **bound.kwargs))
        except Exception as e:
            cause = store_cause(e)
            if cause is None:
                raise
            self.fault.failed(cause)
            if name in _DROPPABLE:
                return None
            from mlflow.exceptions import MlflowException  # noqa: PLC0415

            raise MlflowException(f"the local store {self.bundle} cannot be written ({cause})") from None

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`SqlAlchemyStore.{name}` on the local run, in the real run's ids."
    return method


class LocalFirstStore(SqlAlchemyStore):
    """MLflow's SQL store on the run's local database, reading through to the real tracking server."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None):
        self.bundle = Path(url2pathname(urlparse(store_uri or "").path))
        meta = offline.read_bundle(self.bundle)
        self.local_run_id, self.local_exp_id = meta["offline_run_id"], str(meta["experiment_id"])
        self.real_uri, self.real_run_id = os.environ.get("REPRO_TRACKING_URI") or None, meta.get("run_id")
        self.real_exp_id: str | None = meta.get("real_experiment_id")
        self._real_client = None
        self._said = False
        self._built = False  # MLflow's own reads while the store is built stay local (and out of its build lock)
        self._depth = threading.local()
        self.fault = Reporter(str(self.bundle))
        quiet_mlflow()
        super().__init__(offline.store_uri(self.bundle), (self.bundle / "artifacts").as_uri())
        self._built = True

    # -- ids: the project sees the real ones ---------------------------------------------------

    def inside(self) -> bool:
        """Whether this thread is inside one of the store's own calls (or the store is being built)."""
        return not self._built or getattr(self._depth, "n", 0) > 0

    @contextmanager
    def within(self):
        self._depth.n = getattr(self._depth, "n", 0) + 1
        try:
            yield
        finally:
            self._depth.n -= 1

    def to_local_run(self, run_id):
        return self.local_run_id if self.real_run_id and run_id == self.real_run_id else run_id

    def _real_experiment(self) -> str | None:
        """The real run's experiment, from bundle.json (the batch record's; the one-command form without
        `MLFLOW_EXPERIMENT_ID` has none: the entry point then sees the local experiment's id)."""
        return self.real_exp_id

    def shown_experiment(self) -> str:
        """The id the entry point knows its experiment by."""
        return self.real_exp_id or self.local_exp_id

    def to_local_experiment(self, experiment_id):
        real = self._real_experiment()
        return self.local_exp_id if real and str(experiment_id) == real else experiment_id

    def to_real(self, obj):
        """`obj` (a Run, RunInfo, Experiment, LoggedModel or a list of them) in the real ids."""
        from mlflow.entities import Experiment, LoggedModel, Run, RunInfo  # noqa: PLC0415

        if isinstance(obj, list):  # a PagedList keeps its token
            for i, o in enumerate(obj):
                obj[i] = self.to_real(o)
            return obj
        if isinstance(obj, (Run, RunInfo)):
            proto = obj.to_proto()
            info = proto.info if isinstance(obj, Run) else proto
            if info.run_id == self.local_run_id and self.real_run_id:
                info.run_id = info.run_uuid = self.real_run_id
            if info.experiment_id == self.local_exp_id and self._real_experiment():
                info.experiment_id = self.real_exp_id
            return type(obj).from_proto(proto)
        if isinstance(obj, (Experiment, LoggedModel)):
            proto = obj.to_proto()
            info = proto.info if isinstance(obj, LoggedModel) else proto
            if info.experiment_id == self.local_exp_id and self._real_experiment():
                info.experiment_id = self.real_exp_id
            if isinstance(obj, LoggedModel) and info.source_run_id == self.local_run_id and self.real_run_id:
                info.source_run_id = self.real_run_id
            return type(obj).from_proto(proto)
        return obj

    # -- the real server --------------------------------------------------------------------

    def _real(self):
        if not self.real_uri:
            raise ConnectionError("no real tracking server (REPRO_TRACKING_URI is empty)")
        if self._real_client is None:
            from mlflow.tracking import MlflowClient  # noqa: PLC0415

            self._real_client = MlflowClient(tracking_uri=self.real_uri)
        return self._real_client

    def _away(self, e: BaseException) -> None:
        if not self._said:
            self._said = True
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            print(f"repro runtime: tracking server {self.real_uri} away ({first}); reads answer from this run's "
                  "local store until it is back", file=sys.stderr)

    def _through(self, read, local):
        """`read(real client)`, or, when the server does not answer, `local()` (said once)."""
        from mlflow.exceptions import MlflowException, RestException  # noqa: PLC0415

        try:
            with offline.quick_requests():  # one quick try: a server away is said at once
                return read(self._real())
        except RestException:
            raise  # the server answered (not found, bad filter): its answer, as under plain `mlflow run`
        except (MlflowException, OSError, ConnectionError) as e:
            self._away(e)
            with self.within():
                return local()

    def _not_here(self, what: str):
        from mlflow.exceptions import MlflowException  # noqa: PLC0415
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST  # noqa: PLC0415

        raise MlflowException(f"{what} is not in this run's local store (the tracking server is away)",
                              RESOURCE_DOES_NOT_EXIST)

    # -- reads --------------------------------------------------------------------------------

    def search_runs(self, experiment_ids, filter_string, run_view_type, max_results=1000, order_by=None,
                    page_token=None):
        if self.inside():
            return super().search_runs(experiment_ids, filter_string, run_view_type, max_results, order_by, page_token)

        def local():
            from mlflow.store.entities.paged_list import PagedList  # noqa: PLC0415

            mine = [self.local_exp_id for e in experiment_ids if str(e) == self.shown_experiment()]
            if not mine:  # the local store knows no other experiment
                return PagedList([], None)
            return self.to_real(super(LocalFirstStore, self).search_runs(
                mine, filter_string, run_view_type, max_results, order_by, page_token))

        return self._through(lambda c: c.search_runs(experiment_ids, filter_string, run_view_type, max_results,
                                                     order_by, page_token), local)

    def search_experiments(self, *args, **kwargs):
        if self.inside():
            return super().search_experiments(*args, **kwargs)
        return self._through(lambda c: c.search_experiments(*args, **kwargs),
                             lambda: self.to_real(super(LocalFirstStore, self).search_experiments(*args, **kwargs)))

    def get_experiment_by_name(self, experiment_name):
        if self.inside():
            return super().get_experiment_by_name(experiment_name)
        return self._through(lambda c: c.get_experiment_by_name(experiment_name),
                             lambda: self.to_real(super(LocalFirstStore, self).get_experiment_by_name(experiment_name)))

    def get_experiment(self, experiment_id):
        def local():
            if str(experiment_id) == self.shown_experiment():
                return self.to_real(super(LocalFirstStore, self).get_experiment(self.local_exp_id))
            return self._not_here(f"experiment {experiment_id}")

        if self.inside():
            return super().get_experiment(experiment_id)
        return self._through(lambda c: c.get_experiment(experiment_id), local)

    def get_run(self, run_id):
        if self.inside():
            return super().get_run(run_id)
        if run_id in (self.local_run_id, self.real_run_id):
            with self.within():
                return self.to_real(super().get_run(self.to_local_run(run_id)))
        return self._through(lambda c: self._loadable(c.get_run(run_id)), lambda: self._not_here(f"run {run_id}"))

    def _loadable(self, run):
        """A run of the server whose `mlflow-artifacts:` root this process can read (through the server's URL)."""
        from mlflow.entities import Run  # noqa: PLC0415

        from .registration import real_artifact_uri  # noqa: PLC0415

        uri = real_artifact_uri(run.info.artifact_uri, self.real_uri)
        if uri == run.info.artifact_uri:
            return run
        proto = run.to_proto()
        proto.info.artifact_uri = uri
        return Run.from_proto(proto)


for _name in _LOCAL:
    if _name != "get_run" and callable(getattr(SqlAlchemyStore, _name, None)):
        setattr(LocalFirstStore, _name, _mapped(_name))


__all__ = ["LocalFirstStore"]
