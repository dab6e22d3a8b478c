"""The one error type users see: a one-line message, no traceback."""

from mlflow.projects import ExecutionException


class ReproError(ExecutionException):
    """Bad input or an unusable environment; the CLI prints it on one line and exits non-zero."""
