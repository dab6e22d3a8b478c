"""What differs between two fingerprint records."""

from __future__ import annotations

import json
from collections.abc import Mapping

from .record import hashes

VOLATILE = ("captured_at", "capture_seconds", "hashes")  # differ between any two captures; not compared


def flatten(obj: object, prefix: str = "") -> dict[str, object]:
    """{"cpu.model": ..., "gpu.devices.0.name": ...}: every leaf of a record under a dotted path."""
    out: dict[str, object] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list) and any(isinstance(v, Mapping) for v in obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = obj
    return out


def diff(a: Mapping, b: Mapping) -> dict:
    """{"hashes": {name: (a, b)}, "changed": {path: (a, b)}, "only_a": {...}, "only_b": {...}}."""
    fa = {k: v for k, v in flatten(a).items() if k.split(".")[0] not in VOLATILE}
    fb = {k: v for k, v in flatten(b).items() if k.split(".")[0] not in VOLATILE}
    ha, hb = hashes(a), hashes(b)
    return {
        "hashes": {k: (ha[k], hb[k]) for k in ("hw", "sw", "env")},
        "changed": {k: (fa[k], fb[k]) for k in sorted(fa.keys() & fb.keys()) if fa[k] != fb[k]},
        "only_a": {k: fa[k] for k in sorted(fa.keys() - fb.keys()) if fa[k] not in (None, "", [], {})},
        "only_b": {k: fb[k] for k in sorted(fb.keys() - fa.keys()) if fb[k] not in (None, "", [], {})},
    }


def _show(v: object) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def _change(x: object, y: object) -> str:
    if isinstance(x, list) and isinstance(y, list) and all(isinstance(v, str) for v in x + y):
        gone, new = [v for v in x if v not in y], [v for v in y if v not in x]
        return "; ".join(p for p in (f"removed {','.join(gone)}" if gone else "",
                                     f"added {','.join(new)}" if new else "") if p) or f"{_show(x)} -> {_show(y)}"
    return f"{_show(x)} -> {_show(y)}"


def render(d: Mapping, name_a: str = "A", name_b: str = "B") -> str:
    """A plain-text report of `diff()` output."""
    lines = [f"A = {name_a}", f"B = {name_b}"]
    for k, (x, y) in d["hashes"].items():
        lines.append(f"repro.fp.{k:<4} {'same   ' if x == y else 'DIFFERS'}  {x}" + ("" if x == y else f" -> {y}"))
    if not (d["changed"] or d["only_a"] or d["only_b"]):
        lines.append("no differences (captured_at and capture_seconds are not compared)")
        return "\n".join(lines)
    if d["changed"]:
        lines.append(f"{len(d['changed'])} field(s) differ:")
        width = max(len(k) for k in d["changed"])
        lines += [f"  {k:<{width}}  {_change(x, y)}" for k, (x, y) in d["changed"].items()]
    for label, side in (("only in A", d["only_a"]), ("only in B", d["only_b"])):
        if side:
            lines.append(f"{label}:")
            lines += [f"  {k}  {_show(v)}" for k, v in side.items()]
    return "\n".join(lines)
