"""Runs → one pandas table: one row per run, columns named as `mlflow.search_runs` names them.

Columns: `run_id`, `experiment_id`, `status`, `start_time` and `end_time` (ms), `artifact_uri`, `example`
(the entry point, tag `mlflow.project.entryPoint`, else the run name's prefix-free "(none)"),
`params.<k>`, `tags.<k>` (every `repro.*` tag, `mlflow.project.entryPoint`, `mlflow.runName`, and
any tag the filter or `Selection.tags` (--by, --factor) names; the client path reads every tag) and
`metrics.<k>` (the final value: MLflow's latest metric; NaN stays NaN).

SQL stores (sqlite, postgresql, mysql) whose schema revision `repro_mlflow.mlflow_sql` knows are read
straight from MLflow's own tables (`runs`, `tags`, `params`, `latest_metrics`): four set-based queries into Arrow (ADBC; SQLAlchemy's DBAPI for other
dialects) and a dictionary-encoded pivot, no per-run calls and no Python object per cell. Anything else (an `http(s)://` tracking server, a newer schema) goes through the public
`MlflowClient.search_runs`, paginated.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import tags as T
from ..errors import ReproError
from ..mlflow_sql import REVISION_QUERY, SQL_SCHEMES, is_known
from ..reach import check_tracking_server, redact
from ..tags import filter_literal
from .table import ANALYSIS_COLUMNS, is_table, read_table

ENTRY_POINT_TAG = "mlflow.project.entryPoint"
RUN_NAME_TAG = "mlflow.runName"
ANALYSIS_TAG = T.ANALYSIS_OF  # marks analysis runs; they are never analysed themselves
# Run-unique bookkeeping tags: never factors, never outcomes; not read (keeps large loads fast).
SKIP_TAGS = (T.JOB_ID, T.ARRAY_INDEX, T.WORKDIR, T.ATTEMPT, T.REPLAYED, T.STATUS_REASON, T.OFFLINE)
SLICE_MIN_ROWS = 100_000  # a sqlite table this long is scanned in rowid slices, one per core
BATCH_ROWS = 65_536  # rows per Arrow batch the sqlite driver builds


@dataclass
class Selection:
    """Which runs: experiments (names or ids; empty = every active experiment), a sweep, a filter."""

    experiments: list[str] = field(default_factory=list)
    sweep: str | None = None
    filter_string: str | None = None
    tags: list[str] = field(default_factory=list)  # tags the analysis names (--by, --factor): read from SQL stores too


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


@dataclass
class RunTable:
    """The selected runs (`frame`, as `load_runs` returns it) and, where the loader numbered them while
    reading, the level codes of its text columns: `codes[col][i] == codes[col][j]` exactly when rows i and
    j hold the same value (missing included). They spare the analysis hashing those columns again
    (`pipeline.analyse(..., codes=)`); they describe `frame` as returned, not a frame derived from it."""

    frame: pd.DataFrame
    codes: dict[str, np.ndarray] = field(default_factory=dict)


def load_runs(tracking_uri: str, selection: Selection) -> pd.DataFrame:
    """The selected runs (active lifecycle, every status) as one table; analysis runs left out."""
    return read_runs(tracking_uri, selection).frame


def read_runs(tracking_uri: str, selection: Selection) -> RunTable:
    """`load_runs`, with the level codes the SQL path numbers while it reads."""
    comparisons = _parse_filter(selection.filter_string)
    codes: dict[str, np.ndarray] = {}
    if is_sql_uri(tracking_uri):
        df, codes = _load_sql(tracking_uri, selection, comparisons)
    else:
        df = _load_api(tracking_uri, selection)
    if ("tags." + ANALYSIS_TAG) in df.columns:
        df = df[df["tags." + ANALYSIS_TAG].isna()].drop(columns=["tags." + ANALYSIS_TAG])
    df = apply_filter(df, comparisons)
    # one order whatever the store: results do not depend on how a store returns its rows
    df = _in_order(df)
    if codes:  # the SQL frame's index is its row numbers: the rows kept, in their new order
        rows = df.index.to_numpy()
        whole = len(rows) == len(next(iter(codes.values()))) and bool(np.all(rows == np.arange(len(rows))))
        codes = {c: v if whole else v[rows] for c, v in codes.items() if c in df.columns}
    return RunTable(df.reset_index(drop=True), codes)


def _in_order(df: pd.DataFrame) -> pd.DataFrame:
    """`df` sorted by start time, then run id (the SQL path sorts in Arrow: then this only checks); its
    index is left as it was (the caller resets it)."""
    st = df["start_time"].to_numpy(dtype=float)
    if not (len(st) < 2 or np.all(st[1:] > st[:-1])):  # (NaN compares false: sorted by pandas)
        df = df.sort_values(["start_time", "run_id"], kind="stable")
    return df


# ---------------------------------------------------------------- several stores, runs.csv

def _load_table(path: str, selection: Selection) -> pd.DataFrame:
    """The selected runs of an earlier analysis's `runs.csv`, shaped as `load_runs` shapes a store's."""
    df = read_table(path)
    df = df.drop(columns=[c for c in ANALYSIS_COLUMNS if c in df.columns])
    if selection.experiments:
        df = df[df["experiment_id"].astype(str).isin(selection.experiments)]
    if selection.sweep is not None:
        col = "tags.repro.sweep"
        df = df[df[col] == selection.sweep] if col in df.columns else df.iloc[0:0]
    for c in df.columns:
        if c.startswith(("params.", "tags.")) or c in ("run_id", "experiment_id", "status", "artifact_uri", "run_name"):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return _finish(df)


def _check_file_store(store: str) -> None:
    """A folder named as a store must be one MLflow wrote (experiments with meta.yaml), not a new one."""
    path = Path(store.removeprefix("file://"))
    if not path.is_dir():
        raise ReproError(f"no tracking store at {store} (no such folder or runs.csv)")
    if not any(path.glob("*/meta.yaml")):
        raise ReproError(f"{store} is not an MLflow tracking store (no experiment folder with meta.yaml)")
    raise ReproError(f"{store} is an MLflow file store (deprecated, not read here): migrate it to SQLite with "
                     f"`mlflow migrate-filestore` or serve it (`mlflow server --backend-store-uri {store}`) and name the server")


def load_stores(stores: list[str], selection: Selection) -> pd.DataFrame:
    """The selected runs of several stores (tracking URIs or runs.csv files) as one table; a run id
    found in two stores is one run (the first store's copy)."""
    return read_stores(stores, selection).frame


def read_stores(stores: list[str], selection: Selection) -> RunTable:
    """`load_stores`, with the level codes of one SQL store's table (none when several are joined)."""
    comparisons = _parse_filter(selection.filter_string)
    tables = []
    for store in stores:
        if is_table(store):
            tables.append(RunTable(apply_filter(_load_table(store, selection), comparisons)))
        else:
            if not is_sql_uri(store) and not store.startswith(("http://", "https://")):
                _check_file_store(store)  # MLflow would create an empty store where none is
            tables.append(read_runs(store, selection))
    if len(tables) == 1:
        return tables[0]
    frames = [t.frame for t in tables]
    df = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    df = df.drop_duplicates("run_id", keep="first")
    for c in df.columns:  # as one store gives them: object columns, None where a run lacks the key
        if c.startswith(("params.", "tags.")):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return RunTable(df.sort_values(["start_time", "run_id"], kind="stable").reset_index(drop=True))


# ---------------------------------------------------------------- SQL stores

def _sqlite_path(uri: str) -> str:
    path = uri.split(":///", 1)[1] if ":///" in uri else ""
    if not path or path == ":memory:" or not Path(path).is_file():
        raise ReproError(f"no tracking store at {uri} (no such sqlite file)")
    return path


class _Reader:
    """Runs SQL on the store and returns Arrow tables.

    Through ADBC (the query result is built as Arrow columns in C, no Python object per cell) for
    sqlite and postgresql; through SQLAlchemy's DBAPI connection for the other dialects, or when the
    ADBC driver is missing or refuses a query (its sqlite driver types a column from its first rows).
    """

    def __init__(self, uri: str):
        self.uri, self.scheme = uri, uri.split(":", 1)[0].split("+", 1)[0]
        self._adbc = None
        self._dbapi = None
        self._engine = None
        if self.scheme == "sqlite":
            self.path = _sqlite_path(uri)
        try:
            if self.scheme == "sqlite":
                import adbc_driver_sqlite.dbapi as adbc

                self._adbc = adbc.connect(Path(self.path).resolve().as_uri() + "?mode=ro")
            elif self.scheme == "postgresql":
                import adbc_driver_postgresql.dbapi as adbc

                self._adbc = adbc.connect("postgresql://" + uri.split("://", 1)[1])
        except ImportError:
            pass
        except Exception as e:  # noqa: BLE001
            raise ReproError(f"cannot open tracking store {redact(uri)}: {str(e).splitlines()[0][:200]}") from None

    def table(self, sql: str) -> pa.Table:
        if self._adbc is not None:
            try:
                with self._adbc.cursor() as cur:
                    if self.scheme == "sqlite":  # batches of 1,024 rows by default: fewer, longer chunks
                        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
                    cur.execute(sql)
                    return cur.fetch_arrow_table()
            except Exception as e:  # noqa: BLE001
                if _missing_table(e):
                    raise
        cur = self._dbapi_connection().cursor()
        try:
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        finally:
            cur.close()
        cols = list(zip(*rows)) if rows else [()] * len(names)
        return pa.table({n: pa.array(list(c)) for n, c in zip(names, cols)})

    def tables(self, sqls: list[str]) -> list[pa.Table]:
        """Several queries at once: through ADBC each on its own connection in a thread (the drivers
        read without holding the GIL, so a second core reads too); otherwise one after the other."""
        if self._adbc is None or len(sqls) < 2:
            return [self.table(q) for q in sqls]
        from concurrent.futures import ThreadPoolExecutor

        def one(sql: str) -> pa.Table:
            other = _Reader(self.uri)
            try:
                return other.table(sql)
            finally:
                other.close()

        with ThreadPoolExecutor(len(sqls)) as pool:
            return list(pool.map(one, sqls))

    def slices(self, table: str) -> list[str]:
        """Predicates that cut a sequential scan of `table` into rowid ranges, one per core, so that
        `tables` reads them in parallel (sqlite through ADBC: a scan runs on one core); else one."""
        parts = min(4, os.cpu_count() or 1)
        if self._adbc is None or self.scheme != "sqlite" or parts < 2:
            return ["1 = 1"]
        try:
            # two subqueries: sqlite answers a lone min() or max() of the rowid from the b-tree's ends
            lo, hi = self.table(f"SELECT (SELECT min(rowid) FROM {table}) AS lo, "
                                f"(SELECT max(rowid) FROM {table}) AS hi").to_pylist()[0].values()
        except Exception:  # noqa: BLE001 - a table without rowid: one scan
            return ["1 = 1"]
        if lo is None or hi - lo < SLICE_MIN_ROWS:
            return ["1 = 1"]
        edges = [lo + (hi - lo + 1) * i // parts for i in range(parts)] + [hi + 1]
        return [f"x.rowid >= {a} AND x.rowid < {b}" for a, b in zip(edges, edges[1:])]

    def _dbapi_connection(self):
        if self._dbapi is None:
            import sqlalchemy

            uri = self.uri
            if uri.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
                    and importlib.util.find_spec("psycopg2") is not None:
                uri = "postgresql+psycopg2://" + uri[len("postgresql://"):]  # SQLAlchemy 2.1 defaults to psycopg 3
            try:
                self._engine = sqlalchemy.create_engine(uri)
                self._dbapi = self._engine.raw_connection()
            except Exception as e:  # noqa: BLE001
                raise ReproError(f"cannot open tracking store {redact(uri)}: {str(e).splitlines()[0][:200]}") from None
        return self._dbapi

    def close(self) -> None:
        if self._adbc is not None:
            self._adbc.close()
        if self._dbapi is not None:
            self._dbapi.close()
            self._engine.dispose()


def _missing_table(e: Exception) -> bool:
    m = str(e).lower()
    return "no such table" in m or ("relation" in m and "does not exist" in m)


def _lit(value: str) -> str:
    """A SQL string literal (standard quoting: the same in sqlite, postgresql and mysql's ANSI mode)."""
    return "'" + str(value).replace("'", "''") + "'"


def _load_sql(uri: str, selection: Selection, comparisons: list[dict]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    reader = _Reader(uri)
    try:
        try:
            exps = reader.table("SELECT experiment_id, name FROM experiments WHERE lifecycle_stage = 'active'")
        except Exception as e:  # noqa: BLE001
            raise ReproError(f"{redact(uri)} is not an MLflow tracking store ({type(e).__name__})") from None
        if not is_known(_revision(reader)):
            return _load_api(uri, selection), {}  # a schema whose tables were not checked: MLflow's client
        exp_ids = _experiment_ids(exps.to_pylist(), selection.experiments)
        return _query_sql(reader, exp_ids, selection.sweep, comparisons, selection.tags)
    finally:
        reader.close()


def _revision(reader: _Reader) -> str | None:
    try:
        rows = reader.table(REVISION_QUERY).to_pylist()
    except Exception:  # noqa: BLE001 - no alembic table
        return None
    return rows[0]["version_num"] if rows else None


def _experiment_ids(rows: list[dict], names: list[str]) -> list[int]:
    if not names:
        return [int(r["experiment_id"]) for r in rows]
    by_name = {r["name"]: int(r["experiment_id"]) for r in rows}
    by_id = {str(r["experiment_id"]): int(r["experiment_id"]) for r in rows}
    out = []
    for n in names:
        if n in by_name:
            out.append(by_name[n])
        elif n in by_id:
            out.append(by_id[n])
        else:
            raise ReproError(f"no active experiment named '{n}'")
    return out


SCAN_SHARE = 0.25  # a selection at least this share of the store's runs is read by sequential scans
SAMPLE = 2000  # sweep tags looked at to estimate a sweep's share of the store


def _query_sql(reader: _Reader, exp_ids: list[int], sweep: str | None, comparisons: list[dict],
               named: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The selected runs' table (index: row numbers) and the level codes of its params and tags."""
    base_cols = ["run_id", "experiment_id", "status", "start_time", "end_time", "artifact_uri", "run_name"]
    if not exp_ids:
        return pd.DataFrame(columns=base_cols + ["example"]), {}
    exp_in = ",".join(str(int(e)) for e in exp_ids)  # ints: safe to inline
    run_where = f"r.lifecycle_stage = 'active' AND r.experiment_id IN ({exp_in})"
    run_sql = (f"SELECT r.run_uuid, r.experiment_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.name "
               f"FROM runs r WHERE {run_where}")
    sweep_sql = f"SELECT s.run_uuid FROM tags s WHERE s.key = '{T.SWEEP}' AND s.value = {_lit(sweep)}" \
        if sweep is not None else None
    extra_tags = sorted({c["key"] for c in comparisons if c["type"] == "tag"} | {ENTRY_POINT_TAG, RUN_NAME_TAG}
                        | {n.removeprefix("tags.") for n in named or [] if not n.startswith(("params.", "metrics."))})
    wanted = _tag_predicate(reader, extra_tags)
    # Most of the store selected: one sequential scan per table beats a join (runs not selected are
    # dropped by the pivot), and the scans start with the runs' own query. A small part of a large store:
    # join on the selection.
    scan = _estimate(reader, run_where, sweep) >= SCAN_SHARE * _count(reader, "SELECT count(*) FROM runs")
    if scan:
        src, where = "{t} x", lambda t: reader.slices(t)
    else:
        src, where = "{t} x JOIN runs r ON r.run_uuid = x.run_uuid", lambda t: [run_where]
        if sweep_sql:
            run_where += f" AND r.run_uuid IN ({sweep_sql})"
    select = {
        "tags": f"SELECT x.run_uuid, x.key, x.value FROM {src.format(t='tags')} WHERE {{w}} AND {wanted}",
        "params": f"SELECT x.run_uuid, x.key, x.value FROM {src.format(t='params')} WHERE {{w}}",
        "latest_metrics": f"SELECT x.run_uuid, x.key, x.value, x.is_nan FROM {src.format(t='latest_metrics')} WHERE {{w}}",
    }
    queries = [(t, sql.format(w=w)) for t, sql in select.items() for w in where(t)]
    # at once: the experiments' runs; joined, the sweep's run ids (matched in Arrow: sqlite's IN (subquery)
    # looks every run up by its key, 1.4 s for 100,000 runs against 0.6 s); the tables
    first = [run_sql] + ([sweep_sql] if sweep_sql and not scan else [])
    read = reader.tables(first + [q for _, q in queries])
    runs, members, read = read[0], (read[1].column(0) if len(first) > 1 else None), read[len(first):]
    tags, params, metrics = (_concat([r for (t, _), r in zip(queries, read) if t == name]) for name in select)
    if sweep is not None and runs.num_rows:  # the sweep's runs: from the sweep query, or from the scanned tags
        if members is None:
            on = pc.and_(pc.equal(_text(tags.column("key")), T.SWEEP), pc.equal(_text(tags.column("value")), sweep))
            members = tags.column("run_uuid").filter(on)
        runs = runs.filter(pc.is_in(_text(runs.column("run_uuid")), value_set=_text(members)))
    if runs.num_rows == 0:
        return pd.DataFrame(columns=base_cols + ["example"]), {}
    runs = runs.sort_by([("start_time", "ascending"), ("run_uuid", "ascending")])  # load_runs's order, in C
    ids = runs.column("run_uuid").combine_chunks()
    df = pd.DataFrame({n: _objects(runs.column(c)) for n, c in zip(base_cols, runs.column_names)}, dtype=object)
    df["experiment_id"] = df["experiment_id"].astype(str)
    from concurrent.futures import ThreadPoolExecutor

    # the three pivots side by side: their Arrow passes run without the GIL
    codes: dict[str, np.ndarray] = {}
    with ThreadPoolExecutor(3, thread_name_prefix="repro-pivots") as pool:
        wide = list(pool.map(_pivot, (params, tags, metrics), (ids,) * 3, ("params.", "tags.", "metrics."),
                             (codes,) * 3))
    return _finish(pd.concat([df, *wide], axis=1)), codes


# The tags' distinct keys, one index seek each (MLflow's primary key on tags is (key, run_uuid)).
DISTINCT_KEYS = ("WITH RECURSIVE k(key) AS (SELECT min(key) FROM tags UNION ALL "
                 "SELECT (SELECT min(t.key) FROM tags t WHERE t.key > k.key) FROM k WHERE k.key IS NOT NULL) "
                 "SELECT key FROM k WHERE key IS NOT NULL")


def _tag_predicate(reader: _Reader, extra: list[str]) -> str:
    """The tags the analysis reads (`repro.*` but SKIP_TAGS, and `extra`), as a condition on `x.key`.

    On sqlite and postgresql the store's distinct keys are listed first (milliseconds, from the key
    index) and the condition is the list of wanted ones: sqlite tests a list per row about a third
    faster than `LIKE 'repro.%' AND NOT IN (...)`. Its `+x.key` keeps the plan a scan: with a bare
    column, sqlite would read each row through the key index, nearly four times slower here.
    """
    pattern = (f"((x.key LIKE 'repro.%' AND x.key NOT IN ({','.join(_lit(k) for k in SKIP_TAGS)})) "
               f"OR x.key IN ({','.join(_lit(k) for k in extra)}))")
    if reader.scheme not in ("sqlite", "postgresql"):
        return pattern
    try:
        keys = reader.table(DISTINCT_KEYS).column(0).to_pylist()
    except Exception:  # noqa: BLE001 - e.g. a driver refusing the recursive query: the pattern
        return pattern
    want = [k for k in keys if (k.startswith(T.PREFIX) and k not in SKIP_TAGS) or k in extra]
    if not want:
        return "1 = 0"
    return f"{'+' if reader.scheme == 'sqlite' else ''}x.key IN ({','.join(_lit(k) for k in want)})"


def _count(reader: _Reader, sql: str) -> int:
    return int(reader.table(sql).column(0).to_pylist()[0] or 0)


def _estimate(reader: _Reader, run_where: str, sweep: str | None) -> float:
    """About how many runs the selection holds, cheaply: the experiments' runs, times the sweep's share of
    the first `SAMPLE` sweep tags in the key index (run ids are random, so that is a random sample).
    It only picks how the tables are read; which runs are selected is decided exactly."""
    n = _count(reader, f"SELECT count(*) FROM runs r WHERE {run_where}")
    if sweep is None or n == 0:
        return n
    sample = reader.table(f"SELECT value FROM tags WHERE key = '{T.SWEEP}' ORDER BY key, run_uuid LIMIT {SAMPLE}")
    if sample.num_rows == 0:
        return 0
    share = pc.sum(pc.equal(_text(sample.column(0)), sweep)).as_py() / sample.num_rows
    return n * share


def _concat(parts: list[pa.Table]) -> pa.Table:
    """The slices of one table's scan as one table (an empty slice may come back with other types)."""
    full = [p for p in parts if p.num_rows]
    return pa.concat_tables(full) if len(full) > 1 else (full or parts)[0]


def _objects(col: pa.ChunkedArray) -> np.ndarray:
    """An Arrow column as a numpy object array (None where null), as the rest of the analysis takes it."""
    return col.to_numpy(zero_copy_only=False)  # strings: an object array, None where null


def _text(col):
    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def _pivot(rows: pa.Table, ids: pa.Array, prefix: str, codes_out: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """(run_uuid, key, value[, is_nan]) rows → a wide frame aligned on `ids`, columns `prefix + key`.

    Keys and values are dictionary-encoded in Arrow, so each distinct string becomes one Python
    object however many runs share it: string columns are numpy object arrays (None where a run
    lacks the key); metric columns (rows with `is_nan`) are float64 (NaN where missing or NaN).
    A string column's dictionary indices (one per distinct value, missing included) go to `codes_out`.
    """
    if rows.num_rows == 0:  # (an empty result's columns may not even be typed as strings)
        return pd.DataFrame(index=range(len(ids)))
    from concurrent.futures import ThreadPoolExecutor

    metric = "is_nan" in rows.column_names
    # the three hash passes (run ids, keys, values) side by side: Arrow's kernels run without the GIL
    with ThreadPoolExecutor(3, thread_name_prefix="repro-pivot") as pool:
        f_run = pool.submit(pc.index_in, _text(rows.column("run_uuid")), value_set=_text(ids))
        f_key = pool.submit(lambda: pc.dictionary_encode(_text(rows.column("key"))).combine_chunks())
        f_val = None if metric else pool.submit(lambda: pc.dictionary_encode(_text(rows.column("value"))).combine_chunks())
        run, kd = f_run.result(), f_key.result()
        vd = f_val.result() if f_val is not None else None
    k = kd.indices.to_numpy(zero_copy_only=False)
    keep = pc.is_valid(run)  # rows of runs outside the selection
    sel = None
    if not pc.all(keep).as_py():
        sel = keep.to_numpy(zero_copy_only=False).astype(bool)
        if not sel.any():
            return pd.DataFrame(index=range(len(ids)))
        run, k = run.filter(keep), k[sel]
    r = run.to_numpy(zero_copy_only=False).astype(np.int64)
    # the keys the selected runs have (the dictionary was built over every row read)
    present = np.flatnonzero(np.bincount(k, minlength=len(kd.dictionary)))
    keys = kd.dictionary.to_pylist()
    if metric:
        v = pc.cast(rows.column("value"), pa.float64()).to_numpy(zero_copy_only=False).copy()
        v[pc.cast(rows.column("is_nan"), pa.bool_()).to_numpy(zero_copy_only=False).astype(bool)] = np.nan
        arr = np.full((len(ids), len(keys)), np.nan)
        arr[r, k] = v if sel is None else v[sel]
        cols = {prefix + keys[j]: arr[:, j] for j in present}
    else:
        values = np.empty(len(vd.dictionary) + 1, dtype=object)  # the last slot: None (key absent)
        values[:-1] = vd.dictionary.to_pylist()
        codes = np.full((len(ids), len(keys)), len(values) - 1, dtype=np.int32 if len(values) < 2**31 else np.int64)
        vi = vd.indices.to_numpy(zero_copy_only=False)
        vi = vi if sel is None else vi[sel]
        codes[r, k] = np.where(np.isnan(vi), len(values) - 1, vi) if vi.dtype.kind == "f" else vi
        cols = {prefix + keys[j]: values[codes[:, j]] for j in present}
        if codes_out is not None:
            codes_out.update({prefix + keys[j]: codes[:, j] for j in present})
        # object dtype: pandas 3 would otherwise convert them to Arrow strings (NaN for missing)
        return pd.DataFrame({c: cols[c] for c in sorted(cols)}, dtype=object)
    return pd.DataFrame({c: cols[c] for c in sorted(cols)})


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    ep = "tags." + ENTRY_POINT_TAG
    df["example"] = df[ep].fillna("(none)") if ep in df.columns else "(none)"
    df["start_time"] = pd.to_numeric(df["start_time"], errors="coerce")
    df["end_time"] = pd.to_numeric(df["end_time"], errors="coerce") if "end_time" in df.columns else float("nan")
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
        check_tracking_server(uri)
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
    try:
        flt = f"tags.`repro.sweep` = {filter_literal(selection.sweep)}" if selection.sweep is not None else ""
    except ValueError as e:
        raise ReproError(f"no such sweep: {e}") from None
    rows = []
    token = None
    while exp_ids:
        page = client.search_runs(exp_ids, flt, run_view_type=ViewType.ACTIVE_ONLY, max_results=10000,
                                  page_token=token)
        for r in page:
            row = {"run_id": r.info.run_id, "experiment_id": str(r.info.experiment_id), "status": r.info.status,
                   "start_time": r.info.start_time, "end_time": r.info.end_time, "artifact_uri": r.info.artifact_uri,
                   "run_name": r.info.run_name}
            row.update({"params." + k: v for k, v in r.data.params.items()})
            row.update({"tags." + k: v for k, v in r.data.tags.items()
                        if (k.startswith("repro.") and k not in SKIP_TAGS) or not k.startswith(("repro.", "mlflow."))
                        or k in (ENTRY_POINT_TAG, RUN_NAME_TAG)})
            row.update({"metrics." + k: float(v) for k, v in r.data.metrics.items()})
            rows.append(row)
        token = page.token
        if not token:
            break
    base = ["run_id", "experiment_id", "status", "start_time", "end_time", "artifact_uri", "run_name"]
    df = pd.DataFrame(rows, columns=None if rows else base)
    other = sorted(c for c in df.columns if c not in base)
    df = df[base + other]
    for c in other:  # as the SQL path gives them: object columns, None where a run lacks the key
        if c.startswith(("params.", "tags.")):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return _finish(df)


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
            m = s.astype(object).map(lambda x, pat=pat: isinstance(x, str) and bool(pat.match(x)))
        elif op == "IN":
            m = s.isin(list(v))
        elif op == "NOT IN":
            m = ~s.isin(list(v))
        else:
            raise ReproError(f"filter: unsupported comparator {op}")
        mask &= m.fillna(False).astype(bool) & present
    return df[mask]
