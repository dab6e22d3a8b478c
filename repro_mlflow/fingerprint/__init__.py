"""What was measured about where a run ran.

`capture()` returns the whole record (a JSON-able dict); `to_tags()` turns it into short
`repro.*` tags, and `hashes()` into the three stable hashes `repro.fp.hw|sw|env`.
Stdlib only: this runs on the worker before any framework is imported.
"""

from __future__ import annotations

from .record import capture, hashes, to_tags

__all__ = ["capture", "hashes", "to_tags"]
