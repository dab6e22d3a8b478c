"""Compare an analysis with an earlier one (`repro analyze --baseline DIR`): do repeatable results hold?

DIR is an earlier output folder of `repro analyze` (its `runs.csv` and `analysis.json`). For every
group (example, config, environment) that the baseline found repeatable, the baseline's outcome
values (the outcomes its analysis compared: metrics and digests) are compared, bit for bit, with
those of every run of the same example and config now. Each comparison is one row:

- `agrees`: every run now, in that environment, has exactly the baseline's outcomes;
- `differs`: some run now has other outcomes (`columns` names the outcomes that moved);
- `absent`: no run of that example and config now.

`same_environment` tells a re-run on the same fingerprint (repeatability over time) from one on
another (reproducibility across environments). Groups that were not repeatable are not compared:
the baseline itself says their outcomes vary.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ReproError

TABLE, STATS = "runs.csv", "analysis.json"


def _column(name: str) -> str:
    return name if name.startswith(("metrics.", "tags.")) else \
        (f"tags.{name}" if name.startswith("repro.") else f"metrics.{name}")


def _missing(x) -> bool:
    return x is None or x != x  # None or NaN


def _same(a, b) -> bool:
    """Bit-for-bit equal outcome values: floats by value (NaN equals NaN), anything else as text."""
    if isinstance(a, float) or isinstance(b, float):
        try:
            fa, fb = float(a), float(b)
        except (TypeError, ValueError):
            return False
        return (np.isnan(fa) and np.isnan(fb)) or fa == fb
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return str(a) == str(b)


def _moved(runs: pd.DataFrame, base: pd.Series, cols: list[str]) -> list[str]:
    """The outcomes (names without prefix) on which some of `runs` differ from the baseline run `base`."""
    out = set()
    for c in cols:
        values = runs[c] if c in runs.columns else [None] * len(runs)
        if any(not _same(v, base.get(c)) for v in values):
            out.add(c.removeprefix("metrics.").removeprefix("tags."))
    return sorted(out)


def load_baseline(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """The baseline's run table and statistics; one-line errors when the folder is not an analysis."""
    d = Path(path)
    if not (d / TABLE).is_file() or not (d / STATS).is_file():
        raise ReproError(f"--baseline {d}: not a `repro analyze` output folder (needs {TABLE} and {STATS})")
    from .table import read_table

    try:
        stats = json.loads((d / STATS).read_text())
    except (ValueError, OSError) as e:
        raise ReproError(f"--baseline {d}: cannot read it ({e})") from None
    try:
        table = read_table(d / TABLE)
    except ReproError as e:
        raise ReproError(f"--baseline {e}") from None
    return table, stats


def compare(keyed: pd.DataFrame, baseline_table: pd.DataFrame, baseline_stats: dict, path: str = "") -> dict:
    """The baseline comparison as a JSON-ready dict: counts and one row per (baseline group, environment now)."""
    rows = []
    now_by = {k: g for k, g in keyed.groupby(["example", "_config"], sort=False)}
    base_by = {k: g for k, g in baseline_table.groupby(["example", "config", "environment"], sort=False)}
    for ex in baseline_stats.get("examples", []):
        cols = [_column(o) for o in ex.get("outcomes", [])]
        for g in ex.get("groups", []):
            if g.get("repeatable") is not True:
                continue
            key = (ex["example"], g["config"], g["environment"])
            base_runs = base_by.get(key)
            if base_runs is None or not cols:
                continue
            base = base_runs.iloc[0]
            now = now_by.get((ex["example"], g["config"]))
            row = {"example": ex["example"], "config": g["config"], "baseline_environment": g["environment"]}
            if now is None:
                rows.append({**row, "environment": None, "same_environment": None, "n_runs": 0,
                             "verdict": "absent", "columns": []})
                continue
            for env, sub in now.groupby("_env", sort=True):
                moved = _moved(sub, base, cols)
                rows.append({**row, "environment": env, "same_environment": env == g["environment"],
                             "n_runs": int(len(sub)), "verdict": "differs" if moved else "agrees",
                             "columns": moved})

    def count(verdict: str, same: bool | None = None) -> int:
        return sum(1 for r in rows if r["verdict"] == verdict and (same is None or r["same_environment"] is same))

    return {"path": str(path), "compared": len(rows),
            "agrees": count("agrees"), "differs": count("differs"), "absent": count("absent"),
            "same_environment": {"agrees": count("agrees", True), "differs": count("differs", True)},
            "other_environment": {"agrees": count("agrees", False), "differs": count("differs", False)},
            "rows": rows}
