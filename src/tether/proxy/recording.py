"""An exchange the proxy carried, made a record: the request as the client sent it (less
what the hop owns), the URL relative to the upstream, a tag per route template, and the
expectations its real response sets, by ``tether record``'s rules
(:func:`tether.capture.expectations`). Pure: an exchange in, a record's line (or why there
is none) out.

Secrets: the values of Authorization, Cookie, Proxy-Authorization (and any header named
with ``--redact-header``) are recorded only with ``--keep-secrets``; else the header is
kept with a placeholder (:func:`tether.secrets.placeholder`) that ``tether run -H`` fills.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tether.capture import Capture, expectations
from tether.metrics.groups import group_key
from tether.model import Outcome, Record
from tether.records.jsonl import to_object
from tether.secrets import SECRET_HEADERS, placeholder

__all__ = ["SOURCE", "RecordRules", "line_of", "path_of", "record_of", "wanted"]

SOURCE = "capture"
"""The source a captured record names (its line is its place in the records written)."""


@dataclass(frozen=True, slots=True)
class RecordRules:
    """Which exchanges become records, and what a record keeps of them."""

    capture: Capture = field(default_factory=Capture)
    only: tuple[str, ...] = ()  # path prefixes recorded (none: every path)
    exclude: tuple[str, ...] = ()  # path prefixes never recorded
    max_body: int = 1 << 20  # a request body past it is not recorded; a response's, by digest
    keep_secrets: bool = False
    secret: frozenset[str] = SECRET_HEADERS


def path_of(target: str) -> str:
    """The path and query a request target names (an absolute-form target's too)."""
    if target.startswith("/"):
        return target
    parts = urlsplit(target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def wanted(path: str, rules: RecordRules) -> bool:
    """Whether a request for ``path`` is recorded (``--only``, ``--exclude``)."""
    if any(path.startswith(prefix) for prefix in rules.exclude):
        return False
    return not rules.only or any(path.startswith(prefix) for prefix in rules.only)


def _kept_headers(fields: list[tuple[str, str]], rules: RecordRules) -> tuple[tuple[str, str], ...]:
    if rules.keep_secrets:
        return tuple(fields)
    return tuple(
        (name, placeholder(name) if name.lower() in rules.secret else value)
        for name, value in fields
    )


def record_of(
    number: int,
    method: str,
    path: str,
    fields: list[tuple[str, str]],
    body: bytes,
    outcome: Outcome,
    rules: RecordRules,
) -> Record | str:
    """The ``number``-th record written, from a request (``fields`` as forwarded) and its
    upstream's response; or the reason it is not recorded."""
    if len(body) > rules.max_body:
        return f"its request body is over --max-body ({rules.max_body:,} bytes)"
    expect = expectations(outcome, rules.capture)
    if expect is None:
        return outcome.error or "its response body was not read whole"
    return Record(
        method,
        path,
        _kept_headers(fields, rules),
        body,
        expect,
        line=number,
        source=SOURCE,
        tag=group_key(method, path, ""),
    )


def line_of(record: Record) -> str:
    """The record as a line of native JSONL (what ``tether run`` and ``convert`` read)."""
    return json.dumps(to_object(record), ensure_ascii=False) + "\n"
