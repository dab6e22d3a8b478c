"""Fail fast, in one line, when the tracking server cannot be reached (MLflow's own client retries for minutes)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from .errors import ReproError


def redact(uri: str) -> str:
    """The URI with any password replaced by `***` (for messages)."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", uri)


def without_credentials(uri: str) -> str:
    """The URI without any `user:password@` (urllib cannot open a URL that carries them)."""
    return re.sub(r"//[^/@]*@", "//", uri, count=1)


def check_tracking_server(uri: str | None, timeout: float = 5.0) -> None:
    """Raise a one-line ReproError unless an `http(s)://` tracking server answers within `timeout` seconds.

    Any HTTP answer counts (a proxy in front of the server, an auth wall): only "nobody there" fails.
    Other URIs (sqlite, postgresql, a folder) are left to MLflow, which fails fast on them.
    """
    if not uri or not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(without_credentials(uri).rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        pass
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise ReproError(f"cannot reach the tracking server at {redact(uri)}: {reason}") from None


# MLflow's auth variables: their values are secrets, passed to a job through its environment only.
AUTH_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
             "MLFLOW_TRACKING_AUTH", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET")
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@]*)@")


def split_credentials(uri: str) -> tuple[str, dict[str, str]]:
    """(the URI without `user:password@`, the credentials as MLflow's auth variables); the URI as it is
    when it carries none. The clean URI is what files and messages may hold; the variables go to the
    job through its environment (MLflow's client reads them for every request)."""
    m = _USERINFO.match(uri or "")
    if not m or not m.group(1).startswith(("http://", "https://")):
        return uri, {}
    from urllib.parse import unquote  # noqa: PLC0415

    user, _, password = m.group(2).partition(":")
    creds = {"MLFLOW_TRACKING_USERNAME": unquote(user)}
    if password:
        creds["MLFLOW_TRACKING_PASSWORD"] = unquote(password)
    return m.group(1) + uri[m.end():], creds


def job_secrets(uri: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """What a job needs to reach the tracking server and no file may hold: the auth variables set in
    `environ` (default: this process's), overridden by the credentials in `uri`."""
    import os  # noqa: PLC0415

    environ = dict(os.environ) if environ is None else environ
    return {**{k: environ[k] for k in AUTH_VARS if environ.get(k)}, **split_credentials(uri)[1]}


def redact_text(text: str, secrets: dict[str, str] | None = None) -> str:
    """`text` with any URI password and the values of `secrets` (default: the auth variables set
    here) replaced by `***` (for messages)."""
    import os  # noqa: PLC0415

    given = secrets if secrets is not None else {k: os.environ.get(k, "") for k in AUTH_VARS}
    values = {v for k, v in given.items() if k != "MLFLOW_TRACKING_USERNAME" and v and len(v) >= 4}
    text = redact(text)
    for v in sorted(values, key=len, reverse=True):
        text = text.replace(v, "***")
    return text
