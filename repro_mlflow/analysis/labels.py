"""Environment labels: names for people, made from the fingerprint descriptors that tell the analysed
environments apart ("NVIDIA A100-SXM4-40GB @ WSU-GRID/voh7", "AMD EPYC, x86-64-v4"); the key (the
value of the `by` column, a fingerprint hash by default) stays what everything is grouped by.

A descriptor counts for an environment only when every run of it has the same value. The label is
built from the parts, in this order, whose value differs between the environments: GPU model, CPU
(model, then its x86-64 level and AMX when those differ too), site/host, software versions,
determinism settings. Two environments that no descriptor tells apart get their key appended; an
environment with no descriptor at all is labelled by its key. When `by` is not a fingerprint hash
(`--by params.threads`, `--by repro.sw.keras_backend`) its values are the labels.
"""

from __future__ import annotations

import re

import pandas as pd

HASH_BY = ("tags.repro.fp.env", "tags.repro.fp.hw", "tags.repro.fp.sw")
GPU = "tags.repro.hw.gpu.name"
CPU_MODEL = "tags.repro.hw.cpu.model"
CPU_LEVEL = "tags.repro.hw.cpu.x86_64_level"
CPU_FLAGS = "tags.repro.hw.cpu.flags"
SITE, HOST = "tags.repro.site", "tags.repro.host"
SW_PREFIX, DET_PREFIX = "tags.repro.sw.", "tags.repro.det."
# software descriptors that are not versions of something (or say the same as another one)
SW_SKIP = ("packages", "device", "frameworks_loaded", "framework_build")
DESCRIPTOR_PREFIXES = ("tags.repro.hw.", "tags.repro.sw.", "tags.repro.det.", SITE, HOST)


def clean_cpu(model: str) -> str:
    """'Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.0GHz' → 'Intel Xeon Platinum 8480+'."""
    s = re.sub(r"\((R|TM|tm|r)\)", "", str(model))
    s = re.sub(r"\s+@.*$", "", s)
    s = re.sub(r"\b(CPU|Processor|processor)\b", "", s)
    s = re.sub(r"\s+\d+-Core\b", "", s)
    return re.sub(r"\s+", " ", s).strip() or str(model)


def _descriptors(keyed: pd.DataFrame) -> pd.DataFrame:
    """Environment × descriptor column: the value every run of the environment shares (None if they don't)."""
    cols = [c for c in keyed.columns if c.startswith(DESCRIPTOR_PREFIXES) and not c.startswith("tags.repro.digest.")]
    if not cols:
        return pd.DataFrame(index=sorted(keyed["_env"].astype(str).unique()))
    # the distinct (environment, descriptors) rows: few, however many runs (found on integer codes)
    codes = pd.DataFrame({c: pd.factorize(keyed[c], use_na_sentinel=False)[0] for c in ["_env", *cols]})
    keep = ~codes.duplicated().to_numpy()
    t = keyed.loc[keep, ["_env", *cols]].astype(object)
    t["_env"] = t["_env"].astype(str)
    g = t.groupby("_env", sort=True)
    n = g.nunique(dropna=False)
    first = g.first()
    return first.where(n == 1, None)


def _varies(s: pd.Series | None) -> bool:
    return s is not None and s.astype(str).nunique(dropna=False) > 1


def environment_labels(keyed: pd.DataFrame, by: str) -> tuple[dict[str, str], list[dict]]:
    """{key: label} for the environments of `keyed` (column `_env`), and the legend:
    one {label, key, descriptors} per environment (descriptors: every shared `repro.*` descriptor)."""
    envs = sorted(keyed["_env"].astype(str).unique())
    d = _descriptors(keyed)
    legend_desc = {e: {c.removeprefix("tags."): v for c, v in d.loc[e].items() if v is not None and v == v}
                   if e in d.index else {} for e in envs}
    if by not in HASH_BY or len(envs) < 2 or d.shape[1] == 0:
        labels = {e: e for e in envs}
    else:
        parts: dict[str, list[str]] = {e: [] for e in envs}

        def col(c):
            return d[c] if c in d.columns else None

        gpu = col(GPU)
        if _varies(gpu):
            for e in envs:
                if gpu[e]:
                    parts[e].append(str(gpu[e]))
        model = col(CPU_MODEL)
        model = model.map(lambda m: clean_cpu(m) if isinstance(m, str) else None) if model is not None else None
        level = col(CPU_LEVEL)
        amx = col(CPU_FLAGS).map(lambda f: isinstance(f, str) and any(x.startswith("amx") for x in f.split(","))) \
            if col(CPU_FLAGS) is not None else None
        isa = _varies(level) or _varies(amx)
        if _varies(model) or isa:
            for e in envs:
                cpu = str(model[e]) if model is not None and model[e] else "CPU"
                if isa and level is not None and level[e]:
                    cpu += f", x86-64-{level[e]}"
                if isa and amx is not None and amx[e]:
                    cpu += " + AMX"
                parts[e].append(cpu)
        where = [c for c in (col(SITE), col(HOST)) if _varies(c)]
        if where:
            for e in envs:
                loc = "/".join(str(c[e]) for c in where if c[e])
                if loc and parts[e]:
                    parts[e][-1] += " @ " + loc
                elif loc:
                    parts[e].append(loc)
        sw = sorted(c for c in d.columns if c.startswith(SW_PREFIX) and c.removeprefix(SW_PREFIX) not in SW_SKIP
                    and _varies(d[c]))
        det = sorted(c for c in d.columns if c.startswith(DET_PREFIX) and c.count(".") == 3 and _varies(d[c]))
        for e in envs:
            extra = [f"{c.removeprefix(SW_PREFIX)} {d.at[e, c]}" for c in sw if d.at[e, c] is not None]
            extra += [f"{c.removeprefix(DET_PREFIX)}={d.at[e, c]}" for c in det if d.at[e, c] is not None]
            if extra:
                parts[e].append(", ".join(extra))
        labels = {e: "; ".join(p) for e, p in parts.items()}
        seen: dict[str, int] = {}
        for lab in labels.values():
            seen[lab] = seen.get(lab, 0) + 1
        labels = {e: (lab if lab and seen[lab] == 1 else (f"{lab} ({e})" if lab else e)) for e, lab in labels.items()}
    legend = [{"label": labels[e], "key": e, "descriptors": legend_desc[e]} for e in envs]
    return labels, legend
