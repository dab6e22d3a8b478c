"""`hydra/sweeper=repro`: Hydra's basic sweeper without its per-job composition check.

The basic sweeper composes every job once just to validate it, then the launcher composes it again;
at 1,000 jobs that is minutes. The repro launcher composes (and so validates) every job itself,
in this process, before anything is created, so the early check is skipped here.
"""

from typing import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class ReproSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """The repro launcher validates each job while planning, before touching MLflow."""
