"""Figures as PNG bytes (matplotlib, Agg): heat map, strip/box per environment, equivalence matrix."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

MAX_ROWS = 40  # heat-map rows (config · environment) shown; the rows with the largest spread first
MAX_ENVS = 30
MAX_LABELLED = 12  # equivalence matrix: per-cell text labels only up to this many environments


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _fmt(v: float) -> str:
    return "" if not np.isfinite(v) else f"{v:.6g}"


def _distinct_settings(configs: list[str]) -> dict[str, str]:
    """Each config name (`k=v k=v …`, params first) as the fewest leading settings that tell `configs` apart,
    leaving out settings they share: a row label names what differs (the full names are in the
    repeatability table), not 500 characters of recorded settings."""
    words = [str(c).split(" ") for c in configs]
    common = set.intersection(*map(set, words)) if len(words) > 1 else set()
    distinct = [[x for x in w if x not in common] for w in words]
    for k in range(1, max(map(len, distinct), default=0) + 1):
        short = [" ".join(d[:k]) for d in distinct]
        if len(set(short)) == len(configs):
            return {c: x or str(c) for c, x in zip(configs, short)}
    return {str(c): str(c) for c in configs}


def heatmap(runs: pd.DataFrame, primary: str, title: str) -> tuple[bytes, int]:
    """Rows: config (its settings that differ) · environment; columns: repeat; cell: the primary metric (blank: no run).

    Returns the PNG and how many rows were left out (beyond MAX_ROWS).
    """
    t = runs.pivot_table(index=["_config", "_env"], columns="_repeat", values=primary, aggfunc="first")
    cols = sorted(t.columns, key=lambda r: (0, int(r)) if str(r).lstrip("-").isdigit() else (1, str(r)))
    t = t[cols]
    spread = (t.max(axis=1) - t.min(axis=1)).fillna(0)
    dropped = max(0, len(t) - MAX_ROWS)
    if dropped:
        t = t.loc[spread.sort_values(ascending=False, kind="stable").index[:MAX_ROWS]].sort_index()
    multi_cfg = t.index.get_level_values(0).nunique() > 1
    short = _distinct_settings(sorted(set(t.index.get_level_values(0))))
    labels = [f"{short[c]} · {e}" if multi_cfg else str(e) for c, e in t.index]
    vals = t.to_numpy(dtype=float)
    h = max(2.2, 0.42 * len(t) + 1.4)
    w = max(5.0, 0.9 * len(cols) + 0.09 * max(len(s) for s in labels) * 7 + 2)
    fig, ax = plt.subplots(figsize=(min(w, 18), min(h, 22)))
    masked = np.ma.masked_invalid(vals)
    im = ax.imshow(masked, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("repeat")
    ax.set_ylabel("config · environment" if multi_cfg else "environment")
    if vals.size <= 400:
        finite = vals[np.isfinite(vals)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                if np.isfinite(vals[i, j]):
                    ax.text(j, i, _fmt(vals[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if vals[i, j] < mid else "black")
    fig.colorbar(im, ax=ax, label=primary.removeprefix("metrics."))
    ax.set_title(title)
    return _png(fig), dropped


def strip_box(runs: pd.DataFrame, primary: str, title: str) -> tuple[bytes, int]:
    """Per environment: a box plot of the primary metric with every run as a jittered point.

    At most MAX_ENVS environments, those with the widest range first (shown in name order); returns the
    PNG and how many environments were left out.
    """
    spread = runs.groupby("_env")[primary].agg(lambda v: v.max() - v.min()).fillna(0)
    dropped = max(0, len(spread) - MAX_ENVS)
    envs = sorted(spread.sort_values(ascending=False, kind="stable").index[:MAX_ENVS] if dropped else spread.index)
    data = [runs.loc[runs["_env"] == e, primary].dropna().to_numpy() for e in envs]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.8 * len(envs) + 2), 4))
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, 1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(d)), d, s=12, alpha=0.7, color="tab:red", zorder=3)
    ax.set_xticks(range(1, len(envs) + 1), envs, rotation=30 if len(envs) > 4 else 0, ha="right" if len(envs) > 4 else "center")
    ax.set_xlabel("environment")
    ax.set_ylabel(primary.removeprefix("metrics."))
    ax.set_title(title)
    return _png(fig), dropped


def equivalence_matrix(matrix: pd.DataFrame, title: str) -> tuple[bytes, int]:
    """Environment × environment: share of shared configs with bit-identical outcomes (1 = always agree).

    The first MAX_ENVS environments only; returns the PNG and how many were left out."""
    m = matrix.iloc[:MAX_ENVS, :MAX_ENVS]
    n = len(m)
    fig, ax = plt.subplots(figsize=(max(3.8, 0.55 * n + 2.5), max(3.2, 0.5 * n + 1.8)))
    im = ax.imshow(m.to_numpy(dtype=float), vmin=0, vmax=1, cmap="RdYlGn")
    ax.set_xticks(range(n), m.columns, rotation=45, ha="right")
    ax.set_yticks(range(n), m.index)
    for i in range(n if n <= MAX_LABELLED else 0):
        for j in range(n):
            v = m.iat[i, j]
            ax.text(j, i, "–" if pd.isna(v) else f"{v:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="share of configs with identical outcomes")
    ax.set_title(title)
    return _png(fig), max(0, len(matrix) - MAX_ENVS)


MAX_SCOPES = 40
MAX_HARDWARE = 40  # partition rows


def partition(scopes: list[dict], names: dict[str, str], title: str) -> tuple[bytes, int, int]:
    """Hardware × config (· software image): each cell coloured by the equivalence class the hardware fell in
    there (a class keeps the colour of the earlier class it shares most hardware with); blank: not run there. Rows of one colour pattern
    across the columns are hardware that always agree.

    At most MAX_SCOPES columns and MAX_HARDWARE rows (the first by name); returns the PNG and how many
    columns and rows were left out."""
    dropped_scopes = max(0, len(scopes) - MAX_SCOPES)
    scopes = scopes[:MAX_SCOPES]
    hws = sorted({h for s in scopes for c in s["partition"] for h in c}, key=lambda h: names.get(h, h))
    dropped_hw = max(0, len(hws) - MAX_HARDWARE)
    hws = hws[:MAX_HARDWARE]
    idx = {h: i for i, h in enumerate(hws)}
    vals = np.full((len(hws), len(scopes)), np.nan)
    seen: list[set] = []  # colour k: the hardware its classes held so far (the same class keeps its colour)
    for j, s in enumerate(scopes):
        used: set[int] = set()
        for c in sorted(s["partition"], key=lambda c: (-len(c), c)):
            overlap = [(len(seen[k] & set(c)), -k) for k in range(len(seen)) if k not in used and seen[k] & set(c)]
            k = -max(overlap)[1] if overlap else len(seen)
            if k == len(seen):
                seen.append(set())
            seen[k] |= set(c)
            used.add(k)
            for h in c:
                if h in idx:
                    vals[idx[h], j] = k
    cols = _distinct_settings([f"{s['config']}" + (f" [{s['software']}]" if s.get("software") else "") for s in scopes])
    xl = [cols[f"{s['config']}" + (f" [{s['software']}]" if s.get("software") else "")] for s in scopes]
    rows = [names.get(h, h) for h in hws]
    fig, ax = plt.subplots(figsize=(min(max(5.0, 0.45 * len(scopes) + 0.08 * max(map(len, rows)) * 7 + 1), 18),
                                    min(max(2.5, 0.32 * len(hws) + 2.2), 20)))
    k = int(np.nanmax(vals)) + 1 if np.isfinite(vals).any() else 1
    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"].resampled(max(k, 2))
    ax.imshow(np.ma.masked_invalid(vals), aspect="auto", cmap=cmap, vmin=-0.5, vmax=max(k, 2) - 0.5)
    ax.set_xticks(range(len(scopes)), xl, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(hws)), rows, fontsize=8)
    ax.set_xlabel("config · software")
    ax.set_ylabel("hardware")
    ax.set_title(title)
    return _png(fig), dropped_scopes, dropped_hw
