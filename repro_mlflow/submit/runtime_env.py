"""The `REPRO_*` variables the worker runtime reads, checked at submit.

The runtime can only warn inside a run's output.log (or clamp a value) when one of them is unreadable;
checked here, a bad value is one line before any run exists.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ReproError

# name -> (smallest value allowed, whether that value itself is allowed, meaning)
RULES: dict[str, tuple[float, bool, str]] = {
    "REPRO_MIRROR_INTERVAL": (0.0, False, "seconds between two mirror steps"),
    "REPRO_MIRROR_GRACE": (0.0, True, "seconds to deliver the rest after the command ends"),
    "REPRO_MIRROR_TIMEOUT": (0.0, False, "seconds one request to the tracking server may take"),
    "REPRO_MIRROR_BACKOFF_MAX": (0.0, False, "seconds a mirror waits at most between two steps while backing off"),
    "REPRO_HEALTH_TIMEOUT": (0.0, False, "seconds the tracking server's health check may take"),
}


def check_runtime_env(*envs: Mapping[str, object] | None) -> None:
    """Refuse (one-line ReproError) a `REPRO_*` runtime variable that is set to no usable number."""
    for env in envs:
        for name, (low, inclusive, meaning) in RULES.items():
            raw = (env or {}).get(name)
            if raw is None:
                continue
            try:
                value = float(str(raw))
            except ValueError:
                value = float("nan")
            if not (value >= low if inclusive else value > low):  # NaN fails both
                bound = f"at least {low:g}" if inclusive else f"more than {low:g}"
                raise ReproError(f"{name}={raw}: must be a number of {meaning}, {bound}")
