"""Why the equivalence classes are what they are: the descriptors whose values split the environments
exactly as the classes do ("classes follow CPU vendor + logical CPU count").

Per config, and within it per software choice when the config ran under several (`repro.software`,
else `repro.fp.sw`): the scope's environments, their classes, and every recorded descriptor of them
(`labels.descriptor_table`: `repro.hw.*`, `repro.sw.*`, `repro.det.*`, `repro.software`, site, host,
plus AVX-512 and AMX read from the CPU flags). A descriptor, then a pair, *follows* the classes when
its values partition the environments exactly as the classes do; one that names every environment
apart explains nothing and is not taken. Without an exact one the best is given with its adjusted
Rand index (1 = the same partition, about 0 = unrelated). Per example, `summary` says which
explanation holds in how many scopes and whether the partition of the hardware is the same in all.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd

from . import labels

FP_HW, FP_SW = "tags.repro.fp.hw", "tags.repro.fp.sw"
AVX512, AMX = "_avx512", "_amx"
# descriptor → its name in a sentence; the order is the preference among equally good explanations
NAMES = {
    "tags.repro.hw.gpu.name": "GPU model", "tags.repro.hw.gpu.cc": "GPU compute capability",
    "tags.repro.hw.cpu.vendor": "CPU vendor", "tags.repro.hw.cpu.count": "logical CPU count",
    "tags.repro.hw.cpu.usable": "usable CPUs", AVX512: "AVX-512", AMX: "AMX",
    "tags.repro.hw.cpu.x86_64_level": "x86-64 level", "tags.repro.hw.cpu.arch": "CPU architecture",
    "tags.repro.hw.cpu.model": "CPU model", "tags.repro.hw.cpu.physical_cores": "physical cores",
    "tags.repro.hw.gpu.driver": "GPU driver", "tags.repro.hw.gpu.cuda_driver": "CUDA driver",
    "tags.repro.hw.gpu.count": "GPU count", "tags.repro.software": "software image",
}
MAX_SCOPES = 200  # scopes explained per example (the rest counted in the summary's scopes only)
SKIP = ("tags.repro.hw.cpu.flags", "tags.repro.sw.packages", "tags.repro.sw.container.digest",
        "tags.repro.hw.cpu.microcode", "tags.repro.hw.gpu.source", "tags.repro.hw.gpu.visible")


def name(col: str) -> str:
    return NAMES.get(col, col.removeprefix("tags."))


def _rank(col: str) -> tuple[int, int, str]:
    order = list(NAMES)
    if col in order:
        return (0, order.index(col), col)
    kind = 1 if col.startswith("tags.repro.hw.") else 2 if col.startswith("tags.repro.sw.") else \
        3 if col.startswith("tags.repro.det.") else 4
    return (kind, 0, col)


def descriptors(keyed: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The descriptor table with AVX-512 and AMX added (from the CPU flags); flags and hashes left out.
    `table`: `labels.descriptor_table(keyed)` when the caller has it already (left unchanged)."""
    d = labels.descriptor_table(keyed) if table is None else table.copy()
    if labels.CPU_FLAGS in d.columns:
        flags = d[labels.CPU_FLAGS].map(lambda f: f.split(",") if isinstance(f, str) else None)
        d[AVX512] = flags.map(lambda f: None if f is None else ("yes" if "avx512f" in f else "no"))
        d[AMX] = flags.map(lambda f: None if f is None else ("yes" if any(x.startswith("amx") for x in f) else "no"))
    return d[[c for c in d.columns if c not in SKIP and not c.startswith("tags.repro.fp.")]]


def ari(a, b) -> float:
    """Adjusted Rand index of two labelings of the same items."""
    ca = pd.factorize(pd.Series(list(a), dtype=object).astype(str))[0]
    cb = pd.factorize(pd.Series(list(b), dtype=object).astype(str))[0]
    n = len(ca)
    if n < 2:
        return 1.0
    ct = np.bincount(ca * (cb.max() + 1) + cb, minlength=(ca.max() + 1) * (cb.max() + 1)).astype(float)
    comb = lambda x: x * (x - 1) / 2  # noqa: E731
    sij = comb(ct).sum()
    sa, sb = comb(np.bincount(ca).astype(float)).sum(), comb(np.bincount(cb).astype(float)).sum()
    expected = sa * sb / comb(float(n))
    top = (sa + sb) / 2 - expected
    return 1.0 if top == 0 else float((sij - expected) / top)


def _same(values: list[str], classes: list[int]) -> bool:
    """`values` partitions the items exactly as `classes` does."""
    pairs = set(zip(values, classes))
    return len(pairs) == len(set(values)) == len(set(classes))


def explain_scope(envs: list[str], classes: list[list[str]], d: pd.DataFrame) -> dict:
    """The descriptors (one, else two) that follow `classes` of `envs`, else the best with its ARI."""
    cls = {e: i for i, c in enumerate(classes) for e in c}
    envs = [e for e in envs if e in cls]
    y = [cls[e] for e in envs]
    out = {"n_environments": len(envs), "n_classes": len(set(y)), "follows": [], "columns": [], "exact": None,
           "ari": None, "also": []}
    if len(set(y)) < 2:
        out["note"] = "one class: nothing to explain"
        return out
    if len(set(y)) == len(envs):  # any descriptor that names them apart "explains" it: say nothing more
        out["note"] = "every environment a class of its own"
        return out
    sub = d.reindex(envs)
    cols = []
    for c in sorted(sub.columns, key=_rank):
        v = sub[c].astype(str).tolist()
        k = len(set(v))
        if 1 < k < len(envs) or (k == len(envs) and len(set(y)) == len(envs)):
            if sub[c].notna().all():
                cols.append((c, v))
    exact1 = [c for c, v in cols if _same(v, y)]
    if exact1:
        out.update(follows=[name(exact1[0])], columns=[exact1[0]], exact=True, ari=1.0,
                   also=[name(c) for c in exact1[1:4]])
        return out
    best = None
    pairs = []
    for (c1, v1), (c2, v2) in itertools.combinations(cols[:40], 2):
        v = [f"{a}\x1f{b}" for a, b in zip(v1, v2)]
        if len(set(v)) == len(envs) and len(set(y)) < len(envs):
            continue
        if _same(v, y):
            pairs.append((c1, c2))
    if pairs:
        c1, c2 = min(pairs, key=lambda p: (_rank(p[0]), _rank(p[1])))
        out.update(follows=[name(c1), name(c2)], columns=[c1, c2], exact=True, ari=1.0,
                   also=[" + ".join(map(name, p)) for p in pairs if p != (c1, c2)][:3])
        return out
    for c, v in cols:
        s = ari(v, y)
        if best is None or s > best[1] + 1e-12:
            best = (c, s)
    if best is not None:
        out.update(follows=[name(best[0])], columns=[best[0]], exact=False, ari=best[1])
    return out


def _software(sub: pd.DataFrame) -> str | None:
    for c in (labels.SOFTWARE, FP_SW):
        if c in sub.columns and sub[c].notna().any():
            return c
    return None


def explain(equivalence: list[dict], runs: pd.DataFrame, d: pd.DataFrame) -> dict:
    """Per example (its `equivalence` rows, its runs): one row per scope and a summary."""
    sw_col = _software(runs)
    hw_of = runs.drop_duplicates("_env").set_index("_env")[FP_HW].astype(str).to_dict() \
        if FP_HW in runs.columns else {}
    sw_of = runs.drop_duplicates("_env").set_index("_env")[sw_col].astype(str).to_dict() if sw_col else {}
    scopes = []
    done: dict[tuple, dict] = {}  # configs with the same classes of the same environments: explained once
    for e in equivalence:
        if e["reproducible"] is None:
            continue
        if len(scopes) >= MAX_SCOPES:
            break
        envs = [x for c in e["classes"] for x in c]
        groups: dict[str | None, list[str]] = {}
        several = len({sw_of.get(y) for y in envs}) > 1
        for x in envs:
            groups.setdefault(sw_of.get(x) if several else None, []).append(x)
        for sw, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
            if len(members) < 2:
                continue
            inside = set(members)
            classes = [[x for x in c if x in inside] for c in e["classes"]]
            classes = [c for c in classes if c]
            key = (tuple(members), tuple(map(tuple, classes)))
            if key not in done:
                done[key] = explain_scope(members, classes, d)
            row = {"config": e["config"], "software": sw, **copy.deepcopy(done[key])}
            row["partition"] = sorted(sorted(hw_of.get(x, x) for x in c) for c in classes)
            scopes.append(row)
    return {"scopes": scopes, "summary": summarize(scopes)}


def summarize(scopes: list[dict]) -> dict:
    """Which explanation holds in how many scopes; whether the hardware's partition is the same in all."""
    split = [s for s in scopes if s["n_classes"] > 1]
    out = {"scopes": len(scopes), "split": len(split), "follows": [], "exact_in": 0, "ari": None,
           "same_partition": None, "n_environments": max((s["n_environments"] for s in scopes), default=0),
           "n_classes": max((s["n_classes"] for s in scopes), default=0)}
    if not split:
        return out
    counts: dict[tuple, list[dict]] = {}
    for s in split:
        if s["follows"]:
            counts.setdefault(tuple(s["follows"]), []).append(s)
    if counts:
        top, rows = max(counts.items(), key=lambda kv: (sum(1 for r in kv[1] if r["exact"]), len(kv[1])))
        out.update(follows=list(top), exact_in=sum(1 for r in rows if r["exact"]),
                   ari=float(np.mean([r["ari"] for r in rows])), held_in=len(rows))
    distinct = list({tuple(map(tuple, s["partition"])): s["partition"] for s in split}.values())
    out["same_partition"] = all(_agree(a, b) for a, b in itertools.combinations(distinct, 2))
    out["n_hardware"] = len({h for s in scopes for c in s["partition"] for h in c})
    return out


def _agree(a: list[list[str]], b: list[list[str]]) -> bool:
    """Two partitions of hardware agree on the hardware they share (the same pairs together, the same apart)."""
    ca = {h: i for i, c in enumerate(a) for h in c}
    cb = {h: i for i, c in enumerate(b) for h in c}
    common = set(ca) & set(cb)
    # the same pairs together and apart ⇔ the classes of the shared hardware correspond one to one
    return _same([ca[h] for h in common], [cb[h] for h in common])


def lines(summary: dict, n_hw: int, hw_kind: str, n_sw: int) -> list[str]:
    """The classes in two sentences: '10 CPU models in 6 classes, the same partition under all 6 software
    images' and 'classes follow CPU vendor + logical CPU count'."""
    if not summary["scopes"]:
        return []
    if not summary["split"]:
        return [f"classes: one in every config ({summary['scopes']} config(s)): nothing to explain"]
    what = f"{n_hw} {hw_kind}" if n_hw else f"{summary['n_environments']} environments"
    first = f"classes: {what} in {summary['n_classes']} classes"
    if summary["split"] > 1:
        whole = summary["split"] == summary["scopes"]
        where = f"under all {n_sw} software images" if n_sw > 1 and whole else \
            (f"in all {summary['split']} configs" if whole else f"in all {summary['split']} configs that split")
        first += f", the same partition {where}" if summary["same_partition"] else ", partitions differ between configs"
    if summary["split"] < summary["scopes"]:
        first += f"; {summary['scopes'] - summary['split']} of {summary['scopes']} configs in one class"
    out = [first]
    if summary["follows"]:
        f = " + ".join(summary["follows"])
        held = summary.get("held_in", 0)
        if summary["exact_in"]:
            scope = "" if summary["exact_in"] == summary["split"] else f" in {summary['exact_in']} of {summary['split']}"
            out.append(f"classes follow {f}{scope}")
        else:
            out.append(f"no descriptor splits the classes exactly; closest: {f} (ARI {summary['ari']:.2f}, {held} scope(s))")
    return out
