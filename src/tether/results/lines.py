"""The results file's two kinds of line, each written and read here: an outcome line (one per
outcome, :func:`outcome_line`, and :func:`plain_text` for the common one, formatted directly;
read back by :func:`filled` and :func:`outcome_of`) and the closing line (:func:`end_line`:
what no single outcome carries, the connection ledger and the run's length; the summary reads
it back, :meth:`~tether.metrics.summary.Summary.restore`).

An outcome line leaves out each key whose value is its default (``OUTCOME_DEFAULTS``: a GET,
not reused, no error, no mismatch, ...), and ``service_ms`` when it is ``latency_ms``::

    {"t":0.0123,"line":4,"url":"...","group":"GET /r/{id}","status":302,"latency_ms":0.41,
     "conn_id":1,"reused":true,"body_size":0}

Files written before that have every key; :func:`filled` reads both alike. The closing line:
``{"end":{"connections":{...},"duration_s":...,"target":...,...}}``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import cast

from tether.document import OUTCOME_DEFAULTS, ClosingLine, OutcomeLine, RunEnd
from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome, Record
from tether.secrets import SECRET_HEADERS, masked

__all__ = ["end_line", "filled", "json_text", "outcome_line", "outcome_of", "plain_text"]


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
        "worker": outcome.worker,
        "iteration": outcome.iteration,
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


def outcome_of(line: OutcomeLine, source: str) -> tuple[Outcome, list[Mismatch]]:
    """The outcome a :func:`filled` line says (its record's source is ``source``, the file),
    and its mismatches: the inverse of :func:`outcome_line`. A ``KeyError`` or ``TypeError``
    says a key is missing or is not what it should be."""
    record = Record(line["method"], line["url"], line=line["line"], source=source)
    outcome = Outcome(
        record,
        status=line["status"],
        latency=line["latency_ms"] / 1000,
        service=line["service_ms"] / 1000,
        conn_id=line["conn_id"],
        reused=line["reused"],
        retried=line["retried"],
        redirects=line["redirects"],
        body_size=line["body_size"],
        body_truncated=line["body_truncated"],
        url=line["url"],
        error=line["error"],
        error_kind=line["error_kind"],
        group=line["group"],
        protocol=line["protocol"],
        worker=line["worker"],
        iteration=line["iteration"],
    )
    return outcome, [Mismatch(m["field"], m["expected"], m["got"]) for m in line["mismatches"]]


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


def plain_text(outcome: Outcome, t: float) -> str:
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
        f"{'' if outcome.protocol == HTTP_1_1 else _protocol(outcome.protocol)}"
        f"{_user(outcome.worker, outcome.iteration) if outcome.worker >= 0 else ''}}}"
    )


def _user(worker: int, iteration: int) -> str:
    return f',"worker":{worker},"iteration":{iteration}'


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
    summary document has them (its keys that :class:`~tether.document.RunEnd` names, in its
    order). Read back by :meth:`Summary.restore <tether.metrics.summary.Summary.restore>`."""
    doc = cast("dict[str, object]", summary.to_dict())
    return {"end": cast("RunEnd", {key: doc[key] for key in RunEnd.__annotations__})}


def json_text(obj: OutcomeLine | ClosingLine) -> str:
    """A line as compact JSON text (no spaces), as the file has it."""
    return _COMPACT(obj)


# One encoder: json.dumps with separators makes a new one for every line.
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode
