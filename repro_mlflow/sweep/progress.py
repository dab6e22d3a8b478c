"""Live progress of a submitted sweep (rich): counts per target, failures as they happen, statuses reconciled.

Each tick reads the watched runs from MLflow, calls `sync_runs` on the unfinished ones (one
scheduler poll per scheduler, each rebuilt from its batch record) so a job that died ends its run, and prints a line for every run that
newly ended FAILED or KILLED (run id, target, status reason). Ctrl-C stops watching, never the runs.
A tracking server that goes away is said and waited out (`submit/outage.py`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from collections.abc import Sequence

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .. import tags as T
from ..schedulers.protocol import TERMINAL

STATES = ("SCHEDULED", "RUNNING", "FINISHED", "FAILED", "KILLED")


@dataclass
class Outcome:
    counts: Counter = field(default_factory=Counter)  # status -> runs
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)  # (run id, target, status, reason)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.counts.get("FINISHED", 0) == sum(self.counts.values())


def fetch_runs(client: MlflowClient, experiment_id: str, sweep: str, run_ids: set[str]) -> list[Run]:
    """The watched runs, in as few searches as the page size allows."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], f"tags.`{T.SWEEP}` = {T.filter_literal(sweep)}", max_results=5000, page_token=token)
        runs.extend(r for r in page if r.info.run_id in run_ids)
        token = page.token
        if not token:
            break
    if len(runs) < len(run_ids):  # adopted runs of another sweep name
        have = {r.info.run_id for r in runs}
        runs.extend(client.get_run(rid) for rid in run_ids - have)
    return runs


def render(sweep: str, runs: Sequence[Run], done_before: int, started: float) -> Group:
    """Table of runs per target and state, and a bar of ended / total."""
    counts = Counter((r.data.tags.get(T.TARGET, "?"), r.info.status) for r in runs)
    table = Table(title=f"sweep {sweep}", title_justify="left")
    table.add_column("target")
    for s in STATES:
        table.add_column(s, justify="right")
    for target in sorted({t for t, _ in counts}):
        table.add_row(target, *[str(counts.get((target, s), "")) for s in STATES])
    ended = sum(1 for r in runs if r.info.status in TERMINAL)
    total = len(runs)
    line = Table.grid(padding=(0, 1))
    line.add_row(ProgressBar(total=max(total, 1), completed=ended, width=40),
                 Text(f"{ended}/{total} ended" + (f", {done_before} already FINISHED earlier (skipped)" if done_before else "")
                      + f"  {time.time() - started:.0f}s"))
    return Group(table, line)


def watch(client: MlflowClient, experiment_id: str, sweep: str, run_ids: Sequence[str], poll_interval: float = 2.0,
          done_before: int = 0, console: Console | None = None) -> Outcome:
    """Show progress until every watched run is terminal; report each failure when it happens."""
    from ..submit.outage import ServerWatch, tracking_uri
    from ..submit.rebuild import Rebuilder
    from ..submit.sync import sync_runs

    rebuilder = Rebuilder()  # each batch's scheduler from its batch record, each record read once
    said: set[str] = set()

    console = console or Console(stderr=True)
    ids = set(run_ids)
    reported: set[str] = set()
    started = time.time()
    out = Outcome()
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            server = ServerWatch(tracking_uri(client), say=lambda msg: live.console.print(f"[yellow]{msg}[/]"))
            while True:
                ok, runs = server.call(lambda: fetch_runs(client, experiment_id, sweep, ids))
                if not ok:  # the tracking server is away: the runs go on, so does the watch
                    time.sleep(poll_interval)
                    continue
                for r in runs:
                    if r.info.status in ("FAILED", "KILLED") and r.info.run_id not in reported:
                        reported.add(r.info.run_id)
                        reason = r.data.tags.get(T.STATUS_REASON, "")
                        target = r.data.tags.get(T.TARGET, "?")
                        out.failures.append((r.info.run_id, target, r.info.status, reason))
                        live.console.print(f"{r.info.status} run {r.info.run_id} on {target}: "
                                           f"{reason or 'no reason recorded'}", style="red", markup=False,
                                           highlight=False, soft_wrap=True)
                live.update(render(sweep, runs, done_before, started))
                pending = [r for r in runs if r.info.status not in TERMINAL]
                if not pending:
                    out.counts = Counter(r.info.status for r in runs)
                    break
                ok, report = server.call(lambda pending=pending: sync_runs(client, pending, rebuilder=rebuilder))
                for line in (report.notes + list(report.errors.values())) if ok and report else []:
                    if line not in said:  # a record refused, a poll that failed: said once
                        said.add(line)
                        live.console.print(line, style="yellow", markup=False, highlight=False, soft_wrap=True)
                time.sleep(poll_interval)
        console.line()
        return out
    except KeyboardInterrupt:
        out.interrupted = True
        return out
