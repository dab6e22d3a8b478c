"""Environment labels: names for people, made from the fingerprint descriptors that tell the analysed
environments apart ("NVIDIA A100-SXM4-40GB @ WSU-GRID/voh7", "AMD EPYC, x86-64-v4"); the key (the
value of the `by` column, a fingerprint hash by default) stays what everything is grouped by.

A descriptor counts for an environment only when every run of it has the same value. The label is
built from the fewest parts, in this order, that tell the environments shown together apart (all of
them for the legend, one config's for its classes): GPU model, CPU (model, then its x86-64 level and
AMX when those differ too), the software choice (`repro.software`), software versions, determinism
settings, site, host; a part is taken only when it splits environments the earlier parts left tied,
so a host names an environment only when nothing else does. Two environments that no descriptor tells apart get their key appended; an
environment with no descriptor at all is labelled by its key. When `by` is not a fingerprint hash
(`--by params.threads`, `--by repro.sw.keras_backend`) its values are the labels.
"""

from __future__ import annotations

import re

import pandas as pd

from .. import tags as T
from .levels import Levels, codes_of

HASH_BY = ("tags.repro.fp.env", "tags.repro.fp.hw", "tags.repro.fp.sw")
GPU = "tags.repro.hw.gpu.name"
CPU_MODEL = "tags.repro.hw.cpu.model"
CPU_LEVEL = "tags.repro.hw.cpu.x86_64_level"
CPU_FLAGS = "tags.repro.hw.cpu.flags"
SITE, HOST = "tags.repro.site", "tags.repro.host"
SOFTWARE = "tags." + T.SOFTWARE  # the sweep's software choice (a container image, a pinned env)
SW_PREFIX, DET_PREFIX = "tags.repro.sw.", "tags.repro.det."
# software descriptors that are not versions of something (or say the same as another one)
SW_SKIP = ("packages", "device", "frameworks_loaded", "framework_build")
DESCRIPTOR_PREFIXES = ("tags.repro.hw.", "tags.repro.sw.", "tags.repro.det.", SITE, HOST, SOFTWARE)


def clean_cpu(model: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.0GHz' → 'Intel Xeon Platinum 8480+'."""
    s = re.sub(r"\((R|TM|tm|r)\)", "", str(model))
    s = re.sub(r"\s+@.*$", "", s)
    s = re.sub(r"\b(CPU|Processor|processor)\b", "", s)
    s = re.sub(r"\s+\d+-Core\b", "", s)
    return re.sub(r"\s+", " ", s).strip() or str(model)


def _descriptors(keyed: pd.DataFrame, levels: Levels | None = None) -> pd.DataFrame:
    """Environment × descriptor column: the value every run of the environment shares (None if they don't)."""
    cols = [c for c in keyed.columns if c.startswith(DESCRIPTOR_PREFIXES) and not c.startswith("tags.repro.digest.")]
    if not cols:
        return pd.DataFrame(index=sorted(keyed["_env"].astype(str).unique()))
    # the distinct (environment, descriptors) rows: few, however many runs (found on integer codes)
    codes = pd.DataFrame({c: codes_of(levels, keyed, c) for c in ["_env", *cols]})
    keep = ~codes.duplicated().to_numpy()
    t = keyed.loc[keep, ["_env", *cols]].astype(object)
    t["_env"] = t["_env"].astype(str)
    g = t.groupby("_env", sort=True)
    n = g.nunique(dropna=False)
    first = g.first()
    return first.where(n == 1, None)


def _varies(s: pd.Series | None) -> bool:
    return s is not None and s.astype(str).nunique(dropna=False) > 1


def descriptor_table(keyed: pd.DataFrame, levels: Levels | None = None) -> pd.DataFrame:
    """Environment × descriptor column (`tags.repro.…`): the value every run of the environment shares, else None."""
    return _descriptors(keyed, levels)


def _splits(values: dict[str, str | None], ties: list[list[str]]) -> bool:
    return any(len({str(values[e]) for e in g}) > 1 for g in ties)


def _refine(values: dict[str, str | None], ties: list[list[str]]) -> list[list[str]]:
    out = []
    for g in ties:
        by: dict[str, list[str]] = {}
        for e in g:
            by.setdefault(str(values[e]), []).append(e)
        out.extend(v for v in by.values() if len(v) > 1)
    return out


def make_labels(d: pd.DataFrame, envs: list[str]) -> dict[str, str]:
    """{key: label} for `envs` (rows of the descriptor table `d`): the fewest parts, in the order GPU model,
    CPU, software choice (`repro.software`), software versions, determinism settings, site, host, that
    tell these environments apart; a part is taken only when it splits environments still tied."""
    envs = sorted(envs)
    if len(envs) < 2 or d.shape[1] == 0:
        return {e: e for e in envs}
    key = (id(d), tuple(envs))
    if _MEMO.get("key") == key:  # the configs of a campaign mostly share one set of environments
        return dict(_MEMO["labels"])
    labels = _make_labels(d, envs)
    _MEMO.update(key=key, labels=labels, frame=d)  # (the frame kept: its id stays its own)
    return dict(labels)


_MEMO: dict = {}


class _Column(dict):
    """One descriptor column as {environment: value}: looked up per environment without pandas' per-cell cost."""

    def map(self, f):
        return _Column({e: f(v) for e, v in self.items()})

    def astype(self, t):
        return pd.Series(list(self.values()), dtype=object).astype(t)


def _make_labels(d: pd.DataFrame, envs: list[str]) -> dict[str, str]:
    d = d.reindex(envs)
    table = {c: _Column(zip(envs, d[c].tolist())) for c in d.columns}

    class _At:
        def __getitem__(self, ec):
            return table[ec[1]][ec[0]]

    d_at = _At()

    def col(c):
        return table.get(c)

    cands: list[tuple[str, dict[str, str | None]]] = []  # (kind, env -> text)
    gpu = col(GPU)
    if gpu is not None:
        cands.append(("hw", {e: (str(gpu[e]) if gpu[e] else None) for e in envs}))
    model = col(CPU_MODEL)
    model = model.map(lambda m: clean_cpu(m) if isinstance(m, str) else None) if model is not None else None
    level = col(CPU_LEVEL)
    amx = col(CPU_FLAGS).map(lambda f: isinstance(f, str) and any(x.startswith("amx") for x in f.split(","))) \
        if col(CPU_FLAGS) is not None else None
    isa = _varies(level) or _varies(amx)
    if model is not None or isa:
        cpu = {}
        for e in envs:
            t = str(model[e]) if model is not None and model[e] else "CPU"
            if isa and level is not None and level[e]:
                t += f", x86-64-{level[e]}"
            if isa and amx is not None and amx[e]:
                t += " + AMX"
            cpu[e] = t
        cands.append(("hw", cpu))
    if col(SOFTWARE) is not None:
        cands.append(("sw", {e: (str(d_at[e, SOFTWARE]) if d_at[e, SOFTWARE] else None) for e in envs}))
    for c in sorted(c for c in d.columns if c.startswith(SW_PREFIX) and c.removeprefix(SW_PREFIX) not in SW_SKIP):
        cands.append(("sw", {e: (f"{c.removeprefix(SW_PREFIX)} {d_at[e, c]}" if d_at[e, c] is not None else None)
                             for e in envs}))
    for c in sorted(c for c in d.columns if c.startswith(DET_PREFIX) and c.count(".") == 3):
        cands.append(("sw", {e: (f"{c.removeprefix(DET_PREFIX)}={d_at[e, c]}" if d_at[e, c] is not None else None)
                             for e in envs}))
    for c in (SITE, HOST):
        if col(c) is not None:
            cands.append(("where", {e: (str(d_at[e, c]) if d_at[e, c] else None) for e in envs}))
    ties = [envs]
    chosen = []
    for kind, vals in cands:
        if not ties:
            break
        if _splits(vals, ties):
            chosen.append((kind, vals))
            ties = _refine(vals, ties)
    labels = {}
    for e in envs:
        hw = [v[e] for k, v in chosen if k == "hw" and v[e]]
        sw = [v[e] for k, v in chosen if k == "sw" and v[e]]
        where = "/".join(v[e] for k, v in chosen if k == "where" and v[e])
        parts = hw + ([", ".join(sw)] if sw else [])
        if where and parts:
            parts[-1] += " @ " + where
        elif where:
            parts.append(where)
        labels[e] = "; ".join(parts)
    seen: dict[str, int] = {}
    for lab in labels.values():
        seen[lab] = seen.get(lab, 0) + 1
    return {e: (lab if lab and seen[lab] == 1 else (f"{lab} ({e})" if lab else e)) for e, lab in labels.items()}


def environment_labels(keyed: pd.DataFrame, by: str, d: pd.DataFrame | None = None) -> tuple[dict[str, str], list[dict]]:
    """{key: label} for the environments of `keyed` (column `_env`), and the legend:
    one {label, key, descriptors} per environment (descriptors: every shared `repro.*` descriptor).
    `d`: the descriptor table of `keyed` when the caller has it already."""
    envs = sorted(keyed["_env"].astype(str).unique())
    d = _descriptors(keyed) if d is None else d
    legend_desc = {e: {c.removeprefix("tags."): v for c, v in d.loc[e].items() if v is not None and v == v}
                   if e in d.index else {} for e in envs}
    labels = make_labels(d, envs) if by in HASH_BY else {e: e for e in envs}
    legend = [{"label": labels[e], "key": e, "descriptors": legend_desc[e]} for e in envs]
    return labels, legend
