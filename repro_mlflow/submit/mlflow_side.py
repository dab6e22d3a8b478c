"""The MLflow side shared by every backend: create runs in bulk, tag them, end them."""

from __future__ import annotations

import getpass
import time
import uuid
from collections.abc import Iterable, Sequence

from mlflow.entities import Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import (
    MLFLOW_PROJECT_ENTRY_POINT,
    MLFLOW_RUN_NAME,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
    MLFLOW_USER,
)

from .. import tags as T
from ..mlflow_sql import sql_store, write_session
from ..schedulers.protocol import RunSpec


def run_tags(spec: RunSpec, source: str, user: str | None = None) -> dict[str, str]:
    """MLflow's own project tags plus the spec's `repro.*` tags."""
    return {
        MLFLOW_USER: user or getpass.getuser(),
        MLFLOW_SOURCE_NAME: source,
        MLFLOW_SOURCE_TYPE: "PROJECT",
        MLFLOW_PROJECT_ENTRY_POINT: spec.entry_point,
        **spec.tags,
    }


def create_runs(client: MlflowClient, experiment_id: str, specs: Sequence[RunSpec], source: str) -> list[str]:
    """Create one SCHEDULED run per spec with its tags and params; set and return the run ids.

    On a SQL store of a known schema revision this is one transaction through MLflow's own store
    models (about 1 ms a run); elsewhere (a tracking server, a newer schema) it goes through the
    public client, run by run.
    """
    store = sql_store(client)
    if store is not None:
        ids = _create_runs_sql(store, experiment_id, specs, source)
    else:
        ids = []
        for spec in specs:
            run = client.create_run(experiment_id, tags=run_tags(spec, source))
            rid = run.info.run_id
            client.log_batch(rid, params=[Param(k, str(v)) for k, v in spec.params.items()])
            client.update_run(rid, status="SCHEDULED")
            ids.append(rid)
    for spec, rid in zip(specs, ids):
        spec.run_id = rid
    return ids


def _create_runs_sql(store, experiment_id: str, specs: Sequence[RunSpec], source: str) -> list[str]:
    from mlflow.entities import LifecycleStage, SourceType
    from mlflow.store.tracking.dbmodels.models import SqlParam, SqlRun, SqlTag
    from mlflow.utils.name_utils import _generate_random_name
    from mlflow.utils.uri import append_to_uri_path

    experiment = store.get_experiment(experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        from ..errors import ReproError

        raise ReproError(f"experiment {experiment_id} is deleted")
    now = int(time.time() * 1000)
    ids, runs, tag_rows, param_rows = [], [], [], []
    user = getpass.getuser()  # once: it reads the environment and may ask the password database
    for spec in specs:
        rid = uuid.uuid4().hex
        tags = run_tags(spec, source, user)
        name = tags.setdefault(MLFLOW_RUN_NAME, _generate_random_name())
        runs.append(dict(
            name=name, run_uuid=rid, experiment_id=int(experiment_id), user_id=tags[MLFLOW_USER],
            artifact_uri=append_to_uri_path(experiment.artifact_location, rid, "artifacts"),
            source_type=SourceType.to_string(SourceType.PROJECT), source_name="", entry_point_name="",
            status=RunStatus.to_string(RunStatus.SCHEDULED), start_time=now, end_time=None,
            deleted_time=None, source_version="", lifecycle_stage=LifecycleStage.ACTIVE,
        ))
        tag_rows += [dict(run_uuid=rid, key=k, value=str(v)) for k, v in tags.items()]
        param_rows += [dict(run_uuid=rid, key=k, value=str(v)) for k, v in spec.params.items()]
        ids.append(rid)
    # Core executemany inserts: one statement per table instead of an ORM unit of work per run.
    with write_session(store) as session:
        session.execute(SqlRun.__table__.insert(), runs)
        if tag_rows:
            session.execute(SqlTag.__table__.insert(), tag_rows)
        if param_rows:
            session.execute(SqlParam.__table__.insert(), param_rows)
    return ids


def set_tags_bulk(client: MlflowClient, run_tags_: dict[str, dict[str, str]], new: bool = False) -> None:
    """Set tags on many runs (one transaction on a SQL store of a known schema revision). `new`: the runs
    were just created without these tags, so they are inserted without first deleting what they replace."""
    store = sql_store(client)
    if store is not None:
        from mlflow.store.tracking.dbmodels.models import SqlTag

        rows = [dict(run_uuid=rid, key=k, value=str(v)) for rid, tg in run_tags_.items() for k, v in tg.items()]
        if not rows:
            return
        if new:
            try:
                with write_session(store) as session:
                    session.execute(SqlTag.__table__.insert(), rows)
                return
            except Exception:  # noqa: BLE001 - one was set meanwhile (rolled back): replace below, which raises a real error
                pass
        by_keys: dict[frozenset, list[str]] = {}
        for rid, tg in run_tags_.items():
            by_keys.setdefault(frozenset(tg), []).append(rid)
        with write_session(store) as session:
            # replace = delete the (run, key) pairs being set, then one executemany insert
            for keys, ids in by_keys.items():
                for i in range(0, len(ids), 500):
                    session.query(SqlTag).filter(SqlTag.run_uuid.in_(ids[i:i + 500]), SqlTag.key.in_(sorted(keys))).delete(
                        synchronize_session=False)
            session.execute(SqlTag.__table__.insert(), rows)
        return
    for rid, tg in run_tags_.items():
        client.log_batch(rid, tags=[RunTag(k, str(v)) for k, v in tg.items()])


def end_run(client: MlflowClient, run_id: str, status: str, reason: str | None = None) -> None:
    """Mark a run terminal, with `repro.status_reason` when there is one."""
    if reason:
        from mlflow.exceptions import MlflowException

        try:
            client.set_tag(run_id, T.STATUS_REASON, T.short(reason))
        except MlflowException:
            # the job wrote its own reason at the same moment (a SQL store's insert race: one wins); if it
            # did not, the error was another one: raise it
            if T.STATUS_REASON not in client.get_run(run_id).data.tags:
                raise
    client.set_terminated(run_id, status, end_time=int(time.time() * 1000))


def delete_runs(client: MlflowClient, run_ids: Iterable[str]) -> None:
    """Remove runs created for a batch that never reached its scheduler."""
    for rid in run_ids:
        client.delete_run(rid)
