"""`hydra/sweeper=repro`: Hydra's basic sweep (a cartesian product of the sweeps) on Hydra's public Sweeper API.

Unlike Hydra's basic sweeper it does not compose every job once just to check it before the
launcher composes it again (at 1,000 jobs that alone is minutes): the repro launcher composes, and
so checks, every job itself, in this process, before anything is created. It also refuses a key
given twice with different values and a sweep with no values (repro_mlflow/sweep/overrides.py).
"""

from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class ReproSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from repro_mlflow.reach import redact_text
        from repro_mlflow.sweep import overrides

        assert self.hydra_context is not None and self.config is not None and self.launcher is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        given = parser.parse_overrides(list(arguments))
        overrides.check(given)  # the command line's own keys; the config's hydra.sweeper.params may be overridden
        preset = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()])
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # as Hydra's basic sweeper, but a tracking URI's password (an override `tracking_uri=http://u:PW@…`)
        # and the values of MLflow's auth variables are written as *** (issue 28: no file holds them)
        (sweep_dir / "multirun.yaml").write_text(redact_text(OmegaConf.to_yaml(self.config)))
        returns, first = [], 0
        for batch in overrides.batches(overrides.jobs([*preset, *given]), self.max_batch_size):
            results = self.launcher.launch(batch, initial_job_idx=first)
            for r in results:
                _ = r.return_value  # raises if the job failed
            first += len(batch)
            returns.append(results)
        return returns
