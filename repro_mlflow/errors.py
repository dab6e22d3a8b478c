"""The one error type users see: a one-line message, no traceback.

A plain exception, so that the commands that raise it (`repro status`, `repro sync`, the schedulers)
need not import MLflow; the `mlflow run` backends hand it to MLflow as its `ExecutionException`
(`mlflow_plugin/backends.py`), which MLflow's CLI prints on one line.
"""


class ReproError(Exception):
    """Bad input or an unusable environment; the CLI prints it on one line and exits non-zero."""
