"""The committed studies' READMEs say what their reports say, number for number: each number a README
states is formatted here from the report's analysis.json and must stand in the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU = ROOT / "analysis/cpu_study"
CROSS = ROOT / "analysis/cross_cpu_study"


def _report(folder: Path) -> dict:
    return {ex["example"]: ex for ex in json.loads((folder / "analysis.json").read_text())["examples"]}


def _g(x: float) -> str:
    """A metric as the READMEs write it: at most 4 decimals, no trailing zeros."""
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _verdict_numbers(report: dict) -> list[str]:
    out = []
    for name, ex in report.items():
        v = ex["verdict"]
        r = v["repeatable"]
        out.append(f"| `{name}` | yes, {r['repeatable']} of {r['groups']} groups" if r["answer"] == "yes"
                   else f"{name}: {r['repeatable']} of {r['groups']}")
        s = v["spread"]
        out.append(f"{_g(s['min'])} to {_g(s['max'])} (range {_g(s['range'])})")
    return out


def test_cpu_study_verdict_table_is_the_reports():
    readme = (CPU / "README.md").read_text()
    report = _report(CPU / "report")
    for text in _verdict_numbers(report):
        assert text in readme, text
    for name, ex in report.items():
        v = ex["verdict"]
        f = v["factor"]
        assert f"{f['factor']} (type-II share {f['share']:.2f})" in readme, (name, f)
        s = v["spread"]
        assert f"{s['n']} runs are {s['n_independent']} independent outcomes" in " ".join(readme.split()), name
        nz = v["noise"]
        if nz["se"] is not None:  # the spread beside the test set's own noise, as the report gives it
            row = next(ln for ln in readme.splitlines() if ln.startswith(f"| `{name}` |"))
            assert f"std {v['spread']['std']:.2g} vs SE {nz['se']:.2g}" in row, (name, row)
            assert f"{nz['ratio']:.2g}x" in row, (name, row)


@pytest.mark.parametrize("setting,expect,phrase", [
    ("threads", {"mnist_convnet": "10 of 25", "imbalanced_classification": "5 of 25", "imdb_bilstm": "20 of 25"},
     "reproducible across thread counts mnist 10 of 25, fraud 5 of 25, imdb 20 of 25 configs"),
    ("op_determinism", {"mnist_convnet": "0 of 10", "imbalanced_classification": "10 of 10", "imdb_bilstm": "10 of 10"},
     "mnist 0 of 10 configs identical, fraud and imdb 10 of 10"),
    ("keras_backend", {"mnist_convnet": "0 of 10", "imbalanced_classification": "0 of 10", "imdb_bilstm": "0 of 10"},
     "0 of 10 configs identical in all 3 backends, per example"),
])
def test_cpu_study_by_setting_findings_are_the_reports(setting, expect, phrase):
    readme = " ".join((CPU / "README.md").read_text().split())
    report = _report(CPU / f"report_by_{setting}")
    for name, words in expect.items():
        rep = report[name]["verdict"]["reproducible"]
        assert f"{rep['reproducible']} of {rep['configs']}" == words, (setting, name, rep)
    assert phrase in readme


def test_cpu_study_variance_shares_are_the_reports():
    """Finding 3: each share and partial omega^2 interval the README quotes is the report's."""
    flat = " ".join((CPU / "README.md").read_text().split())
    report = _report(CPU / "report")
    quoted = {"imbalanced_classification": ["seed", "keras_backend"], "imdb_bilstm": ["seed"], "mnist_convnet": ["keras_backend"]}
    for name, terms in quoted.items():
        for t in (t for t in report[name]["verdict"]["variance"]["terms"] if t["term"] in terms):
            lo, hi = t["omega_ci"]
            assert f"{t['share']:.2f} (partial omega^2 {t['partial_omega_squared']:.2f} [{lo:.2f}, {hi:.2f}])" in flat \
                or f"{t['share']:.2f} ({t['partial_omega_squared']:.2f} [{lo:.2f}, {hi:.2f}])" in flat, (name, t["term"])
        small = [t for t in report[name]["verdict"]["variance"]["terms"] if t["names"][0] in ("threads", "onednn", "op_determinism")]
        assert all(t["share"] < 0.01 for t in small), name  # "each take under 0.01 of every example's variance"
    residuals = [f"{report[n]['verdict']['variance']['residual_share']:.2f}" for n in
                 ("imbalanced_classification", "imdb_bilstm", "mnist_convnet")]
    assert f"(residual {residuals[0]}, {residuals[1]} and {residuals[2]})" in flat


def test_cpu_study_cost_is_the_benchs_and_the_studys_own_timings_give_none():
    """Finding 8: the cost table is bench/results/determinism_cost.json's (runs one at a time on an idle machine,
    every placebo holding 1), row for row; the study's own runs overlapped, so its report gives no cost."""
    readme = (CPU / "README.md").read_text()
    bench = json.loads((ROOT / "bench/results/determinism_cost.json").read_text())
    assert bench["quiet"] and bench["placebo_ok"] and not bench["quick"] and bench["repeats"] >= 5
    assert bench["params"]["n_train"] == 2000 and bench["params"]["epochs"] == 2  # MNIST at the study's size
    names = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
    columns = ["placebo", "op_determinism", "onednn", "threads"]
    for fw, label in names.items():
        row = next(ln for ln in readme.splitlines() if ln.strip().startswith(f"| {label} |"))
        cells = [c.strip() for c in row.strip().strip("|").split("|")][1:]
        by = {r["factor"]: r for r in bench["rows"] if r["framework"] == fw}
        for col, cell in zip(columns, cells):
            if col not in by:
                assert cell.startswith("(not a switch"), (fw, col, cell)
                continue
            r = by[col]
            lo, hi = r["ratio_ci"]
            assert cell == f"{r['ratio']:.2f}x [{lo:.2f}, {hi:.2f}]", (fw, col, cell)
        assert by["placebo"]["placebo_ok"] and by["placebo"]["ratio_ci"][0] <= 1 <= by["placebo"]["ratio_ci"][1]
    flat = " ".join(readme.split())
    assert f"no run saw more than {bench['load']['max_foreign_cores']} cores of other work" in flat
    assert f"{len(bench['runs'])} runs one at a time" in flat
    report = _report(CPU / "report")
    for name, ex in report.items():
        assert ex["cost"] == [] and ex["timings_overlapping"] == ex["n_runs"], name
    assert f"{report['mnist_convnet']['n_runs']} overlapping runs per example" in flat


def test_cross_cpu_study_verdict_table_is_the_reports():
    readme = (CROSS / "README.md").read_text()
    report = _report(CROSS / "report")
    for name, ex in report.items():
        v = ex["verdict"]
        r, rep, s = v["repeatable"], v["reproducible"], v["spread"]
        row = next(ln for ln in readme.splitlines() if ln.startswith(f"| {name} ("))
        assert f"yes, {r['repeatable']} of {r['groups']} groups" in row, row
        assert f"{rep['reproducible']} of {rep['configs']} configs" in row, row
        assert f"{_g(s['min'])} to {_g(s['max'])} (range {_g(s['range'])})" in row, row
        if v["factor"] and s["range"]:
            assert f"{v['factor']['factor']} (type-II share {v['factor']['share']:.2f})" in row, row
        if (v.get("noise") or {}).get("se"):
            flat = " ".join(readme.split())
            assert f"{v['spread']['std']:.2g} against" in flat and f"{v['noise']['se']:.2g}" in flat, name
            assert v["noise"]["within"], name  # the README says: within the sampling noise
            if v["noise"]["source"].startswith("bootstrap"):  # the README says where the SE came from
                assert "bootstrap over the test examples in the AMD runs' `repro/predictions.npz`" in flat, name
    total = sum(ex["verdict"]["reproducible"]["reproducible"] for ex in report.values())
    configs = sum(ex["verdict"]["reproducible"]["configs"] for ex in report.values())
    assert f"only {total} of the {configs} configs" in readme


NNUNET = ROOT / "analysis/nnunet_study"


def _nnunet_row(g: dict) -> str:
    """A group's row in the nnU-Net README's table: seed, workers, op determinism, val_dice, repeatable."""
    cfg = dict(kv.split("=", 1) for kv in g["config"].split())
    value = _g(g["min"]) if g["min"] == g["max"] else f"{_g(g['min'])} and {_g(g['max'])}"
    return (f"| {cfg['seed']} | {cfg['augmentation_workers']} | {cfg['op_determinism']} | {value} | "
            f"{'yes' if g['repeatable'] else 'no'} |")


def test_nnunet_study_findings_are_the_reports():
    text = (NNUNET / "README.md").read_text()
    readme = " ".join(text.split())
    ex = _report(NNUNET / "report")["nnunet_segmentation"]
    v = ex["verdict"]
    r = v["repeatable"]
    assert f"Repeatable: {r['answer']}, {r['repeatable']} of {r['groups']} groups bit-identical" in readme
    s = v["spread"]
    assert f"{_g(s['min'])} to {_g(s['max'])} (range {_g(s['range'])}), {s['n']} runs, {s['n_independent']} independent" in readme
    lo, hi = s["std_ci"]
    assert f"std {_g(s['std'])} [{_g(lo)}, {_g(hi)}]" in readme
    # every group in the table, as the report has it; repeatable exactly where augmentation runs in process
    rows = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("| ") and ln.strip()[2].isdigit()]
    assert sorted(rows) == sorted(_nnunet_row(g) for g in ex["groups"]), rows
    for g in ex["groups"]:
        assert g["repeatable"] == ("augmentation_workers=0" in g["config"]), g["config"]
    va = v["variance"]
    stated = {_g(x) for x in (s["min"], s["max"], s["range"], s["std"], *s["std_ci"], va["residual_share"])}
    stated |= {_g(x) for g in ex["groups"] for x in (g["min"], g["max"])}
    for t in va["terms"]:  # every term, interactions too, named as the README names it (aliases dropped)
        lo, hi = t["omega_ci"]
        name = " x ".join(part.split(" = ")[0] for part in t["term"].split(" x "))
        assert (f"{name} share {_g(t['share'])}, partial omega^2 {_g(t['partial_omega_squared'])} "
                f"[{_g(lo)}, {_g(hi)}]") in readme, t["term"]
        stated |= {_g(t["share"]), _g(t["partial_omega_squared"]), _g(lo), _g(hi)}
    inter = va["interactions"]["fitted"]
    assert len(inter) == sum(t["interaction"] for t in va["terms"]) == 3
    assert f"residual {_g(va['residual_share'])} on {va['residual_df']} df" in readme
    assert f"interactions take {len(inter)} of the residual's df ({va['residual_df']} left)" in readme
    assert f"{va['n_independent']} independent outcomes" in readme
    # the seed alone has an interval clear of zero, as the README says
    assert [t["term"] for t in va["terms"] if t["omega_ci"][0] > 0] == ["seed"] == [v["factor"]["factor"]]
    assert "Only the seed's interval excludes zero" in readme
    # no other decimal in the findings than the report's (a changed README number fails here too)
    findings = text.split("## Findings", 1)[1]
    assert set(re.findall(r"(?<![\w.])-?\d+\.\d+(?![\w.])", findings)) <= stated
    assert v["noise"] is None and "no test-set sampling noise" in readme
    # the batches themselves (check_batches.py's batches.json)
    checked = json.loads((NNUNET / "batches.json").read_text())
    for setting, res in checked["settings"].items():
        assert f"{setting}: {sum(res['same'])} of {len(res['same'])} batches identical" in readme, setting


def test_cpu_study_conf_is_a_scientists_size():
    """Issue 25: at least 2,000 test reviews, 50 validation frauds (as the generator places them) and 5 seeds,
    two repeats, every backend factor crossed with every seed; the README says the same numbers."""
    import yaml

    from projects.imbalanced_classification.__main__ import VALIDATION_FRACTION
    from projects.imbalanced_classification.data import generate

    conf = CPU / "conf"
    imdb = yaml.safe_load((conf / "example/imdb_cpu.yaml").read_text())["params"]
    fraud = yaml.safe_load((conf / "example/fraud_cpu.yaml").read_text())["params"]
    swept = yaml.safe_load((conf / "preset/cpu_study.yaml").read_text())["hydra"]["sweeper"]["params"]
    assert imdb["n_test"] >= 2000
    n_val = int(fraud["rows"] * VALIDATION_FRACTION)
    frauds = int(generate(fraud["rows"])[1][-n_val:].sum())
    assert frauds >= 50, frauds
    seeds, repeats = str(swept["seed"]).split(","), str(swept["repeat"]).split(",")
    assert len(seeds) >= 5 and len(repeats) >= 2
    run_sh = (CPU / "run.sh").read_text()
    assert "seed=" not in run_sh  # the seeds are swept in the preset, so every sweep crosses them
    readme = " ".join((CPU / "README.md").read_text().split())
    assert f"{fraud['rows']:,} generated transactions" in readme and f"hold {frauds} frauds" in readme
    assert f"tested on {imdb['n_test']:,} reviews" in readme


def test_readme_cpu_study_summary_is_the_reports():
    """The top README's summary of the CPU study: each claim is the report's or the cost bench's."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    report = _report(CPU / "report")
    assert all(ex["verdict"]["repeatable"]["answer"] == "yes" for ex in report.values())  # "every config repeatable"
    assert all(ex["verdict"]["noise"]["within"] for n, ex in report.items() if n != "imbalanced_classification")
    fraud = report["imbalanced_classification"]["verdict"]
    assert fraud["factor"]["factor"] == "seed" and not fraud["noise"]["within"]
    assert f"fraud's is {fraud['noise']['ratio']:.2g}x beyond it and follows the seed" in readme
    backends = _report(CPU / "report_by_keras_backend")
    assert all(ex["verdict"]["reproducible"]["reproducible"] == 0 for ex in backends.values())  # never agree
    rows = json.loads((ROOT / "bench/results/determinism_cost.json").read_text())["rows"]
    assert all(r["ratio_ci"][0] <= 1 <= r["ratio_ci"][1] for r in rows if r["factor"] == "op_determinism")
    [tf_onednn] = [r for r in rows if (r["framework"], r["factor"]) == ("tensorflow", "onednn")]
    assert f"oneDNN off {tf_onednn['ratio']:.2f}x on TensorFlow" in readme
    threads = sorted(r["ratio"] for r in rows if r["factor"] == "threads")
    assert f"one thread instead of two {threads[0]:.2f}x-{threads[-1]:.2f}x" in readme
