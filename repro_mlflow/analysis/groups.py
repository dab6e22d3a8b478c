"""Configs, environments and repeats; repeatability per (config, environment); equivalence classes.

- environment: the value of the `by` column (default `tags.repro.fp.env`); runs without it are in
  the environment "(unknown)".
- config: the example plus every param except `repeat`, plus every `repro.det.*` tag (the determinism
  settings in force), minus the `by` column (and, when `by` is a setting itself, minus the `repro.det.*`
  tags: see `config_columns`). Runs of one config differ only by repeat and environment.
  (`repro.config_hash` is shown beside it when present, not used: a sweep may hash the hardware target
  into it, which would hide every cross-environment comparison.)
- repeat: `tags.repro.repeat`, else `params.repeat`, else the run's order (start time) in its group.
- outcome signature: the run's outcome values (metrics and `repro.digest.*` tags) hashed together;
  metrics that measure time (`*_seconds`, e.g. `train_seconds`) are not outcomes.
  Per example, an outcome column joins the signature only if every analysed run has it (listed in
  `outcomes` and, if dropped, in `notes`); runs without the primary metric are left out and counted.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..errors import ReproError
from .levels import Levels, codes_of, joint_codes

DEFAULT_BY = "tags.repro.fp.env"
UNKNOWN_ENV = "(unknown)"
DIGEST_PREFIX = "tags.repro.digest."


def resolve_column(df: pd.DataFrame, name: str) -> str:
    """`name` as a table column: exact, else `tags.<name>`, else `params.<name>`, else `metrics.<name>`."""
    for c in (name, f"tags.{name}", f"params.{name}", f"metrics.{name}"):
        if c in df.columns:
            return c
    for prefix, kind in (("tags.", "tag"), ("params.", "param"), ("metrics.", "metric")):
        if name.startswith(prefix):
            raise ReproError(f"no selected run has the {kind} '{name.removeprefix(prefix)}' ({len(df)} runs selected)")
    raise ReproError(f"no tag or param named '{name}' on the selected runs")


def is_timing(col: str) -> bool:
    """A metric that measures time (`train_seconds`, any `*_seconds`): never bit-identical, never an outcome."""
    return col.startswith("metrics.") and col.endswith("_seconds")


def digest_columns(df: pd.DataFrame) -> list[str]:
    """Final digests (weights, predictions, data); per-epoch and initial-weight digests are not outcomes."""
    return sorted(c for c in df.columns if c.startswith(DIGEST_PREFIX) and ".epoch." not in c
                  and not c.endswith(".initial"))


def config_columns(df: pd.DataFrame, by: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """The columns whose values make a config: params (but `repeat`) and `repro.det.*` tags, minus `by`.

    When `by` is itself a setting (a param or a `repro.det.*` tag, e.g. `--by params.threads`), the
    `repro.det.*` tags are left out when the runs have params: they record the settings in force,
    `by` included under other names (thread pools, XLA flags), so they would make every environment
    a config of its own. Its twin (`params.X` / `tags.repro.det.X`) goes too.
    """
    params = [c for c in df.columns if c.startswith("params.") and c != "params.repeat"]
    det = [c for c in df.columns if c.startswith("tags.repro.det.")]
    drop = {by, *exclude}
    if by in params or by in det:
        name = by.removeprefix("params.").removeprefix("tags.repro.det.")
        drop |= {f"params.{name}", f"tags.repro.det.{name}"}
        if params:
            det = []
    return sorted(c for c in params + det if c not in drop)


def add_keys(df: pd.DataFrame, by: str, config_cols: list[str], levels: Levels | None = None) -> pd.DataFrame:
    """Add `_env`, `_config` (a short label of the varying config values) and `_repeat` columns.
    `levels`: the level codes of `df`'s columns (`Levels(df)`), when the caller keeps them."""
    df = df.copy(deep=False)  # the caller's table gains no column (only whole columns are set below)
    df["_env"] = df[by].fillna(UNKNOWN_ENV).astype(str) if by in df.columns else UNKNOWN_ENV
    keys = ["example"] + config_cols
    # one code per distinct (example, config values), missing a value of its own; the numbering is not used
    code = pd.Series(joint_codes([codes_of(levels, df, k) for k in keys]), index=df.index)
    firsts = df.assign(_code=code).drop_duplicates("_code").set_index("_code")
    labels = {}
    for _, sub in firsts.groupby("example"):
        varying = [c for c in config_cols if sub[c].astype(str).nunique(dropna=False) > 1]
        for idx, *row in sub[varying].itertuples(name=None):
            parts, seen = [], {}
            for c, value in zip(varying, row):  # params.seed and tags.repro.det.seed usually say the same: once
                k, v = _short(c), str(value)
                if seen.get(k) == v:
                    continue
                k = c if k in seen else k
                seen[k] = v
                parts.append(f"{k}={v}")
            labels[idx] = " ".join(parts) if parts else "all runs"
    df["_config"] = code.map(labels)
    if "tags.repro.repeat" in df.columns:
        rep = df["tags.repro.repeat"]
    elif "params.repeat" in df.columns:
        rep = df["params.repeat"]
    else:
        rep = pd.Series(np.nan, index=df.index, dtype=object)
    order = df.sort_values("start_time", kind="stable").groupby(["example", "_config", "_env"]).cumcount()
    df["_repeat"] = rep.where(rep.notna(), order.reindex(df.index).astype(str)).astype(str)
    return df


def _short(col: str) -> str:
    for p in ("params.", "tags.repro.det.", "tags.repro.", "tags."):
        if col.startswith(p):
            return col[len(p):]
    return col


def signatures(df: pd.DataFrame, primary: str, metric_cols: list[str]) -> tuple[pd.DataFrame, dict, list[str]]:
    """Runs that have the primary metric, each with `_sig`; outcome columns per example; notes."""
    if primary not in df.columns:
        raise ReproError(f"no run has the metric '{primary.removeprefix('metrics.')}'")
    notes: list[str] = []
    outcomes: dict[str, list[str]] = {}
    parts = []
    digests = digest_columns(df)
    for ex, sub in df.groupby("example", sort=True):
        have = sub[sub[primary].notna()]
        miss = len(sub) - len(have)
        if miss:
            notes.append(f"{ex}: {miss} run(s) without {primary.removeprefix('metrics.')} left out")
        cand = [primary] + [c for c in metric_cols if c != primary and not is_timing(c)] + digests
        cols = [c for c in cand if c in have.columns and have[c].notna().all() and len(have)]
        dropped = [c for c in cand if c in have.columns and c not in cols and have[c].notna().any()]
        if dropped:
            notes.append(f"{ex}: outcome(s) {', '.join(dropped)} missing on some runs, not compared")
        outcomes[ex] = cols
        if len(have):
            h = pd.util.hash_pandas_object(have[cols], index=False)  # floats by their bits
            parts.append(have.assign(_sig=h.values))
    kept = pd.concat(parts) if parts else df.iloc[0:0].assign(_sig=pd.Series(dtype="uint64"))
    return kept, outcomes, notes


def repeatability(runs: pd.DataFrame, primary: str) -> pd.DataFrame:
    """One row per (example, config, environment): runs, distinct outcomes, repeatable, primary spread.

    `repeatable` is True when every run's outcomes are bit-identical, False when not, and None for a
    one-run group (nothing to compare).
    """
    g = runs.groupby(["example", "_config", "_env"], sort=True)
    t = g.agg(n=("_sig", "size"), n_distinct=("_sig", "nunique"), min=(primary, "min"), max=(primary, "max"),
              mean=(primary, "mean"), std=(primary, "std")).reset_index()
    t["range"] = t["max"] - t["min"]
    t["repeatable"] = np.where(t["n"] < 2, None, t["n_distinct"] == 1)
    t["repeatable"] = t["repeatable"].astype(object)
    t = t.rename(columns={"_config": "config", "_env": "environment"})
    return t


def env_signatures(runs: pd.DataFrame) -> pd.DataFrame:
    """(example, config, environment) → `sigs`: one 64-bit hash of the SET of distinct outcome signatures.

    Two environments of a config are equivalent when their sets are equal (for repeatable
    environments: the one outcome each is equal). The set hash is an order-free sum of mixed
    signatures plus the set's size, computed with numpy (wrapping uint64 arithmetic).
    """
    dd = runs[["example", "_config", "_env", "_sig"]].drop_duplicates()
    keys = ["example", "_config", "_env"]
    code = dd.groupby(keys, sort=True).ngroup().to_numpy()
    sig = dd["_sig"].to_numpy(dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = (sig ^ (sig >> np.uint64(31))) * np.uint64(0x9E3779B97F4A7C15)
        acc = np.zeros(code.max() + 1 if len(code) else 0, dtype=np.uint64)
        np.add.at(acc, code, mixed)
        acc += np.bincount(code, minlength=len(acc)).astype(np.uint64)
    first = dd.assign(_code=code).drop_duplicates("_code").sort_values("_code")
    out = first[keys].rename(columns={"_config": "config", "_env": "environment"}).reset_index(drop=True)
    out["sigs"] = acc
    return out


def equivalence_classes(env_sigs: pd.DataFrame) -> list[dict]:
    """Per (example, config): environments grouped by identical outcome sets.

    `reproducible` is True when all environments (two or more) fall in one class, False when there
    are several classes, None for a single environment.
    """
    out = []
    t = env_sigs.sort_values(["example", "config"], kind="stable")
    rows = zip(t["example"].tolist(), t["config"].tolist(), t["environment"].tolist(), t["sigs"].tolist())
    for (ex, cfg), sub in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
        classes: dict[int, list[str]] = {}
        n_env = 0
        for _, _, env, sig in sub:
            classes.setdefault(sig, []).append(env)
            n_env += 1
        cl = sorted((sorted(v) for v in classes.values()), key=lambda c: (-len(c), c))
        out.append({"example": ex, "config": cfg, "n_environments": n_env, "classes": cl,
                    "reproducible": None if n_env < 2 else len(cl) == 1,
                    "note": "single environment" if n_env < 2 else None})
    return out


def agreement_matrix(env_sigs: pd.DataFrame, example: str) -> pd.DataFrame:
    """Environment × environment: share of the configs run in both where their outcomes are identical."""
    sub = env_sigs[env_sigs["example"] == example][["config", "environment", "sigs"]]
    envs = sorted(sub["environment"].unique())
    pair = sub.merge(sub, on="config", suffixes=("_a", "_b"))
    pair["same"] = pair["sigs_a"].to_numpy() == pair["sigs_b"].to_numpy()
    m = pair.groupby(["environment_a", "environment_b"])["same"].mean().unstack()
    return m.reindex(index=envs, columns=envs)
