"""When the mirror's next step goes: a campaign's mirrors must not stampede one tracking server.

Every run's mirror (runtime/mirror.py) steps about every `interval` s. Hundreds of them started
together (a Slurm array, an HTCondor cluster) would step in the same instant and, after an outage or
under a 429/503, all retry in the same instant. So:

- each wait is drawn from interval × [0.75, 1.25] (mirrors started together drift apart);
- after a failed step (any failure: connection refused, a timeout, a 429/503 answer) the wait grows
  exponentially with full jitter, uniform in [interval, min(cap, interval × 2^failures)], and is
  back to `interval` after the first step that succeeds;
- a slow answer is waited out: after a step that took `took` s the next waits at least `took`, so
  one mirror keeps a loaded server busy at most about half of the time.

The mirror's MLflow client itself does not retry (`MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`): MLflow's
own retry (urllib3, 429/500/502/503/504, Retry-After honoured) would wait inside a request with the
bundle locked and up to minutes, past the mirror's bounded grace. Stdlib only.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Pace:
    """The waits between a mirror's steps (see the module's docstring)."""

    def __init__(self, interval: float, cap: float = 15.0, rng: Callable[[], float] = random.random):
        self.interval, self.cap, self.rng = interval, max(cap, interval), rng
        self.failures = 0  # failed steps in a row

    def next_wait(self, ok: bool, took: float = 0.0) -> float:
        """Seconds to wait before the next step, after one that succeeded (`ok`) or failed and took `took` s."""
        if ok:
            self.failures = 0
            base = max(self.interval, took)
            return min(self.cap, base * (0.75 + 0.5 * self.rng()))
        self.failures += 1
        top = min(self.cap, self.interval * 2.0 ** self.failures)
        return max(min(self.cap, took), self.interval + (top - self.interval) * self.rng())


__all__ = ["Pace"]
