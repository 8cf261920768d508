"""The results file (``--results PATH``): one JSON line per outcome, written as the run goes,
then one closing line with what no single outcome carries (the connection ledger, the run's
length). ``tether report`` renders any report from one or more of these files, streaming
(see :mod:`tether.report.rebuild`).

An outcome line::

    {"t": 0.0123, "line": 4, "method": "GET", "url": "...", "group": "GET /r/{id}",
     "status": 302, "latency_ms": 0.41, "conn_id": 1, "reused": true, ..., "mismatches": []}

The closing line: ``{"end": {"connections": {...}, "duration_s": ..., "target": ..., ...}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import IO

from tether.document import ClosingLine, OutcomeLine
from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome
from tether.secrets import SECRET_HEADERS, masked

__all__ = ["ResultsWriter", "end_line", "outcome_line"]


def outcome_line(
    outcome: Outcome,
    mismatches: list[Mismatch],
    secret: frozenset[str] = SECRET_HEADERS,
    t: float = 0.0,
) -> OutcomeLine:
    """One outcome as a JSON-ready dict (secret header values masked); ``t`` is seconds from
    the run's start to its end."""
    rec = outcome.record
    return {
        "t": round(t, 6),
        "line": rec.line,
        "method": rec.method,
        "url": outcome.url,
        "group": outcome.group,
        "status": outcome.status,
        "latency_ms": round(outcome.latency * 1000, 3),
        "service_ms": round(outcome.service * 1000, 3),
        "conn_id": outcome.conn_id,
        "reused": outcome.reused,
        "retried": outcome.retried,
        "redirects": outcome.redirects,
        "body_size": outcome.body_size,
        "body_truncated": outcome.body_truncated,
        "error": outcome.error,
        "error_kind": outcome.error_kind,
        "protocol": outcome.protocol,
        "mismatches": [
            {
                "field": m.field,
                "expected": masked(m.field, m.expected, secret),
                "got": masked(m.field, m.got, secret),
            }
            for m in mismatches
        ],
    }


@lru_cache(maxsize=8192)
def _quoted(text: str) -> str:
    # A record's method, URL and group recur on every pass over the records.
    return json.dumps(text)


def _plain_line(outcome: Outcome, t: float) -> str:
    """:func:`outcome_line` as JSON text for an outcome with no error and no mismatch (most
    of them), formatted directly: json.dumps of a dict costs several times more per line."""
    rec = outcome.record
    return (
        f'{{"t": {round(t, 6)!r}, "line": {rec.line}, "method": {_quoted(rec.method)}, '
        f'"url": {_quoted(outcome.url)}, "group": {_quoted(outcome.group)}, '
        f'"status": {outcome.status}, "latency_ms": {round(outcome.latency * 1000, 3)!r}, '
        f'"service_ms": {round(outcome.service * 1000, 3)!r}, "conn_id": {outcome.conn_id}, '
        f'"reused": {_BOOL[outcome.reused]}, "retried": {_BOOL[outcome.retried]}, '
        f'"redirects": {outcome.redirects}, "body_size": {outcome.body_size}, '
        f'"body_truncated": {_BOOL[outcome.body_truncated]}, "error": null, '
        f'"error_kind": null, "protocol": "{outcome.protocol}", "mismatches": []}}'
    )


_BOOL = {False: "false", True: "true"}


def end_line(summary: Summary) -> ClosingLine:
    """The closing line: the run's figures that are not the sum of its outcomes, as the
    summary document has them."""
    doc = summary.to_dict()
    return {
        "end": {
            "connections": doc["connections"],
            "duration_s": doc["duration_s"],
            "target": doc["target"],
            "concurrency": doc["concurrency"],
            "interrupted": doc["interrupted"],
            "signal": doc["signal"],
            "late": doc["late"],
            "rate_target": doc["rate_target"],
            "schedule_s": doc["schedule_s"],
            "input_errors": doc["input_errors"],
            "input_error_examples": doc["input_error_examples"],
            "watch": doc["watch"],
        }
    }


class ResultsWriter:
    """Writes outcomes to a text stream as they arrive (the sink of a run), then the closing
    line (:meth:`close`).

    A write that fails (a full disk) stops the writing, never the run: what the run measures
    is worth more than the file. ``failed`` keeps the error, and ``on_failure`` is told at
    once, so that the file can be named while the run goes on."""

    def __init__(
        self,
        stream: IO[str],
        secret: frozenset[str] = SECRET_HEADERS,
        on_failure: Callable[[OSError], None] | None = None,
    ) -> None:
        self._stream = stream
        self._secret = secret
        self._started = time.perf_counter()
        self._on_failure = on_failure
        self.failed: OSError | None = None

    def __call__(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        if self.failed is not None:
            return
        t = time.perf_counter() - self._started
        if mismatches or outcome.error is not None:
            line = json.dumps(outcome_line(outcome, mismatches, self._secret, t))
        else:
            line = _plain_line(outcome, t)
        try:
            self._stream.write(line + "\n")
        except OSError as exc:
            self._fail(exc)
            return

    def close(self, summary: Summary) -> None:
        """Write the closing line, and flush: a full disk is often first seen here."""
        if self.failed is not None:
            return
        try:
            self._stream.write(json.dumps(end_line(summary)) + "\n")
            self._stream.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = exc
        if self._on_failure is not None:
            self._on_failure(exc)
