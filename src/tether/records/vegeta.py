"""vegeta's target formats.

The ``http`` format: a ``METHOD URL`` line, then header lines (``Name: value``), then an
optional ``@path`` line naming a file that holds the body; targets are separated by blank
lines, and ``#`` starts a comment line. A relative body path is taken from the directory of
the targets file. The ``json`` format: one object per line with ``method``, ``url``,
``header`` (name to a list of values) and ``body`` (base64).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from tether.errors import RecordError
from tether.http.urls import basic_auth
from tether.model import Record
from tether.records import jsonl

__all__ = ["read_http", "read_json"]

_TARGET = re.compile(r"([A-Z]+) (\S+)$")


def read_http(stream: Iterable[str], source: str) -> Iterator[Record | RecordError]:
    """Records from the ``http`` format, one target at a time."""
    block: list[tuple[int, str]] = []
    for number, raw in enumerate(stream, 1):
        line = raw.rstrip("\r\n")
        if line.startswith("#"):
            continue
        if line.strip() and not _TARGET.match(line):
            block.append((number, line))
            continue
        if block:
            yield _target(block, source)
        block = [(number, line)] if line.strip() else []
    if block:
        yield _target(block, source)


def _target(block: list[tuple[int, str]], source: str) -> Record | RecordError:
    bad = jsonl.undecodable(block, source)
    if bad is not None:
        return bad
    first, line = block[0]
    found = _TARGET.match(line)
    if found is None:
        return RecordError(source, first, f"expected 'METHOD URL', got {line[:60]!r}")
    url, auth = basic_auth(found.group(2))
    obj: dict[str, Any] = {"method": found.group(1), "url": url}
    headers: list[tuple[str, str]] = [auth] if auth else []
    for number, text in block[1:]:
        if text.startswith("@"):
            try:
                obj["body_b64"] = _body_file(text[1:].strip(), source)
            except OSError as exc:
                return RecordError(source, number, f"cannot read body {text[1:]!r}: {exc.strerror}")
            continue
        name, sep, value = text.partition(":")
        if not sep:
            return RecordError(
                source, number, f"expected 'Name: value' or '@file', got {text[:60]!r}"
            )
        headers.append((name.strip(), value.strip()))
    if headers:
        obj["headers"] = jsonl.join_headers(headers)
    try:
        return jsonl.from_object(obj, first, source)
    except RecordError as exc:
        return exc


def _body_file(path: str, source: str) -> str:
    if not os.path.isabs(path) and source not in ("-", "<stdin>"):
        path = os.path.join(os.path.dirname(source), path)
    with open(path, "rb") as body:
        return base64.b64encode(body.read()).decode("ascii")


def read_json(stream: Iterable[str], source: str) -> Iterator[Record | RecordError]:
    """Records from the ``json`` format, one line at a time."""
    for number, raw in enumerate(stream, 1):
        if raw.strip():
            bad = jsonl.undecodable(((number, raw),), source)
            yield bad or jsonl.item(partial(_json_object, raw), number, source)


def _json_object(text: str) -> dict[str, Any]:
    try:
        target = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(target, dict):
        raise ValueError("a vegeta JSON target must be an object")
    obj: dict[str, Any] = {"method": target.get("method", "GET"), "url": target.get("url")}
    header = target.get("header") or {}
    if not isinstance(header, dict):
        raise ValueError('"header" must be an object of name to a list of values')
    pairs = [
        (n, str(v)) for n, vs in header.items() for v in (vs if isinstance(vs, list) else [vs])
    ]
    if pairs:
        obj["headers"] = jsonl.join_headers(pairs)
    body = target.get("body")
    if body:
        try:
            base64.b64decode(str(body), validate=True)
        except binascii.Error:
            raise ValueError('"body" must be base64') from None
        obj["body_b64"] = body
    return obj
