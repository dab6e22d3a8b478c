"""`repro-htcondor`: a batch is one HTCondor cluster (OSPool conventions); status from its event log.

`htcondor2` is imported only when a schedd is reached or a submit description is built.
"""

from .config import HTCondorConfig
from .scheduler import HTCondorScheduler

__all__ = ["HTCondorConfig", "HTCondorScheduler"]
