"""`repro analyze`: spread, repeatability, equivalence classes, variance by factor; report logged to MLflow."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _tracking_uri(args: argparse.Namespace) -> str:
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    import mlflow  # (seconds of imports: only for MLflow's own default)

    return mlflow.get_tracking_uri()


def _warm() -> None:
    """Imports the statistics and the report (scipy): in a thread while the runs are read (the SQL
    drivers read without holding the GIL)."""
    from ..analysis import pipeline, report  # noqa: F401


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ..analysis.table import is_table
    from ..errors import ReproError

    if args.n_boot < 1:
        raise ReproError("--n-boot must be at least 1")
    stores = args.store or [_tracking_uri(args)]
    # the analysis run goes to --tracking-uri, else to the first store that is a tracking store
    uri = args.tracking_uri or next((s for s in stores if not is_table(s)), None)
    logger = None
    if os.environ.get("REPRO_ANALYZE_SERIAL") != "1":
        from concurrent.futures import ThreadPoolExecutor

        if not args.no_report and not args.no_log and uri is not None:
            from ..analysis.logrun import RunLogger

            logger = RunLogger(uri)  # MLflow imported and its store opened on the other core meanwhile
        pool = ThreadPoolExecutor(1, thread_name_prefix="repro-warm")
        pool.submit(_warm)
        pool.shutdown(wait=False)
    try:
        return _analyze(args, stores, uri, logger)
    finally:
        if logger is not None:
            logger.cancel()  # (nothing to do once it has logged)


def _analyze(args: argparse.Namespace, stores: list[str], uri: str | None, logger) -> int:
    import time

    from rich.console import Console

    from ..analysis import baseline, load, logrun
    from ..errors import ReproError

    base = baseline.load_baseline(args.baseline) if args.baseline else None

    sel = load.Selection(experiments=args.experiment or [], sweep=args.sweep, filter_string=args.filter,
                         tags=[args.by, *(args.factor or [])])
    t0 = time.perf_counter()
    if args.rerun_of:  # the one config: the original and its reruns
        from mlflow.tracking import MlflowClient

        from .. import tags as T

        orig = MlflowClient(stores[0]).get_run(args.rerun_of)
        chash = orig.data.tags.get(T.CONFIG_HASH)
        # a bare `mlflow run` has no config hash: its experiment is read, then the original and reruns kept
        sel = load.Selection(experiments=[orig.info.experiment_id], sweep=None,
                             filter_string=f"tags.`{T.CONFIG_HASH}` = '{chash}'" if chash else None)
    loaded = load.read_stores(stores, sel)
    df, codes = loaded.frame, loaded.codes
    if args.rerun_of:
        col = f"tags.{T.RERUN_OF}"
        keep = (df["run_id"] == args.rerun_of) | ((df[col] == args.rerun_of) if col in df.columns else False)
        df, codes = df[keep].reset_index(drop=True), None
        if col not in df.columns or not (df[col] == args.rerun_of).any():
            raise ReproError(f"run {args.rerun_of} has no reruns yet: `repro rerun {args.rerun_of}` makes them")
    t_load = time.perf_counter() - t0
    from ..analysis import pipeline, report

    opt = pipeline.Options(by=args.by, metrics=args.metric or [], primary=args.primary, factors=args.factor or [],
                           statuses=() if args.all_statuses else ("FINISHED",), n_boot=args.n_boot, seed=args.seed,
                           max_configs=args.max_configs, max_artifact_runs=args.max_artifact_runs,
                           artifacts=not args.no_artifacts)
    result, keyed = pipeline.analyse(df, opt, uri, codes)
    result["selection"] = {"tracking_uri": uri, "stores": stores, "experiments": sel.experiments, "sweep": sel.sweep,
                           "filter": sel.filter_string}
    result["timing_s"] = {"load": round(t_load, 3), "statistics": round(time.perf_counter() - t0 - t_load, 3)}
    result["n_runs_read"] = int(len(df))
    # how much was read and how long it took: on stderr, so that stdout stays the same from run to run
    print(f"read {len(df)} run(s) from {len(stores)} store(s) in {t_load:.2f} s; statistics in "
          f"{result['timing_s']['statistics']:.2f} s", file=sys.stderr)
    if base is not None:
        result["baseline"] = baseline.compare(keyed, *base, path=args.baseline)
    label = (f"rerun-of-{args.rerun_of}" if args.rerun_of else None) or args.sweep or args.filter or ("experiment " + ",".join(sel.experiments) if sel.experiments else "all runs")
    console = Console(stderr=args.json, soft_wrap=True)  # a line is never wrapped: scripts read them
    if not args.no_report:
        out = Path(args.out or f"repro-analysis-{report.slug(label)}")
        figs = {} if args.no_figures else report.make_figures(result, keyed)
        paths = report.write_outputs(out, result, keyed, figs, f"repro analyze: {label}")
        if not args.no_log and uri is not None:
            exp_id = str(keyed["experiment_id"].mode().iloc[0])
            metrics = report.run_metrics(result)
            if logger is not None:
                rid = logger.log(exp_id, label, out, metrics)
            else:
                rid = logrun.log_run(logrun.open_client(uri), exp_id, label, out, metrics)
            result["analysis_run_id"] = rid
            paths["json"].write_text(report.dump_json(result))
            report.print_line(console, f"analysis run {rid} (experiment {exp_id}): artifact {logrun.REPORT}")
        report.print_line(console, f"report: {paths['report']}")
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        report.print_summary(result, console, metrics=args.metric or [], wide=args.wide)
    if args.rerun_of:
        from .rerun import rerun_lines

        metrics = [c[len("metrics."):] for c in df.columns if c.startswith("metrics.")]
        found = [e.get("primary_metric") for e in result.get("examples") or []]
        primary = args.primary or next((p for p in found if p), None) or (metrics[0] if metrics else None)
        shown = ([primary] if primary in metrics else []) + [m for m in (args.metric or metrics) if m != primary]
        for line in rerun_lines(df, args.rerun_of, shown):
            report.print_line(console, line)
    # a result the baseline found repeatable is now different, on the same fingerprint
    return 1 if base is not None and result["baseline"]["same_environment"]["differs"] else 0


def register(sub) -> None:
    a = sub.add_parser("analyze", help="how far results spread, which environments agree, which factor explains it",
                       description="Analyse the runs of an experiment, a sweep or a filter (see docs/analysis.md).")
    a.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or MLflow's default)")
    a.add_argument("--store", action="append", metavar="URI",
                   help="a tracking store to read (repeatable: their runs are analysed together, a run id in two "
                        "stores counts once); an earlier report's runs.csv counts as a store (default: the tracking URI)")
    a.add_argument("--experiment", action="append", help="experiment name or id (repeatable; default: all)")
    a.add_argument("--sweep", help="only runs tagged repro.sweep=SWEEP")
    a.add_argument("--rerun-of", metavar="RUN_ID",
                   help="the one config of RUN_ID: the original and its `repro rerun` runs (tag repro.rerun_of)")
    a.add_argument("--filter", help="an MLflow search filter string, e.g. \"params.threads = '2'\"")
    a.add_argument("--by", default="tags.repro.fp.env",
                   help="tag or param whose value names the environment (default: repro.fp.env), e.g. repro.site, "
                        "repro.hw.gpu.name, repro.target, params.threads")
    a.add_argument("--metric", action="append",
                   help="metric to analyse and show (repeatable; default: every metric analysed, the primary shown)")
    a.add_argument("--wide", action="store_true", help="show every statistic in the terminal, not only the verdict")
    a.add_argument("--primary", help="metric for heat maps, tests and factor shares (default: tag repro.primary_metric)")
    a.add_argument("--factor", action="append", help="extra tag or param to rank as a factor (repeatable)")
    a.add_argument("--all-statuses", action="store_true", help="analyse runs of every status, not only FINISHED")
    a.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    a.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    a.add_argument("--max-configs", type=int, default=10,
                   help="per example, configs with per-config environment tests, largest range first (default 10)")
    a.add_argument("--max-artifact-runs", type=int, default=200,
                   help="runs whose artifacts (predictions, weights, per-epoch digests) are read (default 200)")
    a.add_argument("--no-artifacts", action="store_true", help="read no run artifacts")
    a.add_argument("--baseline", metavar="DIR",
                   help="an earlier `repro analyze` output folder: check that the results it found repeatable are "
                        "the same now (exit status 1 if one differs on the same environment)")
    a.add_argument("--out", help="output folder (default: ./repro-analysis-<sweep>)")
    a.add_argument("--no-report", action="store_true", help="no files, no MLflow run: statistics only")
    a.add_argument("--no-figures", action="store_true", help="write the report without figures (no SVG; for scripts)")
    a.add_argument("--no-log", action="store_true", help="write the files but log no analysis run to MLflow")
    a.add_argument("--json", action="store_true", help="print every statistic as JSON on stdout (schema: docs/analysis.md)")
    a.set_defaults(func=_cmd_analyze)
