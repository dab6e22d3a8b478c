"""The verdict an analysis opens with, per example: would this result hold on another machine, and why not?

- repeatable: of the config × environment groups with two runs or more, how many gave bit-identical
  outcomes (`answer`: yes / partly / no; None when no group has two runs);
- reproducible: of the configs run in two environments or more, how many gave the same outcomes in
  every environment (`answer` as above; None when every config ran in a single environment);
- classes: the equivalence classes by environment label (labels made within each config), each
  distinct partition once, with how many configs fell that way (most common first); `explanation`:
  what the classes follow (`explain.py`);
- spread: min, max and range of the primary metric over every run, the independent outcomes it rests
  on, their std and its interval; `noise`: the test set's own sampling noise beside it (`noise.py`);
- factor: the term of the additive model (`decompose.py`) with the largest partial omega squared;
  `variance`: every term, what is confounded and what was not crossed;
- cost: the cost-of-determinism rows of the example (`cost.py`), unless its placebo failed.

`lines` says it in short sentences (each at most WIDTH characters), the form the terminal and the
report print; the full lists are in the JSON, the report and `--wide`.
"""

from __future__ import annotations

from . import decompose as dec
from . import explain

WIDTH = 98  # a verdict line, printed after a 2-space indent, fits 100 columns
MAX_PARTITIONS = 2  # class partitions spelled out in the verdict (the rest in --wide and the report) ...
MAX_SPELLED = 8  # ... when their configs have at most this many environments


def _answer(yes: int, no: int) -> str | None:
    if yes + no == 0:
        return None
    return "yes" if no == 0 else ("no" if yes == 0 else "partly")


def _num(x) -> str:
    return "–" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))


def _g3(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def fit(text: str, width: int = WIDTH) -> str:
    """`text` cut to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def short_factor(name: str) -> str:
    for p in ("params.", "tags.repro.det.", "tags.repro.", "tags."):
        if name.startswith(p):
            return name[len(p):]
    return name


def _names(items: list[str], room: int) -> str:
    """As many of `items` as fit in `room` characters, then '+k more'."""
    out = ""
    for i, x in enumerate(items):
        more = f", +{len(items) - i} more" if i else f"{len(items)} environments"
        cand = (out + ", " if out else "") + x
        if len(cand) + len(f", +{len(items) - i - 1} more") > room and i < len(items) - 1:
            return out + more if out else more
        out = cand
    return out


def _fitting(head: str, items: list[str], tail: str = "", width: int = WIDTH) -> str:
    """`head`, then as many of `items` as fit in `width` with `tail` (', '-joined), then ', +k more'."""
    shown: list[str] = []
    for i, x in enumerate(items):
        more = len(items) - i - 1
        if shown and len(head + ", ".join(shown + [x]) + (f", +{more} more" if more else "") + tail) > width:
            break
        shown.append(x)
    more = len(items) - len(shown)
    return head + ", ".join(shown) + (f", +{more} more" if more else "") + tail


def example_verdict(ex: dict, labels: dict[str, str]) -> dict:
    """The verdict of one analysed example (the dict `pipeline._example` builds, with its `cost` rows)."""
    def lab(e: str) -> str:
        return labels.get(e, e)

    groups = ex.get("groups", [])
    rep_yes = sum(1 for g in groups if g["repeatable"] is True)
    rep_no = sum(1 for g in groups if g["repeatable"] is False)
    not_rep_in = sorted({lab(g["environment"]) for g in groups if g["repeatable"] is False})
    eq = ex.get("equivalence", [])
    multi = [e for e in eq if e["reproducible"] is not None]
    repro_yes = sum(1 for e in multi if e["reproducible"])
    partitions: dict[tuple, int] = {}
    for e in multi:
        names = e.get("class_labels") or [[lab(x) for x in c] for c in e["classes"]]
        key = tuple(tuple(c) for c in names)
        partitions[key] = partitions.get(key, 0) + 1
    classes = [{"classes": [list(c) for c in k], "n_configs": n}
               for k, n in sorted(partitions.items(), key=lambda kv: (-kv[1], kv[0]))]
    primary = ex.get("primary_metric")
    m = ex.get("metrics", {}).get(primary) or {}
    spread = {k: m.get(k) for k in ("n", "n_independent", "min", "max", "range", "std", "std_ci")}
    spread["metric"] = primary
    var = ex.get("variance") or {}
    named = [t for t in var.get("terms", []) if (t["partial_omega_squared"] is not None
                                                 or t["partial_eta_squared"] is not None)]
    top = named[0] if named else None
    factor = {"factor": top["term"], "share": top["share"], "partial_omega_squared": top["partial_omega_squared"],
              "omega_ci": top["omega_ci"], "partial_eta_squared": top["partial_eta_squared"]} if top else None
    rows = ex.get("cost", [])
    unreliable = [c for c in rows if c.get("placebo_ok") is False]
    cost = [{k: c.get(k) for k in ("environment", "label", "factor", "deterministic", "other", "median_deterministic",
                                    "median_other", "ratio", "ratio_ci", "strata_changed_bits", "placebo_ratio",
                                    "placebo_ci", "reliable")} for c in rows]
    v = {"example": ex["example"], "primary_metric": primary,
         "repeatable": {"answer": _answer(rep_yes, rep_no), "groups": rep_yes + rep_no, "repeatable": rep_yes,
                        "not_repeatable": rep_no, "single_run": sum(1 for g in groups if g["repeatable"] is None),
                        "not_repeatable_in": not_rep_in},
         "reproducible": {"answer": _answer(repro_yes, len(multi) - repro_yes), "configs": len(multi),
                          "reproducible": repro_yes, "not_reproducible": len(multi) - repro_yes,
                          "single_environment": len(eq) - len(multi), "n_environments": ex.get("n_environments", 0)},
         "classes": classes, "explanation": (ex.get("explanation") or {}).get("summary"),
         "spread": spread, "noise": ex.get("noise"), "factor": factor,
         "variance": {k: var.get(k) for k in ("terms", "confounded", "not_crossed", "interactions", "n_independent",
                                              "residual_share",
                                              "residual_df", "note")},
         "cost": cost, "timings_unreliable": bool(unreliable)}
    v["lines"] = [fit(x) for x in lines(v, [lab(e) for e in ex.get("environments", [])], ex)]
    return v


def _classes_line(v: dict, ex: dict) -> list[str]:
    out = []
    expl = ex.get("explanation") or {}
    hw = ex.get("hardware_count") or {}
    s = expl.get("summary")
    text = explain.lines(s, hw.get("n", 0), hw.get("kind", "hardware models"), ex.get("software_count", 0)) if s else []
    split = [c for c in v["classes"] if len(c["classes"]) > 1]
    small = all(sum(map(len, c["classes"])) <= MAX_SPELLED for c in split)
    spelled = split[:MAX_PARTITIONS] if small else []
    for c in spelled:  # the environments by name only where they are few (all of them in --wide and the report)
        tail = f" ({c['n_configs']} config(s))"
        body = " | ".join(", ".join(k) for k in c["classes"])
        out.append(fit("classes: " + body, WIDTH - len(tail)) + tail)
    if text and len(spelled) < len(split):  # too many to spell: the classes summarized
        out += text
    elif text and s["follows"]:  # spelled already: only what they follow
        out += text[1:]
    return out


def lines(v: dict, env_labels: list[str], ex: dict | None = None) -> list[str]:
    """The verdict in short sentences."""
    ex = ex or {}
    out = []
    r = v["repeatable"]
    if r["answer"] is None:
        out.append("repeatable: cannot be judged (no config ran twice in one environment)")
    else:
        s = f"repeatable: {r['answer']} ({r['repeatable']} of {r['groups']} config x environment groups bit-identical"
        if r["not_repeatable_in"]:
            s += "; not in " + _names(r["not_repeatable_in"], WIDTH - len(s) - 9)
        out.append(s + ")")
    p = v["reproducible"]
    if p["answer"] is None:
        where = env_labels[0] if len(env_labels) == 1 else f"{len(env_labels)} environments, no config in two"
        out.append(f"reproducible across environments: cannot be judged (single environment: {where})")
    else:
        out.append(f"reproducible across environments: {p['answer']} ({p['reproducible']} of {p['configs']} configs "
                   f"identical in all of {p['n_environments']} environments)")
    out += _classes_line(v, ex)
    s = v["spread"]
    if s["metric"] and s["n"]:
        out.append(f"spread of {s['metric']}: {_num(s['min'])} to {_num(s['max'])} (range {_num(s['range'])}), "
                   f"{s['n']} runs, {s['n_independent']} independent outcome(s)")
        std = f"std {_g3(s['std'])}" + (f" [{_g3(s['std_ci'][0])}, {_g3(s['std_ci'][1])}]" if s.get("std_ci") else
                                          (" (no interval: fewer than 5 outcomes)" if s.get("std") else ""))
        nz = v.get("noise")
        if nz and nz.get("se") is not None and s.get("std") is not None:
            where = "within it" if nz["within"] else f"{nz['ratio']:.1f}x beyond it"
            out.append(f"{std}; test-set noise: SE {nz['se']:.3g} (n_test {nz['n_test']}), {where}")
        elif s.get("range"):
            out.append(std + ("; test-set size not recorded: no sampling noise to compare" if nz else ""))
    var = v.get("variance") or {}
    if var.get("terms") and s.get("range"):
        big = [t for t in var["terms"] if (t.get("share") or 0) >= 0.005]
        rest = len(var["terms"]) - len(big)
        res = var.get("residual_share")
        tail = (f", +{rest} under 0.01" if rest else "") + (f", residual {res:.2f}" if res is not None else "")
        model = "with interactions" if (var.get("interactions") or {}).get("fitted") else "additive model"
        head = f"variance ({model}, type-II SS): "
        out.append(fit(_fitting(head, [f"{t['term']} {t['share']:.2f}" for t in big], tail) if big
                       else head + "no term" + tail))
        if var.get("residual_df") and (res or 0) > 1e-6:
            out.append(fit(_fitting("partial omega^2: ", [dec.share_text(t) for t in var["terms"]])))
    if var.get("confounded"):
        parts = [c["term"] + (f" (with {', '.join(c['with'][:2])})" if c["with"] else "") for c in var["confounded"]]
        out.append(fit("confounded, no share: " + "; ".join(parts)))
    if var.get("not_crossed") and s.get("range"):
        nc = var["not_crossed"]
        pairs = ", ".join(f"{c['terms'][0]} x {c['terms'][1]}" for c in nc[:2]) + (f", +{len(nc) - 2}" if len(nc) > 2 else "")
        out.append(fit(f"not crossed (shares rest on the additive model): {pairs}"))
    cost = v["cost"]
    if not cost and v.get("timings_overlapping"):
        out.append(fit(f"no cost given: {v['timings_overlapping']} timings came from runs that overlapped on one "
                       "machine"))
    if v.get("timings_unreliable"):
        bad = next(c for c in cost if c.get("placebo_ci") and not (c["placebo_ci"][0] <= 1 <= c["placebo_ci"][1]))
        lo, hi = bad["placebo_ci"]
        out.append(fit(f"timings unreliable: {bad['factor']} changed no bits yet took {bad['placebo_ratio']:.2f}x "
                       f"[{lo:.2f}, {hi:.2f}]; no cost given"))
    elif len(cost) > 3:
        by: dict[str, list[dict]] = {}
        for c in cost:
            by.setdefault(f"{c['factor']}={c['deterministic']}", []).append(c)
        for k, cs in by.items():
            rs = sorted(c["ratio"] for c in cs if c["ratio"] is not None)
            if rs:
                out.append(f"cost of {k}: median {rs[len(rs) // 2]:.2f}x train time ({rs[0]:.2f}x to {rs[-1]:.2f}x "
                           f"over {len(rs)} environments)")
    else:
        for c in cost:
            ci = f" [{c['ratio_ci'][0]:.2f}, {c['ratio_ci'][1]:.2f}]" if c.get("ratio_ci") else ""
            ratio = f"{c['ratio']:.2f}x" if c.get("ratio") is not None else "–"
            what = "placebo" if c.get("strata_changed_bits") == 0 else "cost of"
            t = (f"{what} {c['factor']}={c['deterministic']} (vs {c['other']}): {ratio}{ci} train time "
                 f"({_num(c['median_deterministic'])} s vs {_num(c['median_other'])} s)")
            out.append(fit(t + f" on {c.get('label', c['environment'])}"))
    return out
