"""Runs → one pandas table: one row per run, columns named as `mlflow.search_runs` names them.

Columns: `run_id`, `experiment_id`, `status`, `start_time` (ms), `artifact_uri`, `example`
(the entry point, tag `mlflow.project.entryPoint`, else the run name's prefix-free "(none)"),
`params.<k>`, `tags.<k>` (every `repro.*` tag, `mlflow.project.entryPoint`, `mlflow.runName`, and
any tag the filter names) and `metrics.<k>` (the final value: MLflow's latest metric; NaN stays NaN).

SQL stores (sqlite, postgresql, mysql) are read through SQLAlchemy straight from MLflow's own tables
(`runs`, `tags`, `params`, `latest_metrics`): four set-based queries and a numpy pivot, no per-run
calls. Anything else (an `http(s)://` tracking server, a file store) goes through the public
`MlflowClient.search_runs`, paginated.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ReproError

ENTRY_POINT_TAG = "mlflow.project.entryPoint"
RUN_NAME_TAG = "mlflow.runName"
ANALYSIS_TAG = "repro.analysis_of"  # marks analysis runs; they are never analysed themselves
# Run-unique bookkeeping tags: never factors, never outcomes; not read (keeps large loads fast).
SKIP_TAGS = ("repro.job_id", "repro.array_index", "repro.workdir", "repro.attempt", "repro.replayed",
             "repro.status_reason", "repro.offline")
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


@dataclass
class Selection:
    """Which runs: experiments (names or ids; empty = every active experiment), a sweep, a filter."""

    experiments: list[str] = field(default_factory=list)
    sweep: str | None = None
    filter_string: str | None = None


def is_sql_uri(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES


def _parse_filter(filter_string: str | None) -> list[dict]:
    if not filter_string:
        return []
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    try:
        return SearchUtils.parse_search_filter(filter_string)
    except MlflowException as e:
        raise ReproError(f"bad filter string: {e.message}") from None


def load_runs(tracking_uri: str, selection: Selection) -> pd.DataFrame:
    """The selected runs (active lifecycle, every status) as one table; analysis runs left out."""
    comparisons = _parse_filter(selection.filter_string)
    if is_sql_uri(tracking_uri):
        df = _load_sql(tracking_uri, selection, comparisons)
    else:
        df = _load_api(tracking_uri, selection)
    if ("tags." + ANALYSIS_TAG) in df.columns:
        df = df[df["tags." + ANALYSIS_TAG].isna()].drop(columns=["tags." + ANALYSIS_TAG])
    df = apply_filter(df, comparisons)
    # one order whatever the store: results do not depend on how a store returns its rows
    return df.sort_values(["start_time", "run_id"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- SQL stores

def _engine(uri: str):
    import importlib.util

    import sqlalchemy

    if uri.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        uri = "postgresql+psycopg2://" + uri[len("postgresql://"):]  # SQLAlchemy 2.1 defaults to psycopg 3

    try:
        return sqlalchemy.create_engine(uri)
    except Exception as e:  # noqa: BLE001
        raise ReproError(f"cannot open tracking store {uri}: {e}") from None


def _experiment_ids_sql(conn, names: list[str]) -> list[int]:
    rows = conn.exec_driver_sql(
        "SELECT experiment_id, name FROM experiments WHERE lifecycle_stage = 'active'").fetchall()
    if not names:
        return [int(r[0]) for r in rows]
    by_name = {r[1]: int(r[0]) for r in rows}
    by_id = {str(r[0]): int(r[0]) for r in rows}
    out = []
    for n in names:
        if n in by_name:
            out.append(by_name[n])
        elif n in by_id:
            out.append(by_id[n])
        else:
            raise ReproError(f"no active experiment named '{n}'")
    return out


def _load_sql(uri: str, selection: Selection, comparisons: list[dict]) -> pd.DataFrame:
    from sqlalchemy.exc import SQLAlchemyError

    engine = _engine(uri)
    try:
        with engine.connect() as conn:
            try:
                exp_ids = _experiment_ids_sql(conn, selection.experiments)
            except SQLAlchemyError as e:
                raise ReproError(f"{uri} is not an MLflow tracking store ({type(e).__name__})") from None
            return _query_sql(conn, exp_ids, selection.sweep, comparisons)
    finally:
        engine.dispose()


def _query_sql(conn, exp_ids: list[int], sweep: str | None, comparisons: list[dict]) -> pd.DataFrame:
    base_cols = ["run_id", "experiment_id", "status", "start_time", "artifact_uri", "run_name"]
    if not exp_ids:
        return pd.DataFrame(columns=base_cols + ["example"])
    q = conn.connection.dbapi_connection
    style = conn.dialect.paramstyle  # qmark (sqlite), pyformat (psycopg2), format (mysql)
    ph = "?" if style == "qmark" else "%s"
    exp_in = ",".join(str(int(e)) for e in exp_ids)  # ints: safe to inline
    run_where = f"r.lifecycle_stage = 'active' AND r.experiment_id IN ({exp_in})"
    args: list = []
    if sweep is not None:
        run_where += f" AND r.run_uuid IN (SELECT s.run_uuid FROM tags s WHERE s.key = 'repro.sweep' AND s.value = {ph})"
        args.append(sweep)

    runs = fetch_plain(q, f"SELECT r.run_uuid, r.experiment_id, r.status, r.start_time, r.artifact_uri, r.name "
                 f"FROM runs r WHERE {run_where}", args)
    if not runs:
        return pd.DataFrame(columns=base_cols + ["example"])
    df = pd.DataFrame(np.array(runs, dtype=object), columns=base_cols, dtype=object)
    run_ids = df["run_id"].to_numpy()
    df["experiment_id"] = df["experiment_id"].astype(str)
    index = pd.Index(run_ids, dtype=object)

    extra_tags = sorted({c["key"] for c in comparisons if c["type"] == "tag"} | {ENTRY_POINT_TAG, RUN_NAME_TAG})
    skip = ",".join(f"'{k}'" for k in SKIP_TAGS)
    like = "'repro.%%'" if ph == "%s" else "'repro.%'"  # pyformat drivers need % doubled
    # Most of the store selected: one sequential scan per table beats a join (runs not selected are
    # dropped by the pivot); a small part of a large store: join on the selection.
    (total,) = fetch_plain(q, "SELECT count(*) FROM runs")[0]
    if len(runs) * 4 >= total:
        src, where = "{t} x", "1 = 1"
        jargs: list = []
    else:
        src, where = "{t} x JOIN runs r ON r.run_uuid = x.run_uuid", run_where
        jargs = list(args)
    key_in = ",".join([ph] * len(extra_tags))
    tag_rows = fetch_plain(q, f"SELECT x.run_uuid, x.key, x.value FROM {src.format(t='tags')} WHERE {where} AND "
                              f"((x.key LIKE {like} AND x.key NOT IN ({skip})) OR x.key IN ({key_in}))",
                           jargs + extra_tags)
    tags = _pivot(tag_rows, index, "tags.")
    params = _pivot(fetch_plain(q, f"SELECT x.run_uuid, x.key, x.value FROM {src.format(t='params')} WHERE {where}",
                                jargs), index, "params.")
    mrows = fetch_plain(q, f"SELECT x.run_uuid, x.key, x.value, x.is_nan FROM {src.format(t='latest_metrics')} "
                           f"WHERE {where}", jargs)
    metrics = _pivot([(a, b, float("nan") if n else v) for a, b, v, n in mrows], index, "metrics.", float)
    out = pd.concat([df, params, tags, metrics], axis=1)
    return _finish(out)


def fetch_plain(dbapi_conn, sql: str, args: list | tuple = ()) -> list[tuple]:
    """All rows of one query through the raw DBAPI connection (no ORM, no per-row objects beyond the driver's)."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute(sql, tuple(args))
        return cur.fetchall()
    finally:
        cur.close()


def _pivot(rows: list[tuple], index: pd.Index, prefix: str, dtype=object) -> pd.DataFrame:
    """(run_id, key, value) rows → a wide frame aligned on `index`, columns `prefix + key`."""
    if not rows:
        return pd.DataFrame(index=range(len(index)))
    a = np.array(rows, dtype=object)  # one C pass; object dtype keeps pandas from converting to Arrow strings
    rcode = index.get_indexer(pd.Index(a[:, 0], dtype=object))
    kcode, keys = pd.factorize(a[:, 1])
    arr = np.full((len(index), len(keys)), np.nan if dtype is float else None, dtype=dtype)
    ok = rcode >= 0
    arr[rcode[ok], kcode[ok]] = a[:, 2][ok].astype(dtype) if dtype is float else a[:, 2][ok]
    used = np.zeros(len(keys), dtype=bool)
    used[np.unique(kcode[ok])] = True  # keys only runs outside the selection have: no column
    cols = [prefix + k for k, u in zip(keys, used) if u]
    frame = pd.DataFrame(arr[:, used], columns=cols, dtype=dtype)
    return frame[sorted(cols)]


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    ep = "tags." + ENTRY_POINT_TAG
    df["example"] = df[ep].fillna("(none)") if ep in df.columns else "(none)"
    df["start_time"] = pd.to_numeric(df["start_time"], errors="coerce")
    for c in df.columns:
        if c.startswith("metrics."):
            df[c] = df[c].astype(float)
    return df


# ---------------------------------------------------------------- tracking servers, file stores

def _load_api(uri: str, selection: Selection) -> pd.DataFrame:
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if uri.startswith(("http://", "https://")):
        _probe(uri)
    client = MlflowClient(uri)
    try:
        exps = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    except MlflowException as e:
        raise ReproError(f"cannot read tracking store {uri}: {e.message.splitlines()[0][:300]}") from None
    except Exception as e:  # noqa: BLE001  (connection refused and the like)
        raise ReproError(f"cannot reach tracking store {uri}: {type(e).__name__}") from None
    if selection.experiments:
        by = {e.name: e.experiment_id for e in exps} | {e.experiment_id: e.experiment_id for e in exps}
        missing = [n for n in selection.experiments if n not in by]
        if missing:
            raise ReproError(f"no active experiment named '{missing[0]}'")
        exp_ids = [by[n] for n in selection.experiments]
    else:
        exp_ids = [e.experiment_id for e in exps]
    flt = f"tags.`repro.sweep` = '{selection.sweep}'" if selection.sweep is not None else ""
    rows = []
    token = None
    while exp_ids:
        page = client.search_runs(exp_ids, flt, run_view_type=ViewType.ACTIVE_ONLY, max_results=10000,
                                  page_token=token)
        for r in page:
            row = {"run_id": r.info.run_id, "experiment_id": str(r.info.experiment_id), "status": r.info.status,
                   "start_time": r.info.start_time, "artifact_uri": r.info.artifact_uri, "run_name": r.info.run_name}
            row.update({"params." + k: v for k, v in r.data.params.items()})
            row.update({"tags." + k: v for k, v in r.data.tags.items()
                        if (k.startswith("repro.") and k not in SKIP_TAGS) or not k.startswith(("repro.", "mlflow."))
                        or k in (ENTRY_POINT_TAG, RUN_NAME_TAG)})
            row.update({"metrics." + k: float(v) for k, v in r.data.metrics.items()})
            rows.append(row)
        token = page.token
        if not token:
            break
    base = ["run_id", "experiment_id", "status", "start_time", "artifact_uri", "run_name"]
    df = pd.DataFrame(rows, columns=None if rows else base)
    other = sorted(c for c in df.columns if c not in base)
    df = df[base + other]
    for c in other:  # as the SQL path gives them: object columns, None where a run lacks the key
        if c.startswith(("params.", "tags.")):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return _finish(df)


def _probe(uri: str, timeout: float = 10.0) -> None:
    """Fail at once, in one line, when the tracking server cannot be reached (MLflow itself retries for minutes)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # it answers: the server (or a proxy in front of it) is there
    except (OSError, ValueError) as e:
        raise ReproError(f"cannot reach tracking server {uri}: {getattr(e, 'reason', e)}") from None


# ---------------------------------------------------------------- MLflow filter strings, on the table

_ATTR = {"run_id": "run_id", "status": "status", "start_time": "start_time", "run_name": "run_name",
         "experiment_id": "experiment_id", "artifact_uri": "artifact_uri"}


def apply_filter(df: pd.DataFrame, comparisons: list[dict]) -> pd.DataFrame:
    """Keep the rows that satisfy every parsed MLflow comparison (AND), as MLflow's search would."""
    mask = pd.Series(True, index=df.index)
    for c in comparisons:
        kind, key, op, val = c["type"], c["key"], c["comparator"], c["value"]
        if kind == "attribute":
            col = _ATTR.get(key)
            if col is None:
                raise ReproError(f"filter: unsupported attribute '{key}'")
        else:
            col = {"metric": "metrics.", "parameter": "params.", "tag": "tags.", "dataset": None}.get(kind)
            if col is None:
                raise ReproError(f"filter: unsupported clause on {kind}")
            col += key
        if col not in df.columns:
            mask &= op == "!=" and kind == "attribute"  # absent key: no run matches
            continue
        s = df[col]
        if kind == "metric" or key == "start_time":
            s = pd.to_numeric(s, errors="coerce")
            v = float(val)
        else:
            v = val
        present = s.notna()
        if op == "=":
            m = s == v
        elif op == "!=":
            m = s != v
        elif op in ("<", ">", "<=", ">="):
            m = {"<": s < v, ">": s > v, "<=": s <= v, ">=": s >= v}[op]
        elif op in ("LIKE", "ILIKE"):
            pat = re.compile(fnmatch.translate(str(v).replace("*", "[*]").replace("?", "[?]")
                                               .replace("%", "*").replace("_", "?")),
                             re.IGNORECASE if op == "ILIKE" else 0)
            m = s.astype(object).map(lambda x: isinstance(x, str) and bool(pat.match(x)))
        elif op == "IN":
            m = s.isin(list(v))
        elif op == "NOT IN":
            m = ~s.isin(list(v))
        else:
            raise ReproError(f"filter: unsupported comparator {op}")
        mask &= m.fillna(False).astype(bool) & present
    return df[mask]
