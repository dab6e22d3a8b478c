"""The report's figures as SVG (svg.py, no plotting library): heat map, strip/box per environment,
equivalence matrix, partition of the hardware into classes. Each is bounded in size whatever the
number of environments (MAX_*) and returns what it left out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import svg

MAX_ROWS = 40  # heat-map rows (config · environment) shown; the rows with the largest spread first
MAX_ENVS = 30
MAX_POINTS = 200  # strip-plot points per environment (beyond: its distinct values; the box is over every run)
MAX_LABELLED = 12  # equivalence matrix: per-cell text labels only up to this many environments
EXT = "svg"  # the figures' file type


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

    Returns the SVG and how many rows were left out (beyond MAX_ROWS).
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
    finite = vals[np.isfinite(vals)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    numbers = vals.size <= 400
    cw = 64 if numbers else 28
    ch = 20
    left = 10 + max(svg.text_width(s, 10) for s in labels) + 30
    top, n_rows, n_cols = 34, len(labels), len(cols)
    c = svg.Canvas(left + cw * n_cols + 130, top + ch * n_rows + 50)
    c.text(c.width / 2, 16, title, 12, "middle", bold=True)
    for i, lab in enumerate(labels):
        c.text(left - 6, top + ch * i + ch / 2, lab, 10, "end")
        for j in range(n_cols):
            v = vals[i, j]
            if not np.isfinite(v):
                continue
            fill = svg.colour(svg.VIRIDIS, (v - lo) / (hi - lo) if hi > lo else 0.5)
            c.rect(left + cw * j, top + ch * i, cw, ch, fill, title=f"{lab}, repeat {cols[j]}: {_fmt(v)}")
            if numbers:
                c.text(left + cw * j + cw / 2, top + ch * i + ch / 2, _fmt(v), 8, "middle",
                       fill="#000" if svg.light(fill) else "#fff")
    c.parts.append(f'<rect x="{left}" y="{top}" width="{cw * n_cols}" height="{ch * n_rows}" fill="none" stroke="#444"/>')
    for j, col in enumerate(cols):
        c.text(left + cw * j + cw / 2, top + ch * n_rows + 10, str(col), 10, "middle")
    c.text(left + cw * n_cols / 2, top + ch * n_rows + 30, "repeat", 11, "middle")
    c.text(12, top + ch * n_rows / 2, "config · environment" if multi_cfg else "environment", 11, "middle", rotate=-90)
    c.colourbar(left + cw * n_cols + 14, top, max(ch * n_rows, 80), svg.VIRIDIS, lo, hi,
                primary.removeprefix("metrics."), "heat")
    return c.svg(), dropped


def _box(d: np.ndarray) -> tuple[float, float, float, float, float]:
    """Quartiles, median and whiskers (the furthest points within 1.5 IQR of the box), as a box plot draws them."""
    q1, med, q3 = np.percentile(d, [25, 50, 75])
    iqr = q3 - q1
    lo = d[d >= q1 - 1.5 * iqr].min()
    hi = d[d <= q3 + 1.5 * iqr].max()
    return float(lo), float(q1), float(med), float(q3), float(hi)


def _points(d: np.ndarray) -> np.ndarray:
    """The points a strip draws for one environment: every run up to MAX_POINTS; beyond, its distinct
    values (a repeat of a value is the same point), spread evenly over them when there are still more."""
    if d.size <= MAX_POINTS:
        return d
    u = np.unique(d)
    return u if u.size <= MAX_POINTS else u[np.linspace(0, u.size - 1, MAX_POINTS).round().astype(int)]


def strip_box(runs: pd.DataFrame, primary: str, title: str) -> tuple[bytes, int]:
    """Per environment: a box plot of the primary metric over every run, with the runs as jittered points
    (at most MAX_POINTS: beyond, the distinct values).

    At most MAX_ENVS environments, those with the widest range first (shown in name order); returns the
    SVG and how many environments were left out.
    """
    spread = runs.groupby("_env")[primary].agg(lambda v: v.max() - v.min()).fillna(0)
    dropped = max(0, len(spread) - MAX_ENVS)
    envs = sorted(spread.sort_values(ascending=False, kind="stable").index[:MAX_ENVS] if dropped else spread.index)
    by_env = {e: v.to_numpy(dtype=float) for e, v in runs[primary].dropna().groupby(runs["_env"], sort=False)}
    data = [by_env.get(e, np.zeros(0)) for e in envs]
    allv = np.concatenate([d for d in data if d.size] or [np.zeros(1)])
    lo, hi = float(allv.min()), float(allv.max())
    pad = (hi - lo) * 0.08 or abs(hi) * 0.01 or 0.01
    lo, hi = lo - pad, hi + pad
    ticks = svg.nice_ticks(lo, hi, 6)
    tick_labels = [f"{t:.6g}" for t in ticks]
    slot, plot_h = 56, 260
    rotate = len(envs) > 4
    left = 30 + max((svg.text_width(s, 9) for s in tick_labels), default=20) + 8
    if rotate:  # the first environment's label, slanted, must not run off the left edge
        left = max(left, 0.87 * svg.text_width(str(envs[0]), 10) - slot / 2 + 10)
    top = 34
    label_h = max((svg.text_width(str(e), 10) for e in envs), default=10) * (0.55 if rotate else 0) + 24
    width = left + slot * len(envs) + 20
    c = svg.Canvas(max(width, svg.text_width(title, 12) + 40), top + plot_h + label_h + 30)
    y = lambda v: top + plot_h - (v - lo) / (hi - lo) * plot_h  # noqa: E731
    c.text(c.width / 2, 16, title, 12, "middle", bold=True)
    c.parts.append(f'<rect x="{left}" y="{top}" width="{slot * len(envs)}" height="{plot_h}" fill="none" stroke="#444"/>')
    for t, s in zip(ticks, tick_labels):
        c.line(left - 4, y(t), left, y(t))
        c.text(left - 6, y(t), s, 9, "end")
    rng = np.random.default_rng(0)
    for i, (e, d) in enumerate(zip(envs, data)):
        cx = left + slot * i + slot / 2
        if d.size:
            w0, q1, med, q3, w1 = _box(d)
            c.line(cx, y(w0), cx, y(q1), "#333")
            c.line(cx, y(q3), cx, y(w1), "#333")
            c.line(cx - 8, y(w0), cx + 8, y(w0), "#333")
            c.line(cx - 8, y(w1), cx + 8, y(w1), "#333")
            c.rect(cx - 14, y(q3), 28, max(y(q1) - y(q3), 0.5), "none", "#333")
            c.line(cx - 14, y(med), cx + 14, y(med), "#ff7f0e", 1.5)
            points = _points(d)
            for x, v in zip(cx + rng.uniform(-0.15, 0.15, len(points)) * slot, points):
                c.circle(x, y(v), 2.5, "#d62728", 0.7)
        ly = top + plot_h + 12
        if rotate:
            c.text(cx + 4, ly, str(e), 10, "end", rotate=-30)
        else:
            c.text(cx, ly, str(e), 10, "middle")
    c.text(left + slot * len(envs) / 2, top + plot_h + label_h + 14, "environment", 11, "middle")
    c.text(12, top + plot_h / 2, primary.removeprefix("metrics."), 11, "middle", rotate=-90)
    return c.svg(), dropped


def equivalence_matrix(matrix: pd.DataFrame, title: str) -> tuple[bytes, int]:
    """Environment × environment: share of shared configs with bit-identical outcomes (1 = always agree).

    The first MAX_ENVS environments only; returns the SVG and how many were left out."""
    m = matrix.iloc[:MAX_ENVS, :MAX_ENVS]
    n = len(m)
    cell = 36 if n <= MAX_LABELLED else 18
    rows, cols = [str(x) for x in m.index], [str(x) for x in m.columns]
    left = 10 + max((svg.text_width(s, 10) for s in rows), default=10) + 8
    left = max(left, 0.71 * svg.text_width(cols[0], 10) + 10) if cols else left  # slanted labels stay on the canvas
    top = 34
    bottom = max((svg.text_width(s, 10) for s in cols), default=10) * 0.72 + 20
    c = svg.Canvas(max(left + cell * n + 130, svg.text_width(title, 12) + 40), top + cell * n + bottom)
    c.text(c.width / 2, 16, title, 12, "middle", bold=True)
    vals = m.to_numpy(dtype=float)
    for i in range(n):
        c.text(left - 6, top + cell * i + cell / 2, rows[i], 10, "end")
        for j in range(n):
            v = vals[i, j]
            fill = svg.colour(svg.RDYLGN, v) if np.isfinite(v) else "#ffffff"
            c.rect(left + cell * j, top + cell * i, cell, cell, fill,
                   title=f"{rows[i]} / {cols[j]}: {'–' if not np.isfinite(v) else f'{v:.2f}'}")
            if n <= MAX_LABELLED:
                c.text(left + cell * j + cell / 2, top + cell * i + cell / 2, "–" if not np.isfinite(v) else f"{v:.2f}",
                       8, "middle", fill="#000" if svg.light(fill) else "#fff")
    c.parts.append(f'<rect x="{left}" y="{top}" width="{cell * n}" height="{cell * n}" fill="none" stroke="#444"/>')
    for j in range(n):
        x = left + cell * j + cell / 2
        c.text(x + 3, top + cell * n + 8, cols[j], 10, "end", rotate=-45)
    c.colourbar(left + cell * n + 14, top, max(cell * n, 80), svg.RDYLGN, 0.0, 1.0,
                "share of configs with identical outcomes", "agree")
    return c.svg(), max(0, len(matrix) - MAX_ENVS)


MAX_SCOPES = 40
MAX_HARDWARE = 40  # partition rows


def partition(scopes: list[dict], names: dict[str, str], title: str) -> tuple[bytes, int, int]:
    """Hardware × config (· software image): each cell coloured by the equivalence class the hardware fell in
    there (a class keeps the colour of the earlier class it shares most hardware with); blank: not run there. Rows of one colour pattern
    across the columns are hardware that always agree.

    At most MAX_SCOPES columns and MAX_HARDWARE rows (the first by name); returns the SVG and how many
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
    k = int(np.nanmax(vals)) + 1 if np.isfinite(vals).any() else 1
    palette = svg.TAB10 if k <= 10 else svg.TAB20
    cw, ch = 22, 18
    left = 10 + max((svg.text_width(s, 9) for s in rows), default=10) + 28
    left = max(left, 0.71 * svg.text_width(xl[0], 8) + 10) if xl else left  # slanted labels stay on the canvas
    top = 34
    bottom = max((svg.text_width(s, 8) for s in xl), default=10) * 0.72 + 34
    c = svg.Canvas(max(left + cw * len(scopes) + 20, svg.text_width(title, 12) + 40), top + ch * len(hws) + bottom)
    c.text(c.width / 2, 16, title, 12, "middle", bold=True)
    for i, r in enumerate(rows):
        c.text(left - 6, top + ch * i + ch / 2, r, 9, "end")
        for j in range(len(scopes)):
            v = vals[i, j]
            if np.isfinite(v):
                c.rect(left + cw * j, top + ch * i, cw, ch, palette[int(v) % len(palette)],
                       title=f"{r} under {xl[j]}: class {int(v) + 1}")
    c.parts.append(f'<rect x="{left}" y="{top}" width="{cw * len(scopes)}" height="{ch * len(hws)}" fill="none" '
                   f'stroke="#444"/>')
    for j, lab in enumerate(xl):
        c.text(left + cw * j + cw / 2 + 3, top + ch * len(hws) + 8, lab, 8, "end", rotate=-45)
    c.text(left + cw * len(scopes) / 2, c.height - 8, "config · software", 11, "middle")
    c.text(12, top + ch * len(hws) / 2, "hardware", 11, "middle", rotate=-90)
    return c.svg(), dropped_scopes, dropped_hw
