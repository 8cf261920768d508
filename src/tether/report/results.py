"""The optional results file: one JSON line per outcome, written as the run goes."""

from __future__ import annotations

import json
from typing import IO, Any

from tether.model import Mismatch, Outcome
from tether.secrets import SECRET_HEADERS, masked


def outcome_line(
    outcome: Outcome, mismatches: list[Mismatch], secret: frozenset[str] = SECRET_HEADERS
) -> dict[str, Any]:
    """One outcome as a JSON-ready dict (secret header values masked)."""
    rec = outcome.record
    return {
        "line": rec.line,
        "method": rec.method,
        "url": outcome.url,
        "status": outcome.status,
        "latency_ms": round(outcome.latency * 1000, 3),
        "conn_id": outcome.conn_id,
        "reused": outcome.reused,
        "retried": outcome.retried,
        "redirects": outcome.redirects,
        "body_size": outcome.body_size,
        "body_truncated": outcome.body_truncated,
        "error": outcome.error,
        "mismatches": [
            {
                "field": m.field,
                "expected": masked(m.field, m.expected, secret),
                "got": masked(m.field, m.got, secret),
            }
            for m in mismatches
        ],
    }


class ResultsWriter:
    """Writes outcomes to a text stream as they arrive (the sink of a run)."""

    def __init__(self, stream: IO[str], secret: frozenset[str] = SECRET_HEADERS) -> None:
        self._stream = stream
        self._secret = secret

    def __call__(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        line = outcome_line(outcome, mismatches, self._secret)
        self._stream.write(json.dumps(line) + "\n")
