"""One URL where the records file goes (``tether run http://host/path -c 50 -d 10s``), its
request and its check given by flags as hey and oha take them: ``-m``, ``-H 'Name: value'``,
``--body``/``--body-file``, ``--expect-status``, ``--expect-header 'Name: value'``. It is one
record, built by the rules every format shares (:func:`tether.records.jsonl.from_object`), so
a bad method, header or URL is refused in the same words; it cycles like any records file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from tether.errors import InputError, RecordError
from tether.model import SUCCESS, Record
from tether.records import jsonl

__all__ = ["SOURCE", "UrlRequest", "is_url", "read"]

SOURCE = "the command line"
"""Where the record comes from, as errors name it (its line is 1)."""


@dataclass(frozen=True, slots=True)
class UrlRequest:
    """The flags that make the one URL's request and check. ``headers`` and
    ``expect_headers`` as typed, ``Name: value``; ``expect_status`` any one of them (by
    default a 2xx or a 3xx, as hey and k6 count failures; none for ``any``)."""

    method: str = "GET"
    headers: tuple[str, ...] = ()
    body: bytes = b""
    expect_status: tuple[int, ...] = SUCCESS  # (): any status (--expect-status any)
    expect_headers: tuple[str, ...] = ()


def is_url(text: str) -> bool:
    """Whether what was given in place of a records file is a URL."""
    return text.startswith(("http://", "https://"))


def read(url: str, request: UrlRequest) -> Record:
    """The one record; RecordError naming the command line when a flag does not fit."""
    return jsonl.from_object(as_object(url, request), 1, SOURCE)


def as_object(url: str, request: UrlRequest) -> dict[str, Any]:
    """The record as a native record object: what the shared rules check. A flag that is not
    ``Name: value`` is left as it is, for the rules to refuse by name."""
    obj: dict[str, Any] = {"method": request.method, "url": url}
    if request.headers:
        obj["headers"] = jsonl.join_headers(_fields(request.headers, "-H"))
    if request.body:
        obj["body_b64"] = base64.b64encode(request.body).decode("ascii")
    expect: dict[str, Any] = {}
    if request.expect_status:
        expect["status"] = list(request.expect_status)
    if request.expect_headers:
        expect["headers"] = dict(_fields(request.expect_headers, "--expect-header"))
    if expect:
        obj["expect"] = expect
    return obj


def _fields(given: tuple[str, ...], flag: str) -> list[tuple[str, str]]:
    fields = []
    for text in given:
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise RecordError(SOURCE, 1, f"{flag} {text!r}: give it as 'Name: value'")
        fields.append((name.strip(), value.strip()))
    return fields


def expected_statuses(given: tuple[str, ...]) -> tuple[int, ...]:
    """``--expect-status`` as given (each a status, or ``any``): the statuses expected,
    :data:`tether.model.SUCCESS` when none is given, () for ``any``; InputError else."""
    if not given:
        return SUCCESS
    if "any" in (text.strip().lower() for text in given):
        if len(given) > 1:
            raise InputError("--expect-status any takes any status: give it alone")
        return ()
    statuses = []
    for text in given:
        if not text.strip().isdigit() or not 100 <= int(text) <= 599:
            raise InputError(f"--expect-status {text!r}: give a status from 100 to 599, or any")
        statuses.append(int(text))
    return tuple(statuses)


def header_fields(given: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``-H 'Name: value'`` flags as fields; InputError for one without its colon."""
    try:
        return tuple(_fields(given, "-H"))
    except RecordError as exc:
        raise InputError(exc.problem) from None
