"""What was measured about where a run ran.

`capture()` returns the whole record (a JSON-able dict); `to_tags()` turns it into short
`repro.*` tags, and `hashes()` into the three stable hashes `repro.fp.hw|sw|env`.
Stdlib only (nvidia-ml-py is used when importable): this runs on the worker before any framework
is imported, and `python -m repro_mlflow.fingerprint` runs where mlflow is not installed.
See docs/fingerprint.md for every field, tag and hash definition.
"""

from __future__ import annotations

from .record import capture, hashes, to_tags

__all__ = ["capture", "hashes", "to_tags"]
