"""The one place that reads or writes MLflow's SQL tables directly (speed), guarded by the schema revision.

Bulk run creation (`submit/mlflow_side.py`) and the analysis loader (`analysis/load.py`) go straight to
the tables `experiments`, `runs`, `tags`, `params` and `latest_metrics` when the store's Alembic
revision is one whose layout of those tables was checked (the heads of MLflow 3.10 to 3.18: the five
tables have the same columns in all of them). Any other revision (a newer MLflow) takes the public
`MlflowClient` path instead, slower but always right.
"""

from __future__ import annotations

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
