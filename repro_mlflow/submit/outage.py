"""Submit-side watchers (`repro-sweep`'s watch, `repro status --watch`, `ReproSubmittedRun.wait`)
through a tracking server that goes away and comes back.

`ServerWatch.call(fn)` runs one tick of a watcher. Before it, an http(s) server's `/health` is
asked (within 2 s) so that a server that is away is seen at once, not after the MLflow client's
own retries (minutes); a tick that fails while the server does not answer is an outage too. Either
way the watcher is told (False), says once that the server is away and once that it is back, and
goes on. A tick that fails while the server answers is a real error and raises.
"""

from __future__ import annotations

import sys
import time
from typing import TypeVar
from collections.abc import Callable

from ..reach import redact
from ..runtime.offline import reachable

R = TypeVar("R")


def tracking_uri(client) -> str | None:
    """The tracking URI an MlflowClient talks to."""
    inner = getattr(client, "_tracking_client", None)
    return getattr(inner, "tracking_uri", None) or getattr(client, "tracking_uri", None)


class ServerWatch:
    def __init__(self, uri: str | None, say: Callable[[str], None] | None = None):
        self.uri = uri
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.away_since: float | None = None
        self.http = bool(uri) and uri.startswith(("http:", "https:"))

    def _away(self, why: str) -> None:
        if self.away_since is None:
            self.away_since = time.monotonic()
            self.say(f"tracking server {redact(self.uri or '')} away ({why}); still watching, the runs go on")

    def call(self, fn: Callable[[], R]) -> tuple[bool, R | None]:
        """(True, fn()) when the server answered; (False, None) while it is away."""
        if self.http and not reachable(self.uri, timeout=2):
            self._away("no answer to /health")
            return False, None
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - an outage unless the server answers now
            if reachable(self.uri, timeout=2):
                raise
            self._away(str(e).splitlines()[0][:120] if str(e) else type(e).__name__)
            return False, None
        if self.away_since is not None:
            self.say(f"tracking server {redact(self.uri or '')} back after {time.monotonic() - self.away_since:.0f} s")
            self.away_since = None
        return True, result


__all__ = ["ServerWatch", "tracking_uri"]
