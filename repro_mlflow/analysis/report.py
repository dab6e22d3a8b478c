"""Outputs: terminal summary (rich), self-contained HTML report, CSV table, JSON statistics, MLflow analysis run."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pandas as pd

from . import groups, plots

REPORT = "report.html"
STATS = "analysis.json"
TABLE = "runs.csv"
MAX_TABLE_ROWS = 300


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_") or "x"


# ---------------------------------------------------------------- figures

def make_figures(result: dict, keyed: pd.DataFrame, env_sigs_by_ex: dict[str, pd.DataFrame] | None = None) -> dict:
    """Per example: {"heatmap"|"strip"|"equivalence": (file name, PNG bytes)}; notes added to the result."""
    figs: dict[str, dict[str, tuple[str, bytes]]] = {}
    for ex in result["examples"]:
        name, primary = ex["example"], ex["primary_metric"]
        if not primary:
            continue
        runs = keyed[(keyed["example"] == name) & keyed[f"metrics.{primary}"].notna()]
        if runs.empty:
            continue
        col = f"metrics.{primary}"
        f: dict[str, tuple[str, bytes]] = {}
        png, dropped = plots.heatmap(runs, col, f"{name}: {primary} by environment and repeat")
        if dropped:
            ex["notes"].append(f"heat map shows the {plots.MAX_ROWS} config·environment rows with the largest spread "
                               f"({dropped} more in {TABLE})")
        f["heatmap"] = (f"heatmap_{slug(name)}.png", png)
        f["strip"] = (f"strip_{slug(name)}.png", plots.strip_box(runs, col, f"{name}: {primary} per environment"))
        if ex["n_environments"] > 1:
            kept, _, _ = groups.signatures(runs, col, [f"metrics.{m}" for m in ex["metrics"]])
            m = groups.agreement_matrix(groups.env_signatures(kept), name)
            f["equivalence"] = (f"equivalence_{slug(name)}.png",
                                plots.equivalence_matrix(m, f"{name}: environments that agree"))
        figs[name] = f
    return figs


# ---------------------------------------------------------------- files

def write_outputs(out_dir: Path, result: dict, keyed: pd.DataFrame, figs: dict, title: str) -> dict[str, Path]:
    """Write figures/, runs.csv, analysis.json and report.html into `out_dir`; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "figures").mkdir(exist_ok=True)
    result["figures"] = {}
    for ex, f in figs.items():
        result["figures"][ex] = {}
        for kind, (fname, png) in f.items():
            (out_dir / "figures" / fname).write_bytes(png)
            result["figures"][ex][kind] = f"figures/{fname}"
    table = keyed.rename(columns={"_env": "environment", "_config": "config", "_repeat": "repeat"})
    table.to_csv(out_dir / TABLE, index=False)
    (out_dir / STATS).write_text(json.dumps(result, indent=1, default=str))
    (out_dir / REPORT).write_text(render_html(result, figs, title))
    return {"report": out_dir / REPORT, "json": out_dir / STATS, "csv": out_dir / TABLE}


# ---------------------------------------------------------------- HTML

CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}.bad{background:#fde2e2}.good{background:#e3f6e3}.na{color:#888}
p.what{color:#555;font-size:13px;max-width:900px}img{max-width:100%;border:1px solid #ddd;margin:6px 0}
.note{color:#8a5a00}code{background:#f5f5f5;padding:1px 4px}"""


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


def _img(png: bytes, ident: str, alt: str) -> str:
    b64 = base64.b64encode(png).decode()
    # data-loaded records the decoded width once the browser has drawn it (checked by the end-to-end test)
    return (f'<img id="{ident}" alt="{html.escape(alt)}" onload="this.dataset.loaded=this.naturalWidth" '
            f'src="data:image/png;base64,{b64}">')


WHAT = {
    "spread": "Spread of each metric over all analysed runs of the example (every config, environment and repeat). "
              "range is the largest difference between two runs; std is the sample standard deviation; CV = std/|mean|; "
              "IQR the interquartile range; the bracketed intervals are 95% percentile-bootstrap intervals.",
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
    "factors": "Share of the primary metric's variance that each swept factor explains (eta squared = between-level "
               "sum of squares / total sum of squares), ranked. Factors are confounded when swept together, so shares "
               "need not add up to 1.",
    "predictions": "Prediction level (runs with repro/predictions.npz, repro/weights.npz): mean and largest pairwise "
                   "churn (share of test examples whose predicted label differs between two runs), mean pairwise L2 "
                   "distance of the weights, and per class the range of accuracy across runs.",
    "divergence": "Divergence point: for configs whose runs end different, the first epoch at which their per-epoch "
                  "weight digests are no longer all equal.",
}


def render_html(result: dict, figs: dict, title: str) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(f"<p>{result['n_runs']} run(s) analysed of {result['n_runs_selected']} selected; environments by "
                 f"<code>{html.escape(result['environment_by'])}</code>. Bootstrap: {result['bootstrap']['n_boot']} resamples, "
                 f"seed {result['bootstrap']['seed']}. Statistics in <code>{STATS}</code>, the run table in <code>{TABLE}</code>.</p>")
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
        parts.append(_table(mrows, ["metric", "n", "n_missing", "n_unique", "min", "max", "range", "mean", "std", "cv",
                                    "iqr", "std_ci", "range_ci", "note"], left=("metric", "note")))
        if "heatmap" in f:
            parts.append(f'<h3>Heat map</h3><p class="what">{WHAT["heatmap"]}</p>'
                         + _img(f["heatmap"][1], f"heatmap-{slug(name)}", f"heat map {name}"))
        if "strip" in f:
            parts.append(f'<h3>Per environment</h3><p class="what">{WHAT["strip"]}</p>'
                         + _img(f["strip"][1], f"strip-{slug(name)}", f"strip plot {name}"))
        grp = sorted(ex["groups"], key=lambda g: (g["repeatable"] is not False, g["config"], g["environment"]))
        parts.append(f'<h3>Repeatability</h3><p class="what">{WHAT["groups"]}</p>')
        parts.append(_table(grp, ["config", "environment", "n", "n_distinct", "repeatable", "min", "max", "range", "std"],
                            left=("config", "environment"),
                            cls=lambda g: "bad" if g["repeatable"] is False else ("good" if g["repeatable"] else "")))
        parts.append(f'<h3>Equivalence classes</h3><p class="what">{WHAT["equivalence"]}</p>')
        eq = [{**e, "classes": " | ".join(", ".join(c) for c in e["classes"])} for e in ex["equivalence"]]
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
        parts.append(f'<h3>Variance by factor</h3><p class="what">{WHAT["factors"]}</p>')
        parts.append(_table(ex["factors"], ["rank", "factor", "n_levels", "eta_squared", "ss_between", "ss_total", "note"],
                            left=("factor", "note")))
        parts.append(f'<h3>Predictions and weights</h3><p class="what">{WHAT["predictions"]}</p>')
        prow = [{**p, "per_class_range": [c["range"] for c in (p["per_class"] or [])] or None} for p in ex["predictions"]]
        parts.append(_table(prow, ["config", "n_runs_predictions", "mean_pairwise_churn", "max_pairwise_churn",
                                   "n_runs_weights", "mean_pairwise_l2", "per_class_range"], left=("config",)))
        parts.append(f'<h3>Divergence point</h3><p class="what">{WHAT["divergence"]}</p>')
        parts.append(_table(ex["divergence"], ["config", "n_runs", "first_divergent_epoch", "note"], left=("config", "note")))
    if "baseline" in result:
        parts.append(_baseline_html(result["baseline"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _baseline_html(b: dict) -> str:
    s, o = b["same_environment"], b["other_environment"]
    head = (f'<h2 id="baseline">Against the baseline</h2><p class="what">Every group the baseline '
            f'(<code>{html.escape(b["path"])}</code>) found repeatable, compared bit for bit with the runs of the '
            f'same config now, per environment.</p><p>Same environment: <b>{s["agrees"]} agree</b>, '
            f'<b>{s["differs"]} differ</b>; other environments: {o["agrees"]} agree, {o["differs"]} differ; '
            f'{b["absent"]} not run now.</p>')
    rows = sorted(b["rows"], key=lambda r: (r["verdict"] == "agrees", r["example"], r["config"]))
    rows = [{**r, "columns": ", ".join(r["columns"]) or None} for r in rows]
    return head + _table(rows, ["verdict", "example", "config", "baseline_environment", "environment", "same_environment",
                                "n_runs", "columns"], left=("verdict", "example", "config", "columns"),
                         cls=lambda r: "good" if r["verdict"] == "agrees" else "bad")


# ---------------------------------------------------------------- terminal

def print_summary(result: dict, console) -> None:
    from rich.table import Table

    for n in result["notes"]:
        console.print(f"[yellow]{n}[/]")
    for ex in result["examples"]:
        t = Table(title=f"{ex['example']}: {ex['n_runs']} runs, {ex['n_configs']} config(s), "
                        f"{ex['n_environments']} environment(s)")
        for c in ("metric", "n", "n_unique", "min", "max", "range", "mean", "std", "CV", "std 95% CI"):
            t.add_column(c, justify="left" if c == "metric" else "right")
        for m, s in ex["metrics"].items():
            t.add_row(("* " if m == ex["primary_metric"] else "") + m, str(s["n"]), str(s["n_unique"]),
                      *[_txt(s[k]) for k in ("min", "max", "range", "mean", "std", "cv")], _txt(s["std_ci"]))
        console.print(t)
        sm = ex["summary"]
        if sm:
            console.print(f"groups: [green]{sm['repeatable']} repeatable[/], [red]{sm['not_repeatable']} not[/], "
                          f"{sm['single_run']} single-run · configs: [green]{sm['configs_reproducible']} reproducible[/], "
                          f"[red]{sm['configs_not_reproducible']} not[/], {sm['configs_single_environment']} single-environment")
        for g in [g for g in ex["groups"] if g["repeatable"] is False][:10]:
            console.print(f"  [red]not repeatable[/] {g['config']} @ {g['environment']}: {g['n']} runs, "
                          f"{g['n_distinct']} distinct, range {_txt(g['range'])}")
        for e in [e for e in ex["equivalence"] if e["reproducible"] is False][:10]:
            console.print(f"  classes for {e['config']}: " + " | ".join(", ".join(c) for c in e["classes"]))
        top = ex["factors"][:5]
        if top:
            console.print("  factors: " + ", ".join(f"{f['factor']} {_txt(f['eta_squared'])}" for f in top))
        for n in ex["notes"]:
            console.print(f"  [yellow]{n}[/]")
    b = result.get("baseline")
    if b:
        s, o = b["same_environment"], b["other_environment"]
        console.print(f"baseline {b['path']}: same environment [green]{s['agrees']} agree[/], [red]{s['differs']} differ[/]"
                      f" · other environments {o['agrees']} agree, {o['differs']} differ · {b['absent']} not run now")
        for r in [r for r in b["rows"] if r["verdict"] != "agrees"][:10]:
            console.print(f"  [red]{r['verdict']}[/] {r['example']} {r['config']} @ {r['environment']}: "
                          f"{', '.join(r['columns'])}")


def _txt(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, list):
        return "[" + ", ".join(_txt(v) for v in x) + "]"
    return f"{x:.6g}" if isinstance(x, float) else str(x)


# ---------------------------------------------------------------- MLflow

def log_analysis_run(tracking_uri: str, experiment_id: str, label: str, out_dir: Path, result: dict) -> str:
    """An MLflow run in `experiment_id` tagged `repro.analysis_of=label`, holding the output folder as artifacts."""
    import time

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.create_run(experiment_id, run_name=f"analysis {label}"[:250], tags={
        "repro.analysis_of": label[:250],
        "mlflow.note.content": f"repro analyze of {label}: open the artifact {REPORT}.",
    })
    rid = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric("n_runs", result["n_runs"], now, 0)]
    for ex in result["examples"]:
        for k, v in (ex["summary"] or {}).items():
            metrics.append(Metric(f"{slug(ex['example'])}.{k}", v, now, 0))
    client.log_batch(rid, metrics=metrics)
    client.log_artifacts(rid, str(out_dir))
    client.set_terminated(rid, "FINISHED")
    return rid
