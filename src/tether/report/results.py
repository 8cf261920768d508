"""The results file (``--results PATH``): one JSON line per outcome, written as the run goes,
then one closing line with what no single outcome carries (the connection ledger, the run's
length). ``tether report`` renders any report from one or more of these files, streaming
(see :mod:`tether.report.rebuild`), and writes them as CSV, one row per outcome.

An outcome line leaves out each key whose value is its default (``OUTCOME_DEFAULTS``: a GET,
not reused, no error, no mismatch, ...), and ``service_ms`` when it is ``latency_ms``::

    {"t":0.0123,"line":4,"url":"...","group":"GET /r/{id}","status":302,"latency_ms":0.41,
     "conn_id":1,"reused":true,"body_size":0}

Files written before that have every key; :func:`filled` reads both alike. The closing line:
``{"end":{"connections":{...},"duration_s":...,"target":...,...}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import IO, cast

from tether.document import OUTCOME_DEFAULTS, ClosingLine, OutcomeLine
from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome
from tether.secrets import SECRET_HEADERS, masked

__all__ = [
    "CSV_COLUMNS",
    "ResultsWriter",
    "csv_row",
    "end_line",
    "filled",
    "outcome_line",
    "spreadsheet_safe",
]


def outcome_line(
    outcome: Outcome,
    mismatches: list[Mismatch],
    secret: frozenset[str] = SECRET_HEADERS,
    t: float = 0.0,
) -> OutcomeLine:
    """One outcome as a JSON-ready dict (secret header values masked), without the keys
    whose value is their default; ``t`` is seconds from the run's start to its end."""
    rec = outcome.record
    line: dict[str, object] = {
        "t": round(t, 6),
        "line": rec.line,
        "method": rec.method,
        "url": outcome.url,
        "group": outcome.group,
        "status": outcome.status,
        "latency_ms": _ms(outcome.latency),
        "service_ms": _ms(outcome.service),
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
    if line["service_ms"] == line["latency_ms"]:
        del line["service_ms"]
    kept = {k: v for k, v in line.items() if k not in OUTCOME_DEFAULTS or v != OUTCOME_DEFAULTS[k]}
    return cast("OutcomeLine", kept)


def filled(line: OutcomeLine) -> OutcomeLine:
    """A line as read from a results file, with every key: those left out as their defaults
    (and what files from before ``t``, ``group`` and ``error_kind`` lack as they were read
    then). A ``KeyError`` names a key that has no default and is missing."""
    full = cast("OutcomeLine", {**OUTCOME_DEFAULTS, "t": 0.0, **line})
    full.setdefault("service_ms", full["latency_ms"])
    full["group"] = full.get("group") or full["method"]
    full["error_kind"] = full["error_kind"] or ("request" if full["error"] else None)
    return full


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


@lru_cache(maxsize=8192)
def _request(line: int, method: str, url: str, group: str) -> str:
    # A record's line, method, URL and group recur together on every pass over the records.
    said = f'"line":{line},'
    if method != _GET:
        said += f'"method":{json.dumps(method)},'
    return said + f'"url":{json.dumps(url)},"group":{json.dumps(group)}'


_GET = OUTCOME_DEFAULTS["method"]


def _plain_line(outcome: Outcome, t: float) -> str:
    """:func:`outcome_line` as JSON text for an outcome with no error and no mismatch (most
    of them), formatted directly: json.dumps of a dict costs several times more per line."""
    rec = outcome.record
    latency, service = _ms(outcome.latency), _ms(outcome.service)
    return (
        f'{{"t":{round(t, 6)!r},{_request(rec.line, rec.method, outcome.url, outcome.group)},'
        f'"status":{outcome.status},"latency_ms":{latency!r}'
        f"{_service(service) if service != latency else ''}"
        f',"conn_id":{outcome.conn_id}{_REUSED[outcome.reused]}{_RETRIED[outcome.retried]}'
        f"{_redirects(outcome.redirects) if outcome.redirects else ''}"
        f',"body_size":{outcome.body_size}{_TRUNCATED[outcome.body_truncated]}'
        f"{'' if outcome.protocol == HTTP_1_1 else _protocol(outcome.protocol)}}}"
    )


def _service(ms: float) -> str:
    return f',"service_ms":{ms!r}'


def _redirects(n: int) -> str:
    return f',"redirects":{n}'


# A flag is written only when it is true (false is its default).
_REUSED = {False: "", True: ',"reused":true'}
_RETRIED = {False: "", True: ',"retried":true'}
_TRUNCATED = {False: "", True: ',"body_truncated":true'}
# The protocol is written only when it is not HTTP/1.1 (its default).
HTTP_1_1 = OUTCOME_DEFAULTS["protocol"]


def _protocol(name: str) -> str:
    return f',"protocol":{json.dumps(name)}'


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


# --- as CSV ---------------------------------------------------------------------------------

_LINE_KEYS = [key for key in OutcomeLine.__annotations__ if key != "mismatches"]

CSV_COLUMNS = (*_LINE_KEYS, "mismatches", "mismatch_field", "mismatch_expected", "mismatch_got")
"""The CSV's header: the results file's keys, its mismatches as a count and the first one's
field, expected and got (each response's every mismatch stays in the results file)."""


def csv_row(line: OutcomeLine) -> list[object]:
    """A :func:`filled` line as a CSV row of :data:`CSV_COLUMNS`. Pure."""
    full = cast("dict[str, object]", line)
    first = line["mismatches"][0] if line["mismatches"] else None
    cells = [full[key] for key in _LINE_KEYS] + [len(line["mismatches"])]
    cells += [first["field"], first["expected"], first["got"]] if first else [None] * 3
    return [_cell(cell) for cell in cells]


def _cell(value: object) -> object:
    """None as an empty cell, flags as JSON writes them, text spreadsheet-safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _BOOL[value]
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


_BOOL = {False: "false", True: "true"}

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (CSV injection, as OWASP lists it)."""


def spreadsheet_safe(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows as text: one that would start a formula
    gets a ``'`` before it (a URL, header value or group comes from records and responses:
    anyone's). Numbers are tether's own, never negative, and are left as numbers."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


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
            line = _json(outcome_line(outcome, mismatches, self._secret, t))
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
            self._stream.write(_json(end_line(summary)) + "\n")
            self._stream.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = exc
        if self._on_failure is not None:
            self._on_failure(exc)


def _json(obj: OutcomeLine | ClosingLine) -> str:
    return _COMPACT(obj)


# One encoder: json.dumps with separators makes a new one for every line.
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode
