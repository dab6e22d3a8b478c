"""`repro-slurm`: a batch is one `sbatch --array`; one `squeue` call polls every job."""

from .config import SlurmConfig
from .scheduler import SlurmScheduler

__all__ = ["SlurmConfig", "SlurmScheduler"]
