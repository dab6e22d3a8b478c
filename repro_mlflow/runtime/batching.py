"""What goes in one `log_batch` request of the replay (runtime/replay.py).

MLflow's documented limits for one `runs/log-batch` request (REST API, "Log Batch"): at most 1000
metrics, 100 params, 100 tags, 1000 entities in all, and 1 MB of JSON. MLflow's client splits a
`log_batch` by count but not by size, and a request over 1 MB is refused by a proxy in front of a
server (nginx's default body limit is 1 MB). The replay sends one kind per request, chunked here by
count and by JSON size, so that each `MlflowClient.log_batch` call is exactly one request (what the
replay's exactly-once bookkeeping counts on). Stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TypeVar

MAX_METRICS = 1000
MAX_PARAMS_TAGS = 100
MAX_REQUEST_BYTES = 1_000_000
_BUDGET = MAX_REQUEST_BYTES - 10_000  # the request's envelope: run_id, field names, brackets

E = TypeVar("E")


def json_size(entity: object) -> int:
    """Bytes the entity (a Metric, Param or RunTag) takes in the request's JSON, at most."""
    size = 2 + len(json.dumps(str(getattr(entity, "key", ""))))  # ensure_ascii: bytes == characters
    value = getattr(entity, "value", "")
    size += len(json.dumps(value if isinstance(value, str) else str(value)))
    return size + 120  # field names, timestamp, step, model and dataset ids of a metric


def chunks(entities: Sequence[E], limit: int) -> Iterator[list[E]]:
    """`entities` in order, in chunks of at most `limit` and at most ~1 MB of JSON each."""
    chunk: list[E] = []
    size = 0
    for e in entities:
        n = json_size(e)
        if chunk and (len(chunk) >= limit or size + n > _BUDGET):
            yield chunk
            chunk, size = [], 0
        chunk.append(e)
        size += n
    if chunk:
        yield chunk


__all__ = ["MAX_METRICS", "MAX_PARAMS_TAGS", "MAX_REQUEST_BYTES", "chunks", "json_size"]
