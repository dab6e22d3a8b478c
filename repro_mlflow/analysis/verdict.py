"""The verdict an analysis opens with, per example: would this result hold on another machine?

- repeatable: of the config × environment groups with two runs or more, how many gave bit-identical
  outcomes (`answer`: yes / partly / no; None when no group has two runs);
- reproducible: of the configs run in two environments or more, how many gave the same outcomes in
  every environment (`answer` as above; None when every config ran in a single environment);
- classes: the equivalence classes by environment label, each distinct partition once, with how many
  configs fell that way (most common first);
- spread: min, max and range of the primary metric over every run of the example;
- factor: the factor that explains most of the primary metric's variance (eta squared; the
  composite "config" only when nothing else is swept);
- cost: the cost-of-determinism rows of the example (`cost.py`), where `train_seconds` was logged.

`lines` says all of it in short sentences, the form the terminal and the report print.
"""

from __future__ import annotations


def _answer(yes: int, no: int) -> str | None:
    if yes + no == 0:
        return None
    return "yes" if no == 0 else ("no" if yes == 0 else "partly")


def _num(x) -> str:
    return "–" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))


def short_factor(name: str) -> str:
    for p in ("params.", "tags.repro.det.", "tags.repro.", "tags."):
        if name.startswith(p):
            return name[len(p):]
    return name


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
        key = tuple(tuple(lab(x) for x in c) for c in e["classes"])
        partitions[key] = partitions.get(key, 0) + 1
    classes = [{"classes": [list(c) for c in k], "n_configs": n}
               for k, n in sorted(partitions.items(), key=lambda kv: (-kv[1], kv[0]))]
    primary = ex.get("primary_metric")
    m = ex.get("metrics", {}).get(primary) or {}
    spread = {"metric": primary, "n": m.get("n"), "min": m.get("min"), "max": m.get("max"), "range": m.get("range")}
    named = [f for f in ex.get("factors", []) if f["eta_squared"] is not None]
    top = next((f for f in named if f["factor"] != "config"), named[0] if named else None)
    factor = {"factor": short_factor(top["factor"]), "eta_squared": top["eta_squared"]} if top else None
    cost = [{k: c[k] for k in ("environment", "label", "factor", "deterministic", "other", "median_deterministic",
                                "median_other", "ratio", "ratio_ci") if k in c} for c in ex.get("cost", [])]
    v = {"example": ex["example"], "primary_metric": primary,
         "repeatable": {"answer": _answer(rep_yes, rep_no), "groups": rep_yes + rep_no, "repeatable": rep_yes,
                        "not_repeatable": rep_no, "single_run": sum(1 for g in groups if g["repeatable"] is None),
                        "not_repeatable_in": not_rep_in},
         "reproducible": {"answer": _answer(repro_yes, len(multi) - repro_yes), "configs": len(multi),
                          "reproducible": repro_yes, "not_reproducible": len(multi) - repro_yes,
                          "single_environment": len(eq) - len(multi), "n_environments": ex.get("n_environments", 0)},
         "classes": classes, "spread": spread, "factor": factor, "cost": cost}
    v["lines"] = lines(v, [lab(e) for e in ex.get("environments", [])])
    return v


def lines(v: dict, env_labels: list[str]) -> list[str]:
    """The verdict in short sentences."""
    out = []
    r = v["repeatable"]
    if r["answer"] is None:
        out.append("repeatable: cannot be judged (no config ran twice in one environment)")
    else:
        s = f"repeatable: {r['answer']} ({r['repeatable']} of {r['groups']} config x environment groups bit-identical"
        if r["not_repeatable_in"]:
            s += "; not in " + ", ".join(r["not_repeatable_in"])
        out.append(s + ")")
    p = v["reproducible"]
    if p["answer"] is None:
        where = env_labels[0] if len(env_labels) == 1 else f"{len(env_labels)} environments, no config in two"
        out.append(f"reproducible across environments: cannot be judged (single environment: {where})")
    else:
        out.append(f"reproducible across environments: {p['answer']} ({p['reproducible']} of {p['configs']} configs "
                   f"identical in all of {p['n_environments']} environments)")
    for c in v["classes"]:
        if len(c["classes"]) > 1:
            out.append("classes: " + " | ".join(", ".join(k) for k in c["classes"]) + f" ({c['n_configs']} config(s))")
    s = v["spread"]
    if s["metric"] and s["n"]:
        t = f"spread of {s['metric']}: {_num(s['min'])} to {_num(s['max'])} (range {_num(s['range'])}, {s['n']} runs)"
        if v["factor"] and s["range"]:
            t += f"; most explained by {v['factor']['factor']} (eta^2 {v['factor']['eta_squared']:.2f})"
        out.append(t)
    for c in v["cost"]:
        ci = f" [{c['ratio_ci'][0]:.2f}, {c['ratio_ci'][1]:.2f}]" if c.get("ratio_ci") else ""
        ratio = f"{c['ratio']:.2f}x" if c.get("ratio") is not None else "–"
        out.append(f"cost of {c['factor']}={c['deterministic']} (vs {c['other']}): {ratio}{ci} train time "
                   f"({_num(c['median_deterministic'])} s vs {_num(c['median_other'])} s) on {c.get('label', c['environment'])}")
    return out
