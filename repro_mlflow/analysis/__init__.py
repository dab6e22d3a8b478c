"""`repro analyze`: load runs into one table, measure their spread, say which environments agree, report.

Modules, one job each: `load` (runs → table), `stats` (spread statistics, bootstrap CIs), `groups`
(configs, environments, repeatability, equivalence classes), `factors` (tests and variance shares),
`predictions` (churn, weight distance, per-class spread, divergence epoch), `plots`, `report`
(HTML/JSON/CSV, MLflow analysis run), `analyze` (all of it, in order). User docs: docs/analysis.md.
"""
