"""The one place that reads or writes MLflow's SQL tables directly (speed), guarded by the schema revision.

Bulk run creation (`submit/mlflow_side.py`) and the analysis loader (`analysis/load.py`) go straight to
the tables `experiments`, `runs`, `tags`, `params` and `latest_metrics` when the store's Alembic
revision is one whose layout of those tables was checked (the heads of MLflow 3.10 to 3.18: the five
tables have the same columns in all of them). Any other revision (a newer MLflow) takes the public
`MlflowClient` path instead, slower but always right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Alembic head revision of MLflow's tracking schema -> the MLflow minor release that ships it.
KNOWN_REVISIONS: dict[str, str] = {
    "1b5f0d9ad7c1": "3.10",
    "c3d6457b6d8a": "3.11",
    "7d34483879f0": "3.12",
    "da6fb0208061": "3.13",
    "b7e4c1a90f23": "3.14",
    "6f8d9c3b2a1e": "3.15",
    "b7e2c1a4d9f3": "3.16",
    "dc11669786a5": "3.17",
    "f4a9b2c7d1e6": "3.18",
}

REVISION_QUERY = "SELECT version_num FROM alembic_version"


def is_known(revision: str | None) -> bool:
    """Whether the fast paths may touch a store whose schema is at `revision`."""
    return revision in KNOWN_REVISIONS


def sql_store(client: Any) -> Any | None:
    """The client's `SqlAlchemyStore` when its schema revision is known, else None (use the public client)."""
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    if type(store).__name__ != "SqlAlchemyStore":
        return None
    return store if is_known(store_revision(store)) else None


_revisions: dict[str, str | None] = {}  # by database URL: one query per process and store


def store_revision(store: Any) -> str | None:
    """The Alembic revision of a `SqlAlchemyStore`'s database (None when it cannot be read)."""
    import sqlalchemy

    url = str(store.engine.url)
    if url not in _revisions:
        _revisions[url] = _read_revision(store.engine, sqlalchemy)
    return _revisions[url]


def _read_revision(engine: Any, sqlalchemy: Any) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.text(REVISION_QUERY)).scalar()
    except Exception:  # noqa: BLE001 - no alembic table, no permission: not a schema we know
        return None


def write_session(store: Any) -> Any:
    """A read-write session of a `SqlAlchemyStore` (MLflow >= 3.17 opens read-only sessions by default)."""
    import inspect

    maker = store.ManagedSessionMaker
    if "read_only" in inspect.signature(maker).parameters:
        return maker(read_only=False)
    return maker()


# ---- the read path of `repro status` / `repro sync` -------------------------------------------------
# On a SQL store of a known revision these read the few columns and tags they need with plain SQLAlchemy
# (no MlflowClient, no MLflow store, no whole runs built): the status table is one GROUP BY, the live runs one query
# over their `repro.*` tags. Anything else (a tracking server, an unknown revision) returns None and the
# caller goes through `MlflowClient`.

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def import_store(tracking_uri: str) -> None:
    """Import MLflow's client and the store module `tracking_uri` will need: the seconds of opening it,
    for a process that imports them ahead of the work (`analysis/logrun.py`, `sweep/submitter.py`)."""
    import mlflow.tracking  # noqa: F401

    scheme = tracking_uri.split(":", 1)[0].split("+", 1)[0]
    if scheme in SQL_SCHEMES:
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    elif scheme in ("http", "https"):
        import mlflow.store.tracking.rest_store  # noqa: F401


@dataclass
class RunInfoView:
    """The part of `mlflow.entities.RunInfo` the status and sync code reads."""

    run_id: str
    status: str
    experiment_id: str


@dataclass
class RunDataView:
    tags: dict[str, str]


@dataclass
class RunView:
    """A run as `repro sync` reads it: id, status and its `repro.*` tags (the shape of `mlflow.entities.Run`)."""

    info: RunInfoView
    data: RunDataView


def resolved_tracking_uri(explicit: str | None) -> str:
    """The tracking URI MLflow would use, without importing it: the given one, $MLFLOW_TRACKING_URI, or
    MLflow 3's default `sqlite:///mlflow.db` (the empty string when `./mlruns` exists: MLflow decides)."""
    import os

    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri:
        return uri
    return "" if os.path.isdir("mlruns") else "sqlite:///mlflow.db"


def sqlite_file(uri: str) -> str | None:
    """The existing file a `sqlite:///path` URI names (its query string aside), else None."""
    import os

    if uri.split(":", 1)[0].split("+", 1)[0] != "sqlite" or ":///" not in uri:
        return None
    path = uri.split(":///", 1)[1].split("?", 1)[0]
    return path if path and path != ":memory:" and os.path.isfile(path) else None


def read_engine(uri: str) -> Any | None:
    """A SQLAlchemy engine on the store at `uri` when the read fast path may take it (a SQL URI, an existing
    sqlite file, a known schema revision); else None."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    if scheme not in SQL_SCHEMES:
        return None
    if scheme == "sqlite" and sqlite_file(uri) is None:
        return None
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(uri)
        revision = _read_revision(engine, sqlalchemy)
    except Exception:  # noqa: BLE001 - no driver, a URI SQLAlchemy does not take: the public client decides
        return None
    return engine if is_known(revision) else None


def _scope(experiment: str | None, sweep: str | None) -> tuple[str, dict[str, Any]]:
    """FROM/WHERE of the repro runs (tag repro.backend set) of the active experiments (or the named one), one sweep."""
    sql = ("FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
           "JOIN tags b ON b.run_uuid = r.run_uuid AND b.key = 'repro.backend' AND b.value != '' ")
    params: dict[str, Any] = {}
    if sweep is not None:
        sql += "JOIN tags s ON s.run_uuid = r.run_uuid AND s.key = 'repro.sweep' AND s.value = :sweep "
        params["sweep"] = sweep
    sql += "WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' "
    if experiment is not None:
        sql += "AND e.name = :experiment "
        params["experiment"] = experiment
    return sql, params


def experiment_exists(engine: Any, name: str) -> bool:
    """Whether an active experiment is named `name`."""
    import sqlalchemy

    with engine.connect() as conn:
        return conn.execute(sqlalchemy.text(
            "SELECT 1 FROM experiments WHERE name = :n AND lifecycle_stage = 'active'"), {"n": name}).first() is not None


def status_counts(engine: Any, experiment: str | None = None, sweep: str | None = None
                  ) -> tuple[dict[tuple[str, str], int], list[tuple[str, str, str | None]]]:
    """(target, status) -> number of repro runs, and (run id, status, repro.status_reason) of the FAILED and
    KILLED ones (newest first, as MLflow orders runs): two queries, whatever the number of runs."""
    import sqlalchemy

    scope, params = _scope(experiment, sweep)
    with engine.connect() as conn:
        counts = {(target if target is not None else "?", status): n for target, status, n in conn.execute(sqlalchemy.text(
            "SELECT t.value, r.status, COUNT(*) " + scope.replace(
                "WHERE", "LEFT JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = 'repro.target' WHERE", 1)
            + "GROUP BY t.value, r.status"), params)}
        failed = [(rid, status, reason) for rid, status, reason in conn.execute(sqlalchemy.text(
            "SELECT r.run_uuid, r.status, q.value " + scope.replace(
                "WHERE", "LEFT JOIN tags q ON q.run_uuid = r.run_uuid AND q.key = 'repro.status_reason' WHERE", 1)
            + "AND r.status IN ('FAILED', 'KILLED') ORDER BY r.start_time DESC, r.run_uuid"), params)]
    return counts, failed


def live_runs(engine: Any, experiment: str | None = None, sweep: str | None = None) -> list[RunView]:
    """The repro runs not yet terminal, each with its `repro.*` tags only (one query)."""
    import sqlalchemy

    scope, params = _scope(experiment, sweep)
    runs: dict[str, RunView] = {}
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(
            "SELECT r.run_uuid, r.status, r.experiment_id, k.key, k.value " + scope.replace(
                "WHERE", "JOIN tags k ON k.run_uuid = r.run_uuid AND k.key LIKE 'repro.%' WHERE", 1)
            + "AND r.status NOT IN ('FINISHED', 'FAILED', 'KILLED')"), params)
        for rid, status, exp_id, key, value in rows:
            run = runs.get(rid)
            if run is None:
                run = runs[rid] = RunView(RunInfoView(rid, status, str(exp_id)), RunDataView({}))
            run.data.tags[key] = value
    return list(runs.values())
