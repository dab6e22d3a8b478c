"""`repro status`, `repro sync`, `repro logs`: where runs stand, reconciled with their schedulers."""

from __future__ import annotations

import argparse
import sys
import time

from .. import tags as T


def _client(args: argparse.Namespace):
    import mlflow
    from mlflow.tracking import MlflowClient

    from ..reach import check_tracking_server

    check_tracking_server(args.tracking_uri or mlflow.get_tracking_uri())
    return MlflowClient(args.tracking_uri) if args.tracking_uri else MlflowClient()


def _experiment_ids(client, args: argparse.Namespace) -> list[str]:
    from ..errors import ReproError

    if args.experiment:
        exp = client.get_experiment_by_name(args.experiment)
        if exp is None:
            raise ReproError(f"no experiment named '{args.experiment}'")
        return [exp.experiment_id]
    return [e.experiment_id for e in client.search_experiments()]


def _sweep_filter(args: argparse.Namespace) -> str:
    from .. import tags as T
    from ..errors import ReproError

    if not getattr(args, "sweep", None):
        return ""
    try:
        return f"tags.`{T.SWEEP}` = {T.filter_literal(args.sweep)}"
    except ValueError as e:
        raise ReproError(f"no such sweep: {e}") from None


def _fast_reads(args: argparse.Namespace):
    """(engine, URI) of the read fast path (`mlflow_sql`: a SQL store of a known schema revision, read with plain
    SQL: no MlflowClient, no whole runs built), or (None, URI) where `MlflowClient` reads.
    REPRO_PUBLIC_READS=1 forces the client."""
    import os

    from ..mlflow_sql import experiment_exists, read_engine, resolved_tracking_uri
    from ..errors import ReproError

    uri = resolved_tracking_uri(args.tracking_uri)
    if not uri or os.environ.get("REPRO_PUBLIC_READS") == "1":
        return None, uri
    engine = read_engine(uri)
    if engine is not None and args.experiment and not experiment_exists(engine, args.experiment):
        raise ReproError(f"no experiment named '{args.experiment}'")
    return engine, uri


class _LazyClient:
    """An `MlflowClient` made on first use: a sync that changes no run never opens MLflow's store (its import and
    set-up cost seconds)."""

    def __init__(self, uri: str):
        self._uri = uri
        self._client = None

    def __getattr__(self, name: str):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(self._uri)
        return getattr(self._client, name)


def _live_runs(args: argparse.Namespace, flt: str):
    """(client, the unfinished repro runs): read through the fast path where it applies."""
    engine, uri = _fast_reads(args)
    if engine is not None:
        from ..mlflow_sql import live_runs

        return _LazyClient(uri), live_runs(engine, args.experiment, getattr(args, "sweep", None))
    from ..submit.sync import unfinished_runs

    client = _client(args)
    return client, unfinished_runs(client, _experiment_ids(client, args), flt)


def _cmd_sync(args: argparse.Namespace) -> int:
    from ..reach import redact_text
    from ..submit.sync import sync_runs

    flt = _sweep_filter(args)  # a name no filter can select: said before the store is opened
    client, runs = _live_runs(args, flt)
    report = sync_runs(client, runs)
    print(f"checked {report.checked} unfinished run(s); ended {len(report.ended)}; replayed {len(report.replayed)}")
    for rid, status in report.ended.items():
        print(f"  {rid} -> {status}")
    for note in report.notes:
        print(f"repro sync: {note}", file=sys.stderr)
    for backend, why in report.errors.items():
        if why.startswith("could not replay") or why.startswith("batch record") or "batch-record" in why:
            what = f"run {backend}"
        else:
            what = f"could not poll {backend}:"
        print(redact_text(f"repro sync: {what} {why} (left as it is; sync again)"), file=sys.stderr)
    return 1 if report.errors else 0


class _StatusReader:
    """What `repro status` shows: (target, status) counts, the FAILED/KILLED runs' reasons, the live runs.

    On the fast path two GROUP BY/filtered queries and one query of the live runs' `repro.*` tags; else
    every repro run through `MlflowClient.search_runs`, paged."""

    def __init__(self, args: argparse.Namespace, flt: str):
        self.args, self.flt = args, flt
        self.engine, self.uri = _fast_reads(args)
        self.client = _LazyClient(self.uri) if self.engine is not None else _client(args)
        self._exp_ids: list[str] = []  # looked up on the first read the tracking server answers

    def read(self):
        if self.engine is not None:
            from ..mlflow_sql import live_runs, status_counts

            sweep = getattr(self.args, "sweep", None)
            counts, failed = status_counts(self.engine, self.args.experiment, sweep)
            return counts, failed, live_runs(self.engine, self.args.experiment, sweep)
        from collections import Counter

        from ..schedulers.protocol import TERMINAL

        if not self._exp_ids:
            self._exp_ids.extend(_experiment_ids(self.client, self.args))
        runs, token = [], None
        base = "tags.`repro.backend` != ''" + (f" and {self.flt}" if self.flt else "")
        while True:
            page = self.client.search_runs(self._exp_ids, base, max_results=5000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                break
        counts = Counter((r.data.tags.get(T.TARGET, "?"), r.info.status) for r in runs)
        failed = [(r.info.run_id, r.info.status, r.data.tags.get(T.STATUS_REASON)) for r in runs
                  if r.info.status in ("FAILED", "KILLED")]
        return dict(counts), failed, [r for r in runs if r.info.status not in TERMINAL]


def _status_table(counts: dict[tuple[str, str], int]):
    from rich.table import Table

    states = ["SCHEDULED", "RUNNING", "FINISHED", "FAILED", "KILLED"]
    table = Table(title=f"{sum(counts.values())} repro run(s)")
    table.add_column("target")
    for s in states:
        table.add_column(s, justify="right")
    for target in sorted({t for t, _ in counts}):
        table.add_row(target, *[str(counts.get((target, s), 0) or "") for s in states])
    return table


def failure_lines(failed: list[tuple[str, str, str | None]]) -> list[str]:
    """Failed and killed runs (run id, status, reason) grouped by reason: one line per reason with its count
    and one run id to look at."""
    from ..runtime.reason import group

    lines = []
    for status in ("FAILED", "KILLED"):
        pairs = [(rid, reason) for rid, st, reason in failed if st == status]
        for n, reason, rid in group(pairs):
            lines.append(f"{n} {status}: {reason} (e.g. run {rid})")
    return lines


def _machine_tables(runs) -> list:
    """Machines behind unfinished runs, for schedulers that describe them (`describe(job_ids)` rows: EC2 instances, age)."""
    from collections import defaultdict

    from rich.table import Table

    from ..submit.rebuild import Rebuilder

    rebuilder = Rebuilder()  # each batch's scheduler from its record, never the defaults
    jobs = defaultdict(list)
    for r in runs:
        if r.info.status not in ("FINISHED", "FAILED", "KILLED") and r.data.tags.get(T.JOB_ID):
            try:
                jobs[rebuilder.key(r)].append((r, r.data.tags[T.JOB_ID]))
            except ValueError:
                continue  # a record refused: `repro sync` says why
    tables = []
    for (backend, _config), items in jobs.items():
        rows = rebuilder.scheduler(items[0][0]).describe([j for _r, j in items])
        if rows:
            t = Table(title=f"{backend}: {len(rows)} machine(s) up")
            for col in rows[0]:
                t.add_column(col)
            for row in rows:
                t.add_row(*map(str, row.values()))
            tables.append(t)
    return tables


def _cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console, Group

    from ..submit.sync import sync_runs
    from ..errors import ReproError

    flt = _sweep_filter(args)  # a name no filter can select: said before the store is opened
    reader = _StatusReader(args, flt)
    console = Console(soft_wrap=True)  # a line is never wrapped: scripts read them

    def render():
        from rich.text import Text

        counts, failed, live = reader.read()
        if args.sweep and not counts:
            raise ReproError(f"no repro runs of sweep '{args.sweep}'")
        # a reason is read whole: never wrapped, never cut to the terminal's width
        texts = [Text(x, style="red", no_wrap=True, overflow="ignore") for x in failure_lines(failed)]
        return Group(_status_table(counts), *texts, *_machine_tables(live)), live

    if not args.watch:
        view, _ = render()
        console.print(view, crop=False)
        return 0
    from rich.live import Live

    from ..submit.outage import ServerWatch, tracking_uri

    from ..submit.rebuild import Rebuilder

    client = reader.client
    rebuilder = Rebuilder()  # the schedulers from the batch records, each record read once
    said: set[str] = set()
    with Live(console=console, refresh_per_second=2) as live:
        server = ServerWatch(tracking_uri(client), say=lambda msg: live.console.print(f"[yellow]{msg}[/]"))
        while True:
            ok, shown = server.call(render)
            if ok:  # else the tracking server is away: said once, and watched again after the interval
                view, pending = shown
                live.update(view)
                if not pending:
                    return 0
                ok, report = server.call(lambda pending=pending: sync_runs(client, pending, rebuilder=rebuilder))
                for line in (report.notes + list(report.errors.values())) if ok and report else []:
                    if line not in said:
                        said.add(line)
                        live.console.print(line, style="yellow", markup=False, highlight=False, soft_wrap=True)
            time.sleep(args.interval)


def _log_file(run):
    """The run's output file, from its batch record only: the record must list the run, and the file must lie
    under the batch directory the record names (a tag such as `repro.job_id` never chooses a path)."""
    from pathlib import Path

    from ..errors import ReproError
    from ..runtime import record as R
    from ..submit.rebuild import Rebuilder

    rebuilder = Rebuilder()
    try:
        rec = rebuilder.record(run)
    except R.RecordError as e:
        raise ReproError(str(e)) from None
    entry = rec.run(run.info.run_id) if rec is not None else None
    if entry is None or not entry.job_id:
        raise ReproError(f"run {run.info.run_id} is in no batch record that names its job: repro logs reads only "
                         "the output a batch record names; open the run's repro/output.log artifact")
    workdir = Path(rec.layout.get("workdir") or Path(run.data.tags[T.RECORD]).parent)
    path = rebuilder.scheduler(run).log_path(entry.job_id, workdir)
    if path is None:
        raise ReproError("repro logs reads the output of local and Slurm runs; for other backends open the run's repro/output.log artifact")
    root = Path(run.data.tags[T.RECORD]).resolve().parent  # the record lies in its batch directory
    inside = root in {workdir.resolve(), Path(rec.layout.get("job_dirs") or workdir).resolve()}
    if not inside or not path.resolve().is_relative_to(root):
        raise ReproError(f"the output of run {run.info.run_id} would be {path}, outside the batch directory of its "
                         "record: not read")
    return path


def _cmd_logs(args: argparse.Namespace) -> int:
    from ..errors import ReproError

    client = _client(args)
    run = client.get_run(args.run_id)
    path = _log_file(run)
    if not path.exists():
        raise ReproError(f"no output yet at {path} (the job may not have started)")
    with open(path, "rb") as f:
        while True:
            chunk = f.read()
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            elif not args.follow or client.get_run(args.run_id).info.status in ("FINISHED", "FAILED", "KILLED"):
                return 0
            else:
                time.sleep(0.5)


def tracked(sp):
    """Options shared by the commands that read the tracking store."""
    sp.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    sp.add_argument("--experiment", help="experiment name (default: all experiments)")
    return sp


def register(sub) -> None:
    s = tracked(sub.add_parser("status", help="repro runs by state and target"))
    s.add_argument("--sweep", help="only this sweep")
    s.add_argument("--watch", action="store_true", help="live display, reconciling with the schedulers until every run ends")
    s.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --watch")
    s.set_defaults(func=_cmd_status)

    y = tracked(sub.add_parser("sync", help="reconcile unfinished runs with their schedulers and replay offline results"))
    y.add_argument("--sweep", help="only this sweep")
    y.set_defaults(func=_cmd_sync)

    lg = tracked(sub.add_parser("logs", help="print (or follow) a run's output (local and Slurm runs)"))
    lg.add_argument("run_id")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    lg.set_defaults(func=_cmd_logs)
