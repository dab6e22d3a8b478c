"""Outputs: terminal summary (rich), self-contained HTML report, CSV table, JSON statistics, MLflow analysis run."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pandas as pd

from . import groups, labels
from .logrun import REPORT

STATS = "analysis.json"
TABLE = "runs.csv"
MAX_TABLE_ROWS = 300
MAX_NOTES = 2  # notes per example in the terminal's short answer (all with --wide)
MAX_LEGEND = 6  # environments whose legend the short answer prints (all with --wide)


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "x"


# ---------------------------------------------------------------- figures

def make_figures(result: dict, keyed: pd.DataFrame, env_sigs_by_ex: dict[str, pd.DataFrame] | None = None) -> dict:
    """Per example: {"heatmap"|"strip"|"partition"|"equivalence": (file name, SVG bytes)}, plus
    "equivalence_table" (CSV bytes) when the matrix is cut; notes added to the result. Each figure is
    bounded in size whatever the number of environments (plots.MAX_*), and says what it left out."""
    from . import plots

    figs: dict[str, dict[str, tuple[str, bytes]]] = {}
    for ex in result["examples"]:
        name, primary = ex["example"], ex["primary_metric"]
        if not primary:
            continue
        runs = keyed[(keyed["example"] == name) & keyed[f"metrics.{primary}"].notna()]
        if runs.empty:
            continue
        if "_label" in runs.columns:  # figures name environments by their labels
            runs = runs.assign(_env=runs["_label"])
        col = f"metrics.{primary}"
        f: dict[str, tuple[str, bytes]] = {}
        image, dropped = plots.heatmap(runs, col, f"{name}: {primary} by environment and repeat")
        if dropped:
            ex["notes"].append(f"heat map shows the {plots.MAX_ROWS} config·environment rows with the largest spread "
                               f"({dropped} more in {TABLE})")
        f["heatmap"] = (f"heatmap_{slug(name)}.{plots.EXT}", image)
        image, dropped = plots.strip_box(runs, col, f"{name}: {primary} per environment")
        if dropped:
            ex["notes"].append(f"strip plot shows the {plots.MAX_ENVS} environments with the widest range "
                               f"({dropped} more in {TABLE})")
        f["strip"] = (f"strip_{slug(name)}.{plots.EXT}", image)
        scopes = [s for s in (ex.get("explanation") or {}).get("scopes", []) if s["n_classes"] > 1]
        if scopes:
            image, cut_scopes, cut_hw = plots.partition(scopes, _hardware_names(keyed), f"{name}: equivalence classes")
            if cut_scopes or cut_hw:
                ex["notes"].append(f"equivalence-class figure shows {min(len(scopes), plots.MAX_SCOPES)} config "
                                   f"columns ({cut_scopes} more) and {plots.MAX_HARDWARE} hardware rows ({cut_hw} more); "
                                   f"every class is in {STATS}")
            f["partition"] = (f"partition_{slug(name)}.{plots.EXT}", image)
        if ex["n_environments"] > 1:
            kept, _, _ = groups.signatures(runs, col, [f"metrics.{m}" for m in ex["metrics"]])
            m = groups.agreement_matrix(groups.env_signatures(kept), name)
            image, dropped = plots.equivalence_matrix(m, f"{name}: environments that agree")
            f["equivalence"] = (f"equivalence_{slug(name)}.{plots.EXT}", image)
            if dropped:  # the whole matrix as a table beside the figure
                f["equivalence_table"] = (f"equivalence_{slug(name)}.csv", m.to_csv().encode())
                ex["notes"].append(f"equivalence matrix shows the first {plots.MAX_ENVS} environments ({dropped} more); "
                                   f"the whole matrix: figures/equivalence_{slug(name)}.csv")
        figs[name] = f
    return figs


def _hardware_names(keyed: pd.DataFrame) -> dict[str, str]:
    """`repro.fp.hw` → its GPU model, else its CPU model (as labels clean it), else the key."""
    hw = "tags.repro.fp.hw"
    if hw not in keyed.columns:
        return {}
    first = keyed.drop_duplicates(hw).set_index(hw)
    out = {}
    for key, row in first.iterrows():
        gpu, cpu = row.get(labels.GPU), row.get(labels.CPU_MODEL)
        name = gpu if isinstance(gpu, str) and gpu else (labels.clean_cpu(cpu) if isinstance(cpu, str) else str(key))
        out[str(key)] = name
    seen: dict[str, int] = {}
    for v in out.values():
        seen[v] = seen.get(v, 0) + 1
    return {k: (v if seen[v] == 1 else f"{v} ({k})") for k, v in out.items()}


# ---------------------------------------------------------------- files

def write_outputs(out_dir: Path, result: dict, keyed: pd.DataFrame, figs: dict, title: str) -> dict[str, Path]:
    """Write figures/, runs.csv, analysis.json and report.html into `out_dir`; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "figures").mkdir(exist_ok=True)
    result["figures"] = {}
    for ex, f in figs.items():
        result["figures"][ex] = {}
        for kind, (fname, data) in f.items():
            (out_dir / "figures" / fname).write_bytes(data)
            result["figures"][ex][kind] = f"figures/{fname}"
    table = keyed.rename(columns={"_env": "environment", "_label": "environment_label", "_config": "config",
                                  "_repeat": "repeat"})
    write_table(table, out_dir / TABLE)
    (out_dir / STATS).write_text(dump_json(result))
    (out_dir / REPORT).write_text(render_html(result, figs, title))
    return {"report": out_dir / REPORT, "json": out_dir / STATS, "csv": out_dir / TABLE}


LONG_LIST = 20  # a longer list in analysis.json is written one item a line (per group, per config)


def dump_json(result: dict) -> str:
    """`result` as analysis.json: indented one space a level, but a list longer than LONG_LIST one compact
    item a line (JSON-equal to `json.dumps(result, indent=1)`; through the C encoder, which an indent turns
    off: 0.3 s instead of 5 s for the 20,000 groups of 100,000 runs)."""

    def key(k) -> str:
        return json.dumps(k if isinstance(k, str) else json.dumps(k))

    def dump(x, pad: str) -> str:
        inner = pad + " "
        if isinstance(x, dict) and x:
            return "{\n" + ",\n".join(f"{inner}{key(k)}: {dump(v, inner)}" for k, v in x.items()) + f"\n{pad}}}"
        if isinstance(x, list) and x:
            items = ([json.dumps(v, default=str) for v in x] if len(x) > LONG_LIST else [dump(v, inner) for v in x])
            return "[\n" + ",\n".join(inner + v for v in items) + f"\n{pad}]"
        return json.dumps(x, default=str)

    return dump(result, "")


def write_table(table: pd.DataFrame, path: Path) -> None:
    """runs.csv: through Arrow's CSV writer (5× pandas' on 100,000 runs; strings quoted, read back the same
    by `table.read_table`), else pandas' where Arrow cannot type a column or would spell a value otherwise."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not any(pd.api.types.is_bool_dtype(t) for t in table.dtypes):  # Arrow writes true/false, pandas True/False
        try:
            data = pa.Table.from_pandas(table, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError):
            data = None
        if data is not None and all(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
                                    or pa.types.is_floating(t) or pa.types.is_null(t) for t in data.schema.types):
            pacsv.write_csv(data, path)
            return
    table.to_csv(path, index=False)


# ---------------------------------------------------------------- HTML

CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}.bad{background:#fde2e2}.good{background:#e3f6e3}.na{color:#888}
p.what{color:#555;font-size:13px;max-width:900px}img{max-width:100%;border:1px solid #ddd;margin:6px 0}
.note{color:#8a5a00}code{background:#f5f5f5;padding:1px 4px}
#verdict{background:#fff6d6;border:1px solid #e0c870;padding:6px 14px;margin:10px 0}
#verdict ul{margin:4px 0 8px;padding-left:22px}#verdict li{font-size:14px;margin:1px 0}
td{max-width:520px;overflow-wrap:anywhere}"""


def _v(x, digits: int = 6) -> str:
    if x is None:
        return '<span class="na">–</span>'
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    if isinstance(x, list):
        return "[" + ", ".join(_v(v, 4) for v in x) + "]"
    return html.escape(str(x))


def _table(rows: list[dict], cols: list[str], left: tuple[str, ...] = (), cls=None) -> str:
    if not rows:
        return '<p class="na">none</p>'
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(c)}</th>' for c in cols)
    body = []
    for r in rows[:MAX_TABLE_ROWS]:
        rc = cls(r) if cls else ""
        body.append(f'<tr class="{rc}">' + "".join(
            f'<td class="{"l" if c in left else ""}">{_v(r.get(c))}</td>' for c in cols) + "</tr>")
    more = f'<p class="na">{len(rows) - MAX_TABLE_ROWS} more rows in {STATS}</p>' if len(rows) > MAX_TABLE_ROWS else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _img(image: bytes, ident: str, alt: str) -> str:
    """A figure embedded in the page (the report is one file), as an image of its own (an SVG's ids and
    styles stay its own)."""
    mime = "image/svg+xml" if image.lstrip()[:4] == b"<svg" else "image/png"
    b64 = base64.b64encode(image).decode()
    # data-loaded records the decoded width once the browser has drawn it (checked by the end-to-end test)
    return (f'<img id="{ident}" alt="{html.escape(alt)}" onload="this.dataset.loaded=this.naturalWidth" '
            f'src="data:{mime};base64,{b64}">')


WHAT = {
    "spread": "Spread of each metric over all analysed runs of the example (every config, environment and repeat). "
              "range is the largest difference between two runs; n_independent counts the distinct outcomes of each "
              "config x environment (bit-identical repeats are one); mean, std, CV = std/|mean| and IQR are over them; "
              "std_ci is the 95% chi-square interval of the std, given with 5 independent outcomes or more.",
    "partition": "One row per hardware (repro.fp.hw), one column per config (and software image, when a config ran "
                 "under several); the colour is the equivalence class the hardware fell in there (a class keeps "
                 "the colour of the earlier class it shares most hardware with; blank: not run there). The same colour pattern in every column is the same "
                 "partition under every config.",
    "heatmap": "Heat map, as in the OSG study: one row per environment (and config, when there are several), one column "
               "per repeat; the colour and the number are the primary metric of that run. A row of one colour is a "
               "repeatable environment; rows of different colours are environments that disagree.",
    "strip": "Every run's primary metric per environment (red points), with a box plot of them (median, quartiles). "
             "A single point-like box means every repeat gave the same value there.",
    "groups": "Repeatability: the runs of one config in one environment. repeatable = yes when every run's outcomes "
              "(metrics and digests) are bit-identical; no (red) when not, with the spread of the primary metric; "
              "– for a group of one run (nothing to compare).",
    "equivalence": "Reproducibility: for each config, the environments grouped into equivalence classes: the "
                   "environments of one class gave bit-identical outcomes. One class = reproducible across environments.",
    "matrix": "Equivalence-class matrix: for each pair of environments, the share of the configs run in both for which "
              "their outcomes were bit-identical (1, green: always agree; 0, red: never).",
    "tests": "Is the environment a source of variance? One-way ANOVA (means differ), Kruskal-Wallis (distributions "
             "differ, rank-based) and Levene (spreads differ), over runs grouped by environment; per config, and pooled "
             "over configs after removing each config's mean. A small p-value says the environment matters.",
    "variance": "Between- versus within-environment sums of squares of the primary metric; between_share is the part "
                "of the variance that lies between environments.",
    "factors": "Descriptive only: the share of the primary metric's variance between each factor's levels taken "
               "alone (marginal eta squared = between-level sum of squares / total), over every run. Factors swept "
               "together share their variance, so these need not add up to 1; the model above attributes it.",
    "decomposition": "One model of the primary metric over the independent outcomes (one row per distinct "
                     "value of a config in an environment): hardware (repro.fp.hw), software (repro.software, else "
                     "repro.fp.sw) and each swept factor, plus the two-way interactions of crossed terms (a x b) where "
                     "some cell holds several outcomes. Per term: type-II sum of squares, partial eta squared and "
                     "partial omega squared with its 95% noncentral-F interval. Aliased columns are one term named "
                     "together; a term the others determine is confounded and gets no share.",
    "explain": "Per config (and software image, when a config ran under several): the recorded descriptors whose "
               "values split the environments exactly as the equivalence classes do (exact), else the best by the "
               "adjusted Rand index (ari: 1 = the same split).",
    "noise": "The test set's own sampling noise: the binomial standard error sqrt(p(1-p)/n_test) of an accuracy "
             "measured on n_test examples (or, from repro/predictions.npz, the bootstrap over its test examples), beside the std of the independent outcomes (ratio = std / se; within: the "
             "spread is no larger than another test set of that size would give).",
    "predictions": "Prediction level (runs with repro/predictions.npz, repro/weights.npz): mean and largest pairwise "
                   "churn (share of test examples whose predicted label differs between two runs), mean pairwise L2 "
                   "distance of the weights, and per class the range of accuracy across runs.",
    "cost": "Cost of determinism, per environment, for each determinism switch swept with two values "
            "(op_determinism, tf32, onednn, xla, threads 1 vs N): the median training time (metric train_seconds, the "
            "fit alone) of the runs with the deterministic setting and of the others, within runs whose other "
            "params are equal, and their ratio (above 1: determinism costs time) with a 95% stratified bootstrap "
            "interval, over the strata where the switch changed the bits. The placebo: over the strata where it "
            "changed no bits the ratio must include 1; when it does not, the timings are unreliable.",
    "verdict": "The answer first. Repeatable: of the config x environment groups with two runs or more, how many "
               "gave bit-identical outcomes (metrics and digests). Reproducible: of the configs run in two environments "
               "or more, how many gave the same outcomes everywhere. Classes: environments that agree with each other, "
               "by label, and what they follow. Spread: the primary metric over its independent outcomes, beside the test "
               "set's own noise. Variance: hardware vs software vs the swept factors (type-II shares). Cost: what the "
               "determinism switches cost in training time, unless the placebo fails.",
    "divergence": "Divergence point: for configs whose runs end different, the first epoch at which their per-epoch "
                  "weight digests are no longer all equal; 0 (differ before training) when their initial weights differ.",
}


def render_html(result: dict, figs: dict, title: str) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(_verdict_html(result))
    parts.append(f"<p>{result['n_runs']} run(s) analysed of {result['n_runs_selected']} selected; environments by "
                 f"<code>{html.escape(result['environment_by'])}</code>. Bootstrap: {result['bootstrap']['n_boot']} resamples, "
                 f"seed {result['bootstrap']['seed']}. Statistics in <code>{STATS}</code>, the run table in <code>{TABLE}</code>; "
                 f'each environment\'s descriptors in the <a href="#environments">legend</a> at the end.</p>')
    for n in result["notes"]:
        parts.append(f'<p class="note">{html.escape(n)}</p>')
    for ex in result["examples"]:
        name = ex["example"]
        f = figs.get(name, {})
        parts.append(f"<h2>{html.escape(name)}</h2><p>{ex['n_runs']} runs, {ex['n_configs']} config(s), "
                     f"{ex['n_environments']} environment(s); primary metric <b>{_v(ex['primary_metric'])}</b>; outcomes "
                     f"compared: {html.escape(', '.join(ex['outcomes']) or 'none')}.</p>")
        s = ex["summary"]
        if s:
            parts.append(f"<p>Groups: {s['repeatable']} repeatable, {s['not_repeatable']} not repeatable, "
                         f"{s['single_run']} with one run. Configs: {s['configs_reproducible']} reproducible across "
                         f"environments, {s['configs_not_reproducible']} not, {s['configs_single_environment']} run in a "
                         f"single environment.</p>")
        for n in ex["notes"]:
            parts.append(f'<p class="note">{html.escape(n)}</p>')
        parts.append(f'<h3>Spread</h3><p class="what">{WHAT["spread"]}</p>')
        mrows = [{"metric": m, **v} for m, v in ex["metrics"].items()]
        parts.append(_table(mrows, ["metric", "n", "n_missing", "n_unique", "n_independent", "min", "max", "range", "mean",
                                    "std", "cv", "iqr", "std_ci", "note"], left=("metric", "note")))
        if ex.get("noise"):
            parts.append(f'<p class="what">{WHAT["noise"]}</p>' + _table([ex["noise"]], ["n_test", "source", "se", "std",
                                                                                       "ratio", "within", "note"],
                                                                        left=("source", "note")))
        if "partition" in f:
            parts.append(f'<h3>Equivalence classes by hardware</h3><p class="what">{WHAT["partition"]}</p>'
                         + _img(f["partition"][1], f"partition-{slug(name)}", f"partition {name}"))
        if "heatmap" in f:
            parts.append(f'<h3>Heat map</h3><p class="what">{WHAT["heatmap"]}</p>'
                         + _img(f["heatmap"][1], f"heatmap-{slug(name)}", f"heat map {name}"))
        if "strip" in f:
            parts.append(f'<h3>Per environment</h3><p class="what">{WHAT["strip"]}</p>'
                         + _img(f["strip"][1], f"strip-{slug(name)}", f"strip plot {name}"))
        grp = sorted(ex["groups"], key=lambda g: (g["repeatable"] is not False, g["config"], g["environment"]))
        parts.append(f'<h3>Repeatability</h3><p class="what">{WHAT["groups"]}</p>')
        parts.append(_table(grp, ["config", "label", "environment", "n", "n_distinct", "repeatable", "min", "max", "range", "std"],
                            left=("config", "label", "environment"),
                            cls=lambda g: "bad" if g["repeatable"] is False else ("good" if g["repeatable"] else "")))
        parts.append(f'<h3>Equivalence classes</h3><p class="what">{WHAT["equivalence"]}</p>')
        eq = [{**e, "classes": " | ".join(", ".join(c) for c in e.get("class_labels", e["classes"]))}
              for e in ex["equivalence"]]
        parts.append(_table(eq, ["config", "n_environments", "classes", "reproducible", "note"],
                            left=("config", "classes", "note"),
                            cls=lambda e: "bad" if e["reproducible"] is False else ("good" if e["reproducible"] else "")))
        if "equivalence" in f:
            parts.append(f'<p class="what">{WHAT["matrix"]}</p>'
                         + _img(f["equivalence"][1], f"equivalence-{slug(name)}", f"equivalence matrix {name}"))
        parts.append(f'<h3>Environment tests</h3><p class="what">{WHAT["tests"]}</p>')
        parts.append(_table(ex["tests"], ["scope", "config", "n", "n_groups", "test", "statistic", "pvalue", "note"],
                            left=("scope", "config", "test", "note")))
        parts.append(f'<p class="what">{WHAT["variance"]}</p>')
        parts.append(_table(ex["env_variance"], ["scope", "config", "n", "n_groups", "ss_between", "ss_within",
                                                 "between_share"], left=("scope", "config")))
        var = ex.get("variance") or {}
        parts.append(f'<h3>Hardware, software and factors</h3><p class="what">{WHAT["decomposition"]}</p>')
        parts.append(_table(var.get("terms", []), ["term", "n_levels", "df", "ss", "partial_eta_squared",
                                                   "partial_omega_squared", "omega_ci"], left=("term",)))
        for c in var.get("confounded", []):
            parts.append(f'<p class="note">confounded, no share: {html.escape(c["term"])}'
                         f'{" (with " + html.escape(", ".join(c["with"])) + ")" if c["with"] else ""}</p>')
        for c in var.get("not_crossed", []):
            parts.append(f'<p class="note">not crossed: {html.escape(" x ".join(c["terms"]))} '
                         f'({c["combinations"]} of {c["possible"]} combinations run)</p>')
        expl = (ex.get("explanation") or {}).get("scopes", [])
        parts.append(f'<h3>What the classes follow</h3><p class="what">{WHAT["explain"]}</p>')
        parts.append(_table([{**r, "follows": " + ".join(r["follows"]) or None, "also": "; ".join(r["also"]) or None}
                             for r in expl], ["config", "software", "n_environments", "n_classes", "follows", "exact",
                                              "ari", "also"], left=("config", "software", "follows", "also")))
        parts.append(f'<h3>Variance by factor (marginal)</h3><p class="what">{WHAT["factors"]}</p>')
        parts.append(_table(ex["factors"], ["rank", "factor", "n_levels", "eta_squared", "ss_between", "ss_total", "note"],
                            left=("factor", "note")))
        parts.append(f'<h3 id="cost-{slug(name)}">Cost of determinism</h3><p class="what">{WHAT["cost"]}</p>')
        parts.append(_table(ex.get("cost", []), ["label", "factor", "deterministic", "other", "n_deterministic",
                                                 "n_other", "median_deterministic", "median_other", "strata",
                                                 "strata_changed_bits", "ratio", "ratio_ci", "placebo_ratio",
                                                 "placebo_ci", "reliable", "note"], left=("label", "factor", "note")))
        parts.append(f'<h3>Predictions and weights</h3><p class="what">{WHAT["predictions"]}</p>')
        prow = [{**p, "per_class_range": [c["range"] for c in (p["per_class"] or [])] or None} for p in ex["predictions"]]
        parts.append(_table(prow, ["config", "n_runs_predictions", "mean_pairwise_churn", "max_pairwise_churn",
                                   "n_runs_weights", "mean_pairwise_l2", "per_class_range"], left=("config",)))
        parts.append(f'<h3>Divergence point</h3><p class="what">{WHAT["divergence"]}</p>')
        parts.append(_table(ex["divergence"], ["config", "n_runs", "first_divergent_epoch", "note"], left=("config", "note")))
    if "baseline" in result:
        names = {e["key"]: e["label"] for e in result.get("environment_legend", [])}
        parts.append(_baseline_html(result["baseline"], names))
    # the legend last: its descriptor lists are long, and the figures should follow the verdict closely
    parts.append(_legend_html(result.get("environment_legend", [])))
    parts.append("</body></html>")
    return "\n".join(parts)


def _verdict_html(result: dict) -> str:
    """The verdict of every example, at the top of the report (visible without scrolling)."""
    items = []
    for ex in result["examples"]:
        v = ex.get("verdict")
        if not v:
            continue
        lines = "".join(f"<li>{html.escape(x)}</li>" for x in v["lines"])
        items.append(f'<div class="verdict"><b>{html.escape(ex["example"])}</b> '
                     f'({ex["n_runs"]} runs, {ex["n_environments"]} environment(s)):<ul>{lines}</ul></div>')
    return (f'<section id="verdict"><h2>Verdict</h2>{"".join(items)}'
            f'<p class="what">{WHAT["verdict"]}</p></section>')


def _legend_html(legend: list[dict]) -> str:
    """Environment label → key → every descriptor the runs of it share."""
    rows = [{"label": e["label"], "key": e["key"],
             "descriptors": "; ".join(f"{k}={v}" for k, v in sorted(e["descriptors"].items()))} for e in legend]
    return ('<h2 id="environments">Environments</h2><p class="what">Each environment\'s label is made from the '
            'fingerprint descriptors that tell the analysed environments apart; the key is what runs are grouped by '
            '(the value of the environment column); the descriptors are every repro.* value its runs share.</p>'
            + _table(rows, ["label", "key", "descriptors"], left=("label", "key", "descriptors")))


def _baseline_html(b: dict, names: dict[str, str] | None = None) -> str:
    s, o = b["same_environment"], b["other_environment"]
    head = (f'<h2 id="baseline">Against the baseline</h2><p class="what">Every group the baseline '
            f'(<code>{html.escape(b["path"])}</code>) found repeatable, compared bit for bit with the runs of the '
            f'same config now, per environment.</p><p>Same environment: <b>{s["agrees"]} agree</b>, '
            f'<b>{s["differs"]} differ</b>; other environments: {o["agrees"]} agree, {o["differs"]} differ; '
            f'{b["absent"]} not run now.</p>')
    rows = sorted(b["rows"], key=lambda r: (r["verdict"] == "agrees", r["example"], r["config"]))
    rows = [{**r, "columns": ", ".join(r["columns"]) or None,
             "label": (names or {}).get(r["environment"], r["environment"])} for r in rows]
    return head + _table(rows, ["verdict", "example", "config", "baseline_environment", "label", "environment",
                                "same_environment",
                                "n_runs", "columns"], left=("verdict", "example", "config", "columns"),
                         cls=lambda r: "good" if r["verdict"] == "agrees" else "bad")


# ---------------------------------------------------------------- terminal

def print_line(console, text: str, style: str | None = None) -> None:
    """One whole line: never wrapped, never cut, whatever the terminal's width (scripts read these)."""
    console.print(text, style=style, soft_wrap=True, markup=False, highlight=False, overflow="ignore", crop=False)


def _metric_line(m: str, s: dict, primary: bool) -> str:
    ci = f" [{_txt(s['std_ci'][0])}, {_txt(s['std_ci'][1])}]" if s.get("std_ci") else ""
    return (f"  {'* ' if primary else ''}{m}: n {s['n']}, {s['n_independent']} independent, min {_txt(s['min'])}, "
            f"max {_txt(s['max'])}, std {_txt(s['std'])}{ci}")


def print_summary(result: dict, console, metrics: list[str] | None = None, wide: bool = False) -> None:
    """The verdict of every example and its primary metric (plus `metrics`); `wide`: every statistic.

    Every line is printed whole (no wrapping, no "…"), so the output reads the same at any width,
    in a terminal, a log file or a pipe.
    """
    hidden = 0
    for n in result["notes"]:
        print_line(console, n, "yellow")
    shown = {m.removeprefix("metrics.") for m in metrics or []}
    for ex in result["examples"]:
        print_line(console, f"{ex['example']}: {ex['n_runs']} runs, {ex['n_configs']} config(s), "
                       f"{ex['n_environments']} environment(s)", "bold")
        for x in (ex.get("verdict") or {}).get("lines", []):
            print_line(console, "  " + x)
        for m, st in ex["metrics"].items():
            if wide or m in shown:
                print_line(console, _metric_line(m, st, m == ex["primary_metric"]))
        if wide:
            lab = dict(zip(ex["environments"], ex.get("environment_labels", ex["environments"])))
            for g in [g for g in ex["groups"] if g["repeatable"] is False]:
                print_line(console, f"  not repeatable: {g['config']} @ {lab.get(g['environment'], g['environment'])}: "
                               f"{g['n']} runs, {g['n_distinct']} distinct, range {_txt(g['range'])}", "red")
            for e in [e for e in ex["equivalence"] if e["reproducible"] is False]:
                print_line(console, f"  classes for {e['config']}: "
                               + " | ".join(", ".join(c) for c in e.get("class_labels", e["classes"])))
            for r in (ex.get("explanation") or {}).get("scopes", []):
                if r["n_classes"] > 1:
                    sw = f" [{r['software']}]" if r["software"] else ""
                    how = "exactly" if r["exact"] else f"best, ARI {_txt(r['ari'])}"
                    print_line(console, f"  follows in {r['config']}{sw}: {' + '.join(r['follows']) or '–'} ({how})")
            if ex["factors"]:
                print_line(console, "  factors (marginal eta^2): " + ", ".join(f"{f['factor']} {_txt(f['eta_squared'])}"
                                                                           for f in ex["factors"][:8]))
        for n in ex["notes"] if wide else ex["notes"][:MAX_NOTES]:
            print_line(console, "  " + n, "yellow")
        hidden += 0 if wide else max(len(ex["notes"]) - MAX_NOTES, 0)
    legend = [e for e in result.get("environment_legend", []) if e["label"] != e["key"]]
    if len(legend) > MAX_LEGEND and not wide:
        print_line(console, f"{len(legend)} environment label(s): the legend with --wide and in the report"
                   + (f"; {hidden} note(s) with --wide" if hidden else ""))
    elif hidden:
        print_line(console, f"{hidden} note(s) with --wide")
    if legend and (wide or len(legend) <= MAX_LEGEND):
        print_line(console, "environments:")
        for e in legend:
            print_line(console, f"  {e['label']} = {e['key']}")
            if wide:
                print_line(console, "    " + "; ".join(f"{k}={v}" for k, v in sorted(e["descriptors"].items())))
    b = result.get("baseline")
    if b:
        s, o = b["same_environment"], b["other_environment"]
        print_line(console, f"baseline {b['path']}: same environment {s['agrees']} agree, {s['differs']} differ"
                       f" · other environments {o['agrees']} agree, {o['differs']} differ · {b['absent']} not run now")
        names = {e["key"]: e["label"] for e in result.get("environment_legend", [])}
        for r in [r for r in b["rows"] if r["verdict"] != "agrees"][:10]:
            print_line(console, f"  {r['verdict']} {r['example']} {r['config']} @ {names.get(r['environment'], r['environment'])}: "
                           f"{', '.join(r['columns'])}", "red")


def _txt(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, list):
        return "[" + ", ".join(_txt(v) for v in x) + "]"
    return f"{x:.6g}" if isinstance(x, float) else str(x)


# ---------------------------------------------------------------- MLflow

def run_metrics(result: dict) -> dict[str, float]:
    """The analysis run's metrics: the runs analysed, and each example's summary counts."""
    metrics = {"n_runs": result["n_runs"]}
    for ex in result["examples"]:
        for k, v in (ex["summary"] or {}).items():
            metrics[f"{slug(ex['example'])}.{k}"] = v
    return metrics
