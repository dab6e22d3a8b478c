"""The cost of determinism measured by the CPU study, as a benchmark record.

    python bench/determinism_cost.py [analysis/cpu_study/report/analysis.json]

Reads the `cost` rows that `repro analyze` computed for the study (median `train_seconds` with each
determinism switch in its deterministic setting and without, within strata of otherwise equal runs,
their ratio and a bootstrap interval; see repro_mlflow/analysis/cost.py) and writes them, one row per
example and switch, to bench/results/determinism_cost.json. Re-run the study first
(`bash analysis/cpu_study/run.sh`) to measure again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(path: str | None = None) -> dict:
    src = Path(path) if path else ROOT / "analysis/cpu_study/report/analysis.json"
    analysis = json.loads(src.read_text())
    rows = [{k: c.get(k) for k in ("example", "label", "factor", "deterministic", "other", "strata", "n_deterministic",
                                   "n_other", "median_deterministic", "median_other", "ratio", "ratio_ci")}
            for ex in analysis["examples"] for c in ex.get("cost", [])]
    out = {"benchmark": "determinism_cost", "source": str(src.relative_to(ROOT)) if src.is_relative_to(ROOT) else str(src),
           "what": "median train_seconds deterministic / other, within strata of otherwise equal runs",
           "conditions": "2-vCPU Intel Xeon, repro-local with parallel=2 (two runs share the two cores), "
                         "other work on the machine: ratios are indicative, the intervals say how much",
           "rows": rows}
    (ROOT / "bench/results/determinism_cost.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    for r in main(*sys.argv[1:2])["rows"]:
        ci = r["ratio_ci"] and f"[{r['ratio_ci'][0]:.2f}, {r['ratio_ci'][1]:.2f}]"
        print(f"{r['example']:28s} {r['factor']:15s} {r['ratio']:.2f}x {ci}  ({r['median_deterministic']:.2f} s vs "
              f"{r['median_other']:.2f} s, {r['strata']} strata)")
