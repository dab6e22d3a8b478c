"""The entry point's tracking store inside a repro run: writes local-first, reads through to the real server.

The worker gives the entry point `MLFLOW_TRACKING_URI=repro-local-first:///<offline dir>` (when this
package is installed in the job's environment: MLflow finds the scheme through the entry point group
`mlflow.tracking_store`). So the project sees a tracking URI that is not a `file:` one, as under plain
`mlflow run` against a server, while:

- everything it logs goes to the run's SQLite local store (`<offline dir>/store.db`, MLflow's own
  `SqlAlchemyStore`), which the mirror delivers to the real run;
- `search_runs`, `search_experiments`, `get_experiment_by_name`, and `get_run` / `get_experiment` of
  anything but the local run and its experiment read the real server (`REPRO_TRACKING_URI`); the local
  experiment stands for the real run's experiment. While the server is away it says so once on stderr
  and answers from the local store.

The registry of this scheme is `runtime/registry.py`. Imported by MLflow only, inside the entry point.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from . import offline


_QUICK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class LocalFirstStore(SqlAlchemyStore):
    """MLflow's SQL store on the run's local database, reading through to the real tracking server."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None):
        self.bundle = Path(url2pathname(urlparse(store_uri or "").path))
        meta = offline.read_bundle(self.bundle)
        self.local_run_id, self.local_exp_id = meta["offline_run_id"], str(meta["experiment_id"])
        self.real_uri, self.real_run_id = os.environ.get("REPRO_TRACKING_URI") or None, meta.get("run_id")
        self._real_client = None
        self._real_exp_id: str | None = None
        self._said = False
        self._built = False  # MLflow's own reads while the store is built stay local (and out of its build lock)
        super().__init__(offline.store_uri(self.bundle), (self.bundle / "artifacts").as_uri())
        self._built = True

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

    def _real_experiment(self) -> str | None:
        """The real run's experiment id (the local experiment stands for it)."""
        if self._real_exp_id is None and self.real_run_id:
            self._real_exp_id = self._real().get_run(self.real_run_id).info.experiment_id
        return self._real_exp_id

    def _through(self, read, local):
        """`read(real client)`, or, when the server does not answer, `local()` (said once)."""
        from mlflow.exceptions import MlflowException, RestException  # noqa: PLC0415

        if not self._built:
            return local()
        saved = {k: os.environ.get(k) for k in _QUICK}
        os.environ.update(_QUICK)  # one quick try: a server away is said at once, not after minutes of retries
        try:
            return read(self._real())
        except RestException:
            raise  # the server answered (not found, bad filter): its answer, as under plain `mlflow run`
        except (MlflowException, OSError, ConnectionError) as e:
            self._away(e)
            return local()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # -- reads --------------------------------------------------------------------------------

    def search_runs(self, experiment_ids, filter_string, run_view_type, max_results=1000, order_by=None,
                    page_token=None):
        def real(c):
            ids = [self._real_experiment() or e if str(e) == self.local_exp_id else e for e in experiment_ids]
            return c.search_runs(ids, filter_string, run_view_type, max_results, order_by, page_token)

        return self._through(real, lambda: super(LocalFirstStore, self).search_runs(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token))

    def search_experiments(self, *args, **kwargs):
        return self._through(lambda c: c.search_experiments(*args, **kwargs),
                             lambda: super(LocalFirstStore, self).search_experiments(*args, **kwargs))

    def get_experiment_by_name(self, experiment_name):
        return self._through(lambda c: c.get_experiment_by_name(experiment_name),
                             lambda: super(LocalFirstStore, self).get_experiment_by_name(experiment_name))

    def get_experiment(self, experiment_id):
        if str(experiment_id) == self.local_exp_id:
            return super().get_experiment(experiment_id)
        return self._through(lambda c: c.get_experiment(experiment_id), lambda: super(LocalFirstStore, self).get_experiment(experiment_id))

    def get_run(self, run_id):
        if run_id == self.local_run_id:
            return super().get_run(run_id)
        return self._through(lambda c: c.get_run(run_id), lambda: super(LocalFirstStore, self).get_run(run_id))


__all__ = ["LocalFirstStore"]
