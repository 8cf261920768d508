"""Pure data passed between the stages of a run. No I/O here.

A :class:`Record` says what to send and what to expect; the engine turns it into an
:class:`Outcome`; :mod:`tether.check` compares the two into :class:`Mismatch` items.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

HeaderRule = Literal["equals", "regex", "absent"]
BodyRule = Literal["equals", "contains", "sha256", "json"]


class BodyNeed(Enum):
    """How much of a response body the engine must keep for the checks.

    The engine always reads a body to the end (that is what lets a connection be reused);
    this only says what it does with the bytes on the way.
    """

    DISCARD = 0
    HASH = 1
    KEEP = 2


@dataclass(frozen=True, slots=True)
class HeaderExpect:
    """One expected response header. ``name`` is lower-case."""

    name: str
    rule: HeaderRule
    value: str = ""


@dataclass(frozen=True, slots=True)
class BodyExpect:
    """One expectation on the response body.

    ``equals`` and ``contains`` hold text, ``sha256`` a hex digest, ``json`` any JSON value
    matched as a subset (objects may have more keys than expected).
    """

    rule: BodyRule
    value: Any


@dataclass(frozen=True, slots=True)
class Expect:
    """What a record expects of its response. Empty means anything goes."""

    status: tuple[int, ...] = ()
    headers: tuple[HeaderExpect, ...] = ()
    body: tuple[BodyExpect, ...] = ()

    @property
    def body_need(self) -> BodyNeed:
        """The least the engine must keep of the body for these checks."""
        rules = {b.rule for b in self.body}
        if rules - {"sha256"}:
            return BodyNeed.KEEP
        return BodyNeed.HASH if rules else BodyNeed.DISCARD


NO_EXPECT = Expect()

KEEP_BODY = Expect(body=(BodyExpect("contains", ""),))
"""Expects nothing but has the body kept: the engine keeps a body only when a check needs
it, and an empty "contains" holds for any body (for commands that read bodies themselves)."""


_LINE = re.compile(rb"\r?\n")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_OWS = " \t"
"""What a field's name and value are trimmed of: RFC 9110's optional whitespace, and no
more (``str.strip()`` would also take a Latin-1 NBSP, which :func:`one_header` keeps)."""


def plain_head(data: bytes) -> bytes | None:
    """The head at the start of ``data`` when it is the common kind: one final response,
    CRLF line ends, no folded lines. None for anything else (parse it slowly)."""
    end = data.find(b"\r\n\r\n")
    head = data[:end] if end >= 0 else data
    interim = data[9:10] == b"1"  # "HTTP/1.1 1xx"
    if interim or b"\n" in head.replace(b"\r\n", b"") or b"\n " in head or b"\n\t" in head:
        return None
    return head


def head_fields(data: bytes) -> list[tuple[str, str]]:
    """The header fields of the response head at the start of ``data`` (which may run on into
    the body), decoded as Latin-1 and trimmed of blanks (SP, HTAB). Interim (1xx) heads are
    skipped, bare-LF line ends and obsolete line folding are understood."""
    head = plain_head(data)
    if head is None:
        return _fields_slowly(data)
    # The common case in one decode and one split: this runs for every checked response.
    fields = []
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields.append((name.strip(_OWS), value.strip(_OWS)))
    return fields


def _fields_slowly(data: bytes) -> list[tuple[str, str]]:
    pos = 0
    while True:
        blank = _BLANK_LINE.search(data, pos)
        end = blank.start() if blank else len(data)
        lines = _LINE.split(data[pos:end])
        code = lines[0].split(None, 2)[1:2]
        if blank and code and code[0].startswith(b"1"):
            pos = blank.end()
            continue
        fields: list[tuple[str, str]] = []
        for raw in lines[1:]:
            line = raw.decode("latin-1")
            if line[:1] in (" ", "\t") and fields:
                name, value = fields[-1]
                fields[-1] = (name, value + " " + line.strip(_OWS))
                continue
            name, sep, value = line.partition(":")
            if sep:
                fields.append((name.strip(_OWS), value.strip(_OWS)))
        return fields


class Unsure:
    """What :func:`one_header` says when only a full parse of the head can tell."""


UNSURE = Unsure()


def header_key(name: str) -> bytes:
    """What :func:`one_header` looks for: the name as it starts a line, lower-case."""
    return b"\n" + name.lower().encode("latin-1") + b":"


def head_lower(data: bytes, parsed: bool = False) -> bytes:
    """The final response head at the start of ``data``, lower-cased and ending with CRLF,
    when it is the plain kind that :func:`one_header` can search: CRLF line ends only, no
    line folded onto the next, no blank before a colon. Empty for anything else, and for an
    interim 1xx response first: leave those to the full parse.

    ``parsed`` says the head has passed a parser that refuses what is not plain (llhttp
    does; see :data:`tether.engine.connection.STRICT_HEADS`), so that need not be searched
    for: this runs for every response a header is checked on."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or data[9:10] == b"1":  # "HTTP/1.1 1xx"
        return b""
    lower = data[: end + 2].lower()
    if parsed:
        return lower
    bare_lf = lower.count(b"\n") != lower.count(b"\r\n")
    if bare_lf or b"\n " in lower or b"\n\t" in lower or b" :" in lower or b"\t:" in lower:
        return b""
    return lower


def one_header(head: bytes, lower: bytes, key: bytes) -> bytes | Unsure | None:
    """One header's value from a head's bytes, with no parse of the rest; ``lower`` is
    :func:`head_lower` of it (not empty) and ``key`` is :func:`header_key` of the name.
    None when the head has no such field; UNSURE when the field repeats (a full parse joins
    the values)."""
    at = lower.find(key)
    if at < 0:
        return None
    if lower.find(key, at + 1) >= 0:
        return UNSURE
    start = at + len(key)
    return head[start : lower.find(b"\r\n", start)].strip(b" \t")


class Headers(Mapping[str, str]):
    """Response headers, decoded only when first looked at: most responses are checked by
    their status and one header, or not at all. Built from the raw bytes of the response
    head (which may run on into the body).

    Names are lower-case; repeated headers are joined with ``", "``.
    """

    __slots__ = ("_decoded", "_lower", "head")

    def __init__(self, head: bytes = b"") -> None:
        self.head = head
        self._decoded: dict[str, str] | None = None
        self._lower: bytes | None = None

    def _lookup(self, name: str) -> str | Headers | None:
        """One header straight from the head's bytes, without parsing the rest: a checked
        response usually needs one. ``self`` when only a full parse can tell."""
        if self._decoded is not None:
            return self
        if self._lower is None:
            self._lower = head_lower(self.head)
        if not self._lower:
            return self
        found = one_header(self.head, self._lower, header_key(name))
        if isinstance(found, Unsure):
            return self
        return None if found is None else found.decode("latin-1")

    def _map(self) -> dict[str, str]:
        if self._decoded is None:
            decoded: dict[str, str] = {}
            for name, value in head_fields(self.head):
                key = name.lower()
                decoded[key] = f"{decoded[key]}, {value}" if key in decoded else value
            self._decoded = decoded
        return self._decoded

    def __getitem__(self, name: str) -> str:
        found = self._lookup(name)
        if found is self:
            return self._map()[name]
        if found is None:
            raise KeyError(name)
        assert isinstance(found, str)
        return found

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """A header's value, or ``default`` (without Mapping's exception round trip)."""
        found = self._lookup(name)
        if found is self:
            return self._map().get(name, default)
        return default if found is None else str(found)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())

    def __repr__(self) -> str:
        return f"Headers({self._map()!r})"


@dataclass(frozen=True, slots=True)
class Record:
    """One request to send and what its response should be.

    ``url`` is absolute or a path to be joined to the run's target. ``line`` is where the
    record stands in ``source`` (1-based), so every message can point back at it. ``tag``
    names the group the record is reported in (else its method and path template).
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    expect: Expect = NO_EXPECT
    line: int = 0
    source: str = ""
    tag: str = ""
    at: float | None = None  # when it was first sent (seconds since the epoch), if recorded

    @property
    def where(self) -> str:
        """``source:line`` for messages."""
        return f"{self.source or '<records>'}:{self.line}"


@dataclass(slots=True)
class Outcome:
    """What happened to one record: the response, or the error, and the connection that
    carried it.

    ``headers`` has lower-case names; repeated headers are joined with ``", "`` (a plain
    dict will do when building outcomes by hand).
    ``latency`` is seconds from the request's start to the end of its body; in an open-model
    run the start is when the request was due (so queueing counts), and ``service`` is from
    when it actually went out.
    ``conn_id`` is 0 when no connection was had. ``reused`` is true when the request went out
    on a connection that had carried an earlier request.
    """

    record: Record
    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    body_sha256: str | None = None
    body_size: int = 0
    body_truncated: bool = False
    latency: float = 0.0
    conn_id: int = 0
    reused: bool = False
    retried: bool = False
    redirects: int = 0
    url: str = ""
    error: str | None = None
    error_kind: str | None = None
    service: float = 0.0
    group: str = ""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One way a response differs from its record's expectation."""

    field: str
    expected: str
    got: str
