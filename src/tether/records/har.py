"""HAR 1.2 (HTTP Archive), as Chrome, Firefox and Playwright export it.

Each ``log.entries[i].request`` becomes a record: method, URL, headers and ``postData`` (its
``text``, or its ``params`` form-encoded). Hop-by-hop headers and HTTP/2 pseudo-headers
(``:authority``, ...) are dropped, as are headers the engine sets itself (Host,
Content-Length). With ``expect``, the recorded response's status and ``Location`` become the
record's expectations. Entries are read one at a time (ijson), so a large archive streams; a
bad entry is reported by its number (``file:3`` is the third entry).

A HAR is one JSON document, so a byte that is not UTF-8 ends it: every entry before the byte
is read, then one error names the entry it is in and the byte's line, column and offset.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote_plus, urlsplit

from tether.errors import RecordError
from tether.model import Record
from tether.records import jsonl

__all__ = ["DROPPED_HEADERS", "read"]

DROPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
    }
)
"""Request headers not replayed: hop-by-hop ones, and those the engine writes itself."""


def read(
    stream: IO[bytes],
    source: str,
    *,
    expect: bool = False,
    only_origin: str | None = None,
    flow: bool = False,
) -> Iterator[Record | RecordError]:
    """Records from a HAR document's entries, one at a time; with ``flow``, the steps of
    one flow (named ``har``), without the recorded Cookie headers (the replay's own cookie
    jar sends what its responses set)."""
    import ijson  # here, not at the top: it costs every start 30 ms, and most read no HAR

    number = 0
    try:
        for entry in ijson.items(_Utf8(stream), "log.entries.item", use_float=True):
            number += 1
            try:
                obj = entry_object(entry, expect, flow)
            except ValueError as exc:
                yield RecordError(source, number, str(exc))
                continue
            if only_origin and _origin(obj["url"]) != only_origin.rstrip("/"):
                continue
            try:
                yield jsonl.from_object(obj, number, source)
            except RecordError as exc:
                yield exc
    except _NotUtf8 as exc:
        raise RecordError(source, number + 1, str(exc)) from None
    except ijson.JSONError as exc:
        raise RecordError(source, number + 1, f"not a valid HAR document: {exc}") from None
    except UnicodeDecodeError:
        # The bytes were UTF-8 (see _Utf8), so ijson's own decoding failed on an escape.
        problem = r"not a valid HAR document: a string holds a lone surrogate (\ud800-\udfff)"
        raise RecordError(source, number + 1, problem) from None
    if number == 0:
        raise RecordError(source, 0, "no HAR entries (log.entries is missing or empty)")


class _NotUtf8(Exception):
    """A byte of the document is not UTF-8: the message says which and where."""


class _Utf8:
    """The document's bytes as ijson reads them, checked as UTF-8 on the way (JSON is UTF-8,
    and ijson's own complaint names no line or offset). The bytes before a bad one are
    handed over first, so every entry before it is still read; the next read raises
    :class:`_NotUtf8`."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._passed = 0  # bytes handed over
        self._line = 1  # the line of the next byte
        self._line_start = 0  # the offset of that line's first byte
        self._bad: str | None = None

    def read(self, size: int = -1) -> bytes:
        if self._bad is not None:
            raise _NotUtf8(self._bad)
        chunk = self._stream.read(size)
        if size == 0:  # ijson's look at whether the stream gives bytes or text
            return chunk
        held = len(self._decoder.getstate()[0])  # a character's first bytes, in the last chunk
        try:
            self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            return self._stop(exc, exc.start - held, chunk)
        self._count(chunk)
        return chunk

    def _stop(self, exc: UnicodeDecodeError, at: int, chunk: bytes) -> bytes:
        """The bytes of ``chunk`` before the bad one, at ``at`` in it (below 0: its sequence
        began in the last chunk), with what the next read says of it."""
        good = chunk[: max(at, 0)]
        self._count(good)
        offset = self._passed + min(at, 0)
        where = f"line {self._line}, column {offset - self._line_start + 1}, offset {offset}"
        self._bad = jsonl.not_utf8(exc, where) + "; nothing after it can be read"
        if not good:  # an empty read would mean the end of the document
            raise _NotUtf8(self._bad)
        return good

    def _count(self, chunk: bytes) -> None:
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            self._line += chunk.count(b"\n")
            self._line_start = self._passed + newline + 1
        self._passed += len(chunk)


def entry_object(entry: Any, expect: bool, flow: bool = False) -> dict[str, Any]:
    """One entry as a native record object (a step of the flow ``har``, with ``flow``);
    ValueError saying what is missing."""
    request = _field(entry, "request", dict)
    obj: dict[str, Any] = {
        "method": _field(request, "method", str),
        "url": _field(request, "url", str),
    }
    headers = _headers(request.get("headers", []))
    if flow:
        # A session's recorded cookie would stand in for the one the replay is given.
        headers = [(name, value) for name, value in headers if name.lower() != "cookie"]
        obj["flow"] = "har"
    body = _body(request.get("postData"))
    if body is not None:
        text, mime = body
        obj["body"] = text
        if mime and not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", mime))
    if headers:
        obj["headers"] = jsonl.join_headers(headers)
    if expect and isinstance(entry.get("response"), dict):
        obj["expect"] = _expectations(entry["response"])
    started = entry.get("startedDateTime")
    if isinstance(started, str):
        obj["at"] = _epoch(started)
    return obj


def _epoch(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f'HAR "startedDateTime" {text[:40]!r} is not an ISO 8601 time') from None


def _field(obj: Any, name: str, kind: type) -> Any:
    if not isinstance(obj, dict) or not isinstance(obj.get(name), kind):
        raise ValueError(f'HAR entry has no "{name}" ({kind.__name__})')
    return obj[name]


def _headers(raw: Any) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        raise ValueError('HAR "request.headers" must be a list')
    kept = []
    for item in raw:
        name, value = _field(item, "name", str), _field(item, "value", str)
        if name.startswith(":") or name.lower() in DROPPED_HEADERS:
            continue
        kept.append((name, value))
    return kept


def _body(post: Any) -> tuple[str, str] | None:
    if not isinstance(post, dict):
        return None
    mime: str = post["mimeType"] if isinstance(post.get("mimeType"), str) else ""
    if isinstance(post.get("text"), str):
        return post["text"], mime
    params = post.get("params")
    if isinstance(params, list):
        pairs = [(_field(p, "name", str), str(p.get("value", ""))) for p in params]
        text = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs)
        return text, mime or "application/x-www-form-urlencoded"
    return None


def _expectations(response: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    status = response.get("status")
    if isinstance(status, int) and 100 <= status <= 599:
        found["status"] = status  # 0 is what browsers record for a blocked or failed request
    for item in response.get("headers", []) if isinstance(response.get("headers"), list) else []:
        if isinstance(item, dict) and str(item.get("name", "")).lower() == "location":
            found["headers"] = {"Location": str(item.get("value", ""))}
    return found


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
