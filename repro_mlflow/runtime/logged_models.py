"""MLflow 3 LoggedModels of a run's local store, delivered as LoggedModels of the real server.

Each logged model of the local run (`mlflow.<flavor>.log_model(name=...)`, `mlflow.initialize_logged_model`)
is made once on the server in the real run's experiment, with the real run as its source, its name,
type, params and tags; its later params and tags follow; once it is finalized locally its files are
uploaded to it (`log_model_artifacts`) and it is finalized with the same status. The metric points
linked to it (`mlflow.log_metric(..., model_id=...)`) are sent with the run's points, linked to the
server's model (`link`); the run's model inputs and outputs (`log_model` in a run logs one) follow.

The server gives a model its own id: the id the project saw (the local one) is the server model's
tag `repro.local_model_id`, by which a replay in another process (`repro sync` after the mirror)
finds the models already made, so each is made once. A model's files go only to it (not also to the run's
artifacts), and a registry version of it is made once it is finalized, with the server's id as its
`model_id` and `models:/<server id>` as its source, as plain MLflow 3 makes one (runtime/registration.py).
Stdlib + the replayer's MlflowClient.
"""

from __future__ import annotations

from pathlib import Path

from .. import tags as T

_DONE = ("READY", "FAILED")
# MLflow's record, on a logged model, of the registry versions made from it: set on the server by the
# registration's delivery (runtime/registration.py), never copied from the local model (whose entry of a
# version queued while the server was away has no number)
MODEL_VERSIONS = "mlflow.modelVersions"


def _own_tags(tags) -> dict:
    return {k: v for k, v in (tags or {}).items() if k != MODEL_VERSIONS}


def _status(model) -> str:
    return str(getattr(model.status, "name", model.status)).rsplit(".", 1)[-1]


def _point(m) -> tuple:
    return (m.key, m.value, m.step, m.timestamp)


class ModelReplay:
    """The real server's counterparts of a local run's logged models; one per `Replayer`."""

    def __init__(self, client, run_id: str):
        self.client, self.run_id = client, run_id
        self.real: dict[str, object] = {}  # local model id -> the server's LoggedModel
        self.links: dict[tuple, tuple] = {}  # (key, value, step, timestamp) -> (real model id, dataset name, digest)
        self.inputs: set[str] = set()  # real model ids the real run has as inputs
        self.outputs: set[tuple] = set()  # (real model id, step) the real run has as outputs
        self.unknown = 0  # model inputs/outputs naming a model the local store does not hold
        self.stale = False  # whether `real` may lack a model the server made
        self.unfinished = 0  # local models never finalized (made on the server, PENDING there, files not sent)
        self.on_server: set[tuple] = set()  # (real model id, key, value, step, timestamp): links the server has

    def reconcile(self, real_run) -> None:
        """What the server has already: this run's models (by their local id tag), inputs and outputs."""
        self.experiment_id = real_run.info.experiment_id
        self._search()
        self.inputs = {i.model_id for i in getattr(real_run.inputs, "model_inputs", None) or []}
        outputs = getattr(real_run, "outputs", None)
        self.outputs = {(o.model_id, o.step) for o in getattr(outputs, "model_outputs", None) or []}

    def _search(self) -> None:
        """This run's models on the server, by the local id each carries."""
        self.real, self.stale = {}, False
        token = None
        while True:
            page = self.client.search_logged_models(
                experiment_ids=[self.experiment_id], filter_string=f"source_run_id = '{self.run_id}'",
                page_token=token)
            for m in page:
                local = (m.tags or {}).get(T.LOCAL_MODEL_ID)
                if local:
                    self.real[local] = m
            token = page.token
            if not token:
                return

    def step(self, local_models: list, reroot) -> bool:
        """Make, update and finalize the server's models of `local_models` (LoggedModels of the local
        store; `reroot(uri)`: the local folder of a model's artifact location). True if anything was sent."""
        added = False
        self.links = {}
        self.unfinished = sum(1 for lm in local_models if _status(lm) not in _DONE)
        if self.stale:  # a creation whose answer was lost may have made its model: looked for again
            self._search()
        for lm in local_models:
            real = self.real.get(lm.model_id)
            if real is None:
                try:
                    real = self.client.create_logged_model(
                        self.experiment_id, name=lm.name, source_run_id=self.run_id, model_type=lm.model_type,
                        params=dict(lm.params or {}), tags={**_own_tags(lm.tags), T.LOCAL_MODEL_ID: lm.model_id})
                except BaseException:
                    self.stale = True
                    raise
                self.real[lm.model_id] = real
                added = True
            params = {k: v for k, v in (lm.params or {}).items() if (real.params or {}).get(k) != v}
            tags = {k: v for k, v in _own_tags(lm.tags).items() if (real.tags or {}).get(k) != v}
            if params:
                self.client.log_model_params(real.model_id, params)
            if tags:
                self.client.set_logged_model_tags(real.model_id, tags)
            status = _status(lm)
            if status in _DONE and _status(real) not in _DONE:
                files = reroot(lm.artifact_location)
                if Path(files).is_dir() and any(Path(files).iterdir()):
                    self.client.log_model_artifacts(real.model_id, str(files))
                from mlflow.entities import LoggedModelStatus  # noqa: PLC0415

                real = self.client.finalize_logged_model(real.model_id, getattr(LoggedModelStatus, status))
                added = True
            elif params or tags:
                real = self.client.get_logged_model(real.model_id)
            self.real[lm.model_id] = real
            added = added or bool(params or tags)
            for m in lm.metrics or []:
                self.links.setdefault(_point(m), (real.model_id, m.dataset_name, m.dataset_digest))
            self.on_server |= {(real.model_id, *_point(m)) for m in real.metrics or []}
        return added

    def unlinked(self) -> list:
        """Points linked to a local model whose link the server's model lacks, as run points to send again
        (`link` gives them the model). MLflow's `log_model` re-logs the run's points of its step with the new
        model's id; a point the mirror had sent before the model existed reaches the model only so."""
        from mlflow.entities import Metric  # noqa: PLC0415

        return [Metric(key, value, timestamp, step) for (key, value, step, timestamp), (real_id, _n, _d)
                in self.links.items() if (real_id, key, value, step, timestamp) not in self.on_server]

    def delivered(self, metrics: list) -> None:
        """`metrics` (as `link` gave them) reached the server: their model links are there."""
        self.on_server |= {(m.model_id, *_point(m)) for m in metrics if getattr(m, "model_id", None)}

    def finished(self, local_id: str) -> str | None:
        """The server's id of local model `local_id` once it is finalized there (its files sent), else None."""
        real = self.real.get(local_id)
        return real.model_id if real is not None and _status(real) in _DONE else None

    def link(self, metric):
        """`metric` (a point of the local run) linked to the server's model it was logged for, if any."""
        found = self.links.get(_point(metric))
        if found is None:
            return metric
        from mlflow.entities import Metric  # noqa: PLC0415

        model_id, name, digest = found
        return Metric(metric.key, metric.value, metric.timestamp, metric.step, model_id=model_id,
                      dataset_name=name, dataset_digest=digest)

    def send_io(self, model_inputs: list, model_outputs: list) -> bool:
        """The run's model inputs and outputs (local model ids) as the server's models; True if any was sent."""
        from mlflow.entities import LoggedModelInput, LoggedModelOutput  # noqa: PLC0415

        unknown = 0
        ins, outs = [], []
        for i in model_inputs:
            real = self.real.get(i.model_id)
            if real is None:
                unknown += 1
            elif real.model_id not in self.inputs:
                ins.append(LoggedModelInput(real.model_id))
        for o in model_outputs:
            real = self.real.get(o.model_id)
            if real is None:
                unknown += 1
            elif (real.model_id, o.step) not in self.outputs:
                outs.append(LoggedModelOutput(real.model_id, o.step))
        self.unknown = unknown
        if ins:
            self.client.log_inputs(self.run_id, models=ins)
            self.inputs.update(i.model_id for i in ins)
        if outs:
            self.client.log_outputs(self.run_id, outs)
            self.outputs.update((o.model_id, o.step) for o in outs)
        return bool(ins or outs)


__all__ = ["ModelReplay"]
