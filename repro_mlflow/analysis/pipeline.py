"""The whole analysis of a run table, example by example, as one JSON-ready dict (schema in docs/analysis.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ReproError
from . import cost, decompose, explain, factors, groups, labels, noise, predictions, stats, verdict
from .levels import Levels, codes_of, joint_codes

SCHEMA = "repro-analysis/2"


@dataclass
class Options:
    by: str = groups.DEFAULT_BY  # environment column (a tag or param name)
    metrics: list[str] = field(default_factory=list)  # metric names; empty = every metric
    primary: str | None = None  # default: the runs' repro.primary_metric tag, else the first metric
    factors: list[str] = field(default_factory=list)  # extra factor columns (tags/params)
    statuses: tuple[str, ...] = ("FINISHED",)  # empty = every status
    n_boot: int = 1000  # bootstrap resamples of the cost of determinism
    seed: int = 0
    max_configs: int = 10  # per-config environment tests per example (largest range first)
    max_divergence: int = 200  # configs per example whose divergence epoch is looked for
    max_artifact_runs: int = 200  # runs whose artifacts (predictions, weights, digests) are read
    artifacts: bool = True


def _metric_cols(df: pd.DataFrame, names: list[str]) -> list[str]:
    have = sorted(c for c in df.columns if c.startswith("metrics."))
    if not names:
        return have
    out = []
    for n in names:
        c = n if n.startswith("metrics.") else f"metrics.{n}"
        if c not in df.columns:
            raise ReproError(f"no selected run has the metric '{n}'")
        out.append(c)
    return out


def _primary(sub: pd.DataFrame, metric_cols: list[str], opt: Options) -> str | None:
    if opt.primary:
        c = opt.primary if opt.primary.startswith("metrics.") else f"metrics.{opt.primary}"
        if c not in sub.columns or sub[c].isna().all():
            return None
        return c
    tag = "tags.repro.primary_metric"
    if tag in sub.columns and sub[tag].notna().any():
        c = "metrics." + sub[tag].mode().iloc[0]
        if c in sub.columns and sub[c].notna().any():
            return c
    for c in metric_cols:
        if sub[c].notna().any():
            return c
    return None


def analyse(df: pd.DataFrame, opt: Options, tracking_uri: str | None = None,
            codes: Mapping[str, np.ndarray] | None = None) -> tuple[dict, pd.DataFrame]:
    """Every statistic of the selected runs; also the keyed table (with `_env`, `_config`, `_repeat`).
    `codes`: the level codes the loader numbered for `df` (`load.RunTable.codes`), spared hashing again."""
    notes: list[str] = []
    n_sel = len(df)
    if n_sel == 0:
        raise ReproError("no runs match the selection")
    excluded = {}
    if opt.statuses:
        keep = df["status"].isin(opt.statuses)
        excluded = {str(k): int(v) for k, v in df.loc[~keep, "status"].value_counts().items()}
        df = df[keep]
        if codes and not keep.all():
            rows = keep.to_numpy(dtype=bool)
            codes = {c: v[rows] for c, v in codes.items()}
        if excluded:
            notes.append("left out by status: " + ", ".join(f"{v} {k}" for k, v in sorted(excluded.items())))
        if df.empty:
            raise ReproError(f"none of the {n_sel} selected runs is {'/'.join(opt.statuses)}")
    by = groups.resolve_column(df, opt.by) if opt.by != groups.DEFAULT_BY or groups.DEFAULT_BY in df.columns else opt.by
    if by not in df.columns:
        notes.append(f"no run has {opt.by}: every run is in one environment '{groups.UNKNOWN_ENV}' (use --by)")
    extra = [groups.resolve_column(df, f) for f in opt.factors]
    metric_cols = _metric_cols(df, opt.metrics)
    if opt.primary:
        _metric_cols(df, [opt.primary])  # a primary metric no selected run has: refused, as --metric
    if not metric_cols:
        raise ReproError("the selected runs have no metrics")
    levels = Levels(df, codes)  # each text column hashed once (or never), whichever statistics group by it
    keyed = groups.add_keys(df, by, groups.config_columns(df, by), levels)
    levels.table = keyed
    table = labels.descriptor_table(keyed, levels)
    env_labels, legend = labels.environment_labels(keyed, by, table)
    keyed["_label"] = keyed["_env"].astype(str).map(env_labels)
    desc = explain.descriptors(keyed, table)
    label_desc = table if by in labels.HASH_BY else None
    examples = []
    for ex, sub in keyed.groupby("example", sort=True):
        examples.append(_example(ex, sub, metric_cols, extra, by, opt, tracking_uri, env_labels, desc, label_desc,
                                 levels))
    result = {
        "schema": SCHEMA,
        "environment_by": by,
        "n_runs_selected": n_sel,
        "n_runs": int(len(keyed)),
        "excluded_by_status": excluded,
        "statuses": list(opt.statuses),
        "bootstrap": {"n_boot": opt.n_boot, "seed": opt.seed, "confidence": stats.CONFIDENCE},
        "independent_unit": "a distinct outcome of a config x environment (bit-identical repeats count once)",
        "notes": notes,
        "environment_legend": legend,
        "examples": examples,
    }
    return result, keyed


def _example(ex: str, sub: pd.DataFrame, metric_cols: list[str], extra: list[str], by: str, opt: Options,
             tracking_uri: str | None, env_labels: dict[str, str] | None = None, desc: pd.DataFrame | None = None,
             label_desc: pd.DataFrame | None = None, levels: Levels | None = None) -> dict:
    """The statistics of one example, its verdict (`verdict`) first."""
    env_labels = env_labels or {}
    out, runs = _statistics(ex, sub, metric_cols, extra, by, opt, tracking_uri, env_labels, levels)
    lab = lambda e: env_labels.get(e, e)  # noqa: E731
    out["environment_labels"] = [lab(e) for e in out["environments"]]
    for g in out["groups"]:
        g["label"] = lab(g["environment"])
    for e in out["equivalence"]:  # named within the config: what tells its environments apart there
        envs = [x for c in e["classes"] for x in c]
        within = labels.make_labels(label_desc, envs) if label_desc is not None else {}
        e["class_labels"] = [[within.get(x, lab(x)) for x in c] for c in e["classes"]]
    if desc is None:
        desc = explain.descriptors(sub)
    if runs is not None and len(runs):
        out["explanation"] = explain.explain(out["equivalence"], runs, desc)
        out["hardware_count"] = _hardware_count(desc, out["environments"])
        out["software_count"] = _software_count(runs)
    timed = runs if runs is not None else sub
    out["cost"] = cost.determinism_cost(timed, opt.n_boot, opt.seed)
    over = cost.overlapping(timed[timed[cost.METRIC].notna()]) if cost.METRIC in timed.columns else None
    out["timings_overlapping"] = None if over is None else int(over.sum())
    for c in out["cost"]:
        c["label"] = lab(c["environment"])
    return {"verdict": verdict.example_verdict(out, env_labels), **out}


def _hardware_count(desc: pd.DataFrame, envs: list[str]) -> dict:
    """How many GPU models (when they differ), else CPU models, the example's environments span."""
    d = desc.reindex(envs)
    for col, kind in ((labels.GPU, "GPU models"), (labels.CPU_MODEL, "CPU models")):
        if col in d.columns and d[col].nunique() > 1:
            return {"n": int(d[col].nunique()), "kind": kind}
    return {"n": 0, "kind": "hardware models"}


def _software_count(runs: pd.DataFrame) -> int:
    for c in (labels.SOFTWARE, "tags.repro.fp.sw"):
        if c in runs.columns and runs[c].notna().any():
            return int(runs[c].nunique())
    return 0


def _statistics(ex: str, sub: pd.DataFrame, metric_cols: list[str], extra: list[str], by: str, opt: Options,
                tracking_uri: str | None, env_labels: dict[str, str], levels: Levels | None = None) -> dict:
    notes: list[str] = []
    envs = sorted(sub["_env"].unique())
    out = {"example": ex, "n_runs": int(len(sub)), "environments": envs, "n_environments": len(envs),
           "n_configs": int(sub["_config"].nunique()), "primary_metric": None, "metrics": {}, "outcomes": [],
           "groups": [], "equivalence": [], "tests": [], "env_variance": [], "factors": [], "predictions": [],
           "divergence": [], "noise": None, "variance": None, "explanation": None, "summary": {}, "notes": notes}
    # one integer code per config x environment, hashed once for every metric's spread
    units = joint_codes([codes_of(levels, sub, "_config"), codes_of(levels, sub, "_env")])
    for c in metric_cols:
        if c in sub.columns and sub[c].notna().any():
            out["metrics"][c.removeprefix("metrics.")] = stats.spread(sub[c].to_numpy(dtype=float), units)
        elif opt.metrics:  # asked for by name: say it has no value here (another example's metric is left out)
            out["metrics"][c.removeprefix("metrics.")] = stats.spread(np.full(len(sub), np.nan))
    if len(envs) == 1:
        notes.append(f"single environment ({env_labels.get(envs[0], envs[0])}): reproducibility across environments "
                     "cannot be judged")
    primary = _primary(sub, metric_cols, opt)
    if primary is None:
        notes.append("no run of this example has the primary metric: nothing to compare")
        return out, None
    out["primary_metric"] = primary.removeprefix("metrics.")
    runs, outcomes, n2 = groups.signatures(sub, primary, metric_cols)
    notes.extend(n2)
    out["outcomes"] = [c.removeprefix("metrics.").removeprefix("tags.") for c in outcomes.get(ex, [])]
    rep = groups.repeatability(runs, primary)
    out["groups"] = _records(rep)
    env_sigs = groups.env_signatures(runs)
    out["equivalence"] = groups.equivalence_classes(env_sigs)
    tests, n3 = factors.env_tests(runs, primary, opt.max_configs)
    notes.extend(n3)
    out["tests"] = [{k: t[k] for k in ("example", "metric", "scope", "config", "n", "n_groups", "test", "statistic",
                                         "pvalue", "note")} for t in tests]
    seen = set()
    for t in tests:
        key = (t["scope"], t["config"])
        if key not in seen:
            seen.add(key)
            out["env_variance"].append({k: t[k] for k in ("scope", "config", "n", "n_groups", "ss_between",
                                                          "ss_within", "between_share")})
    shares, n4 = factors.factor_shares(runs, primary, factors.factor_columns(runs, extra, by), levels)
    notes.extend(n4)
    out["factors"] = shares
    out["variance"] = decompose.decompose(runs, primary, extra=extra)
    if opt.artifacts:
        pe, n5 = predictions.prediction_evidence(runs, tracking_uri, opt.max_artifact_runs)
        out["predictions"] = pe
        notes.extend(n5)
        parted = runs.groupby("_config")["_sig"].nunique()
        parted = sorted(parted[parted > 1].index)
        if len(parted) > opt.max_divergence:
            notes.append(f"divergence epochs looked for in {opt.max_divergence} of {len(parted)} configs")
        if parted:
            dv, n6 = predictions.divergence(runs, [(ex, c) for c in parted[: opt.max_divergence]], tracking_uri,
                                            opt.max_artifact_runs)
            out["divergence"] = dv
            notes.extend(n6)
    eq = out["equivalence"]
    out["summary"] = {
        "groups": len(rep),
        "repeatable": int((rep["repeatable"] == True).sum()),  # noqa: E712
        "not_repeatable": int((rep["repeatable"] == False).sum()),  # noqa: E712
        "single_run": int(rep["repeatable"].isna().sum()),
        "configs_reproducible": sum(1 for e in eq if e["reproducible"] is True),
        "configs_not_reproducible": sum(1 for e in eq if e["reproducible"] is False),
        "configs_single_environment": sum(1 for e in eq if e["reproducible"] is None),
    }
    out["noise"] = noise.sampling_noise(runs, primary, out["metrics"].get(out["primary_metric"]) or {},
                                        out["predictions"])
    return out, runs


def _records(t: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts: NaN → None, numpy scalars → Python (column by column, in C)."""
    cols = []
    for c in t.columns:
        v = t[c].to_numpy()
        if v.dtype.kind == "f":
            vals = v.tolist()
            cols.append([None if x != x else x for x in vals])  # NaN → None
        elif v.dtype.kind == "O" and pd.api.types.infer_dtype(v, skipna=True) in ("string", "empty"):
            vals = v.tolist()  # text (labels, environments): only the missing ones need a look
            for i in np.flatnonzero(pd.isna(v)):
                vals[i] = None
            cols.append(vals)
        elif v.dtype.kind == "O":
            cols.append([None if x is None or x is pd.NA or (isinstance(x, float) and x != x)
                         else (x.item() if hasattr(x, "item") else x) for x in v])
        else:
            cols.append(v.tolist())
    names = list(t.columns)
    return [dict(zip(names, row)) for row in zip(*cols)]
