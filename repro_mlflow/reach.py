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
