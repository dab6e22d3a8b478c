"""Names of the `repro.*` tags, in one place (see DESIGN.md's vocabulary)."""

PREFIX = "repro."

BACKEND = "repro.backend"  # scheduler name: local, slurm, htcondor, ec2
TARGET = "repro.target"  # Hydra hardware/ entry, or the backend name for a bare `mlflow run`
JOB_ID = "repro.job_id"
ARRAY_INDEX = "repro.array_index"
ATTEMPT = "repro.attempt"
STATUS_REASON = "repro.status_reason"
SWEEP = "repro.sweep"
CONFIG_HASH = "repro.config_hash"
REPEAT = "repro.repeat"
SOFTWARE = "repro.software"
OFFLINE = "repro.offline"  # "1" when part of the run came through `repro sync` (its local store replayed after the job)
REGISTRATION = "repro.registration"  # on a model version a repro run registered: its queue entry (runtime/registration.py)
REPLAY_SKIPPED = "repro.replay.skipped"  # what a replay met and did not deliver as itself (kind: count)
LOCAL_MODEL_ID = "repro.local_model_id"  # on a LoggedModel a repro run delivered: the id the project saw (runtime/logged_models.py)
REPLAYED = "repro.replayed"  # digest of the offline bundle already replayed into this run
WORKDIR = "repro.workdir"  # where the job's files (log, offline store) live on the submit side
RERUN_OF = "repro.rerun_of"  # the run id this run re-runs (`repro rerun`), same config hash
RECORD = "repro.record"  # path of the run's batch record (runtime/record.py), written at submit
CONTAINER = "repro.container"  # the container image a run was submitted with
ANALYSIS_OF = "repro.analysis_of"  # marks analysis runs (`repro analyze`); they are never analysed themselves
DET_PREFIX = "repro.det."  # determinism settings (determinism.py)
SLURM_PREFIX = "repro.slurm."  # Slurm's own tags (fingerprint/site.py, schedulers/slurm)
EC2_BATCH, EC2_SLOT, EC2_STOP = "repro.batch", "repro.slot", "repro.stop_reason"  # EC2 instance tags

FP_HW = "repro.fp.hw"
FP_SW = "repro.fp.sw"
FP_ENV = "repro.fp.env"
HOST = "repro.host"
SITE = "repro.site"

DIGEST_WEIGHTS = "repro.digest.weights"
DIGEST_PREDICTIONS = "repro.digest.predictions"
DIGEST_DATA = "repro.digest.data"

FINGERPRINT_ARTIFACT = "repro/fingerprint.json"
LOG_ARTIFACT = "repro/output.log"

MAX_TAG_VALUE = 250  # keep tag values short; the whole record goes to the artifact


def short(value: object, limit: int = MAX_TAG_VALUE) -> str:
    """A tag value cut to `limit` characters."""
    s = str(value)
    return s if len(s) <= limit else s[: limit - 1] + "…"

# What a rerun needs to re-create the project (submit/provenance.py), written when a run is created
PROJECT_DIGEST = "repro.project.digest"  # digest of the project files a batch ships (one staging rule)
PROJECT_COMMIT = "repro.project.commit"  # git HEAD of the project, when it is a git checkout
PROJECT_DIRTY = "repro.project.dirty"  # "true" when that checkout had changes beside the commit
RERUN_SOFTWARE = "repro.rerun.software"  # how a rerun's software relates to the original's ("same", or what differs)

# characters MLflow's search filter cannot quote in a tag value (it has no escape), and line breaks
UNQUOTABLE = ("'", '"', "\\", "\n", "\r")


def filter_literal(value: str) -> str:
    """`value` quoted for an MLflow search filter (`tags.x = <literal>`); ValueError if it cannot be."""
    if any(c in value for c in UNQUOTABLE):
        raise ValueError(f"{value!r} cannot be quoted in an MLflow search filter (no quotes, backslashes or line breaks)")
    return f"'{value}'"
