"""Reading HTTP/1.x response heads from their raw bytes: the fields of a head, one field
found without a parse, and :class:`Headers`, decoded only when looked at. Pure; no I/O.

One definition of a "plain" head (:func:`plain_head`) decides when the quick ways apply;
anything else is parsed slowly, line by line."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

__all__ = [
    "NOT_IN_A_VALUE",
    "UNSURE",
    "Headers",
    "Unsure",
    "head_fields",
    "head_lower",
    "header_key",
    "one_header",
    "plain_head",
]

NOT_IN_A_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""What a header value sent may not hold: control characters, tab apart (RFC 9110 5.5); CR
and LF matter most, since they would split the request."""

_LINE = re.compile(rb"\r?\n")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_OWS = " \t"
"""What a field's name and value are trimmed of: RFC 9110's optional whitespace, and no
more (``str.strip()`` would also take a Latin-1 NBSP, which :func:`one_header` keeps)."""


def plain_head(data: bytes, parsed: bool = False) -> bytes | None:
    """The final response head at the start of ``data`` (which may run on into the body),
    through the CRLF that ends its last field, when it is the plain kind that can be read
    with a split or searched for a field: CRLF line ends only, no line folded onto the next,
    no blank before a colon, no interim 1xx response first. None for anything else: parse
    that slowly.

    ``parsed`` says the head has passed a parser that refuses what is not plain (llhttp
    does; see :data:`tether.engine.connection.STRICT_HEADS`), so that need not be searched
    for: the hot path asks this of every response a header is checked on."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or data[9:10] == b"1":  # "HTTP/1.1 1xx"
        return None
    head = data[: end + 2]
    if parsed:
        return head
    bare_lf = head.count(b"\n") != head.count(b"\r\n")
    if bare_lf or b"\n " in head or b"\n\t" in head or b" :" in head or b"\t:" in head:
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
    for line in head.decode("latin-1").split("\r\n")[1:-1]:
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
    """:func:`plain_head` lower-cased, for :func:`one_header` to search; empty when the head
    is not plain."""
    head = plain_head(data, parsed)
    return b"" if head is None else head.lower()


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

    Names are lower-case; repeated headers are joined with ``", "``. An HTTP/2 response's
    come as fields, not a head: :meth:`of_fields`.
    """

    __slots__ = ("_decoded", "_fields", "_lower", "head")

    def __init__(self, head: bytes = b"") -> None:
        self.head = head
        self._fields: list[tuple[bytes, bytes]] | None = None
        self._decoded: dict[str, str] | None = None
        self._lower: bytes | None = None

    @classmethod
    def of_fields(cls, fields: list[tuple[bytes, bytes]]) -> Headers:
        """Headers from (name, value) fields as HTTP/2 carries them (names in lower case,
        no pseudo-header fields), decoded as Latin-1 as a head's are, and as lazily: one
        field is found without decoding the others."""
        headers = cls()
        headers._fields = fields
        return headers

    def _lookup(self, name: str) -> str | Headers | None:
        """One header straight from the head's bytes (or the fields), without parsing the
        rest: a checked response usually needs one. ``self`` when only a full parse can
        tell."""
        if self._decoded is not None:
            return self
        if self._fields is not None:
            return self._one_field(name.lower().encode("latin-1"))
        if self._lower is None:
            self._lower = head_lower(self.head)
        if not self._lower:
            return self
        found = one_header(self.head, self._lower, header_key(name))
        if isinstance(found, Unsure):
            return self
        return None if found is None else found.decode("latin-1")

    def _one_field(self, key: bytes) -> str | Headers | None:
        """The field named ``key``; ``self`` when it repeats (the full map joins them)."""
        assert self._fields is not None
        found = None
        for name, value in self._fields:
            if name == key:
                if found is not None:
                    return self
                found = value
        return None if found is None else found.decode("latin-1")

    def _map(self) -> dict[str, str]:
        if self._decoded is None:
            fields = self._fields
            pairs = (
                head_fields(self.head)
                if fields is None
                else [(n.decode("latin-1"), v.decode("latin-1")) for n, v in fields]
            )
            decoded: dict[str, str] = {}
            for name, value in pairs:
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

    def every(self, name: str) -> list[str]:
        """Each value of a header that may repeat, apart (``Set-Cookie``: its values hold
        commas, so the joined one cannot be split again)."""
        key = name.lower()
        if self._fields is not None:
            wanted = key.encode("latin-1")
            return [v.decode("latin-1") for n, v in self._fields if n == wanted]
        return [value for field, value in head_fields(self.head) if field.lower() == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())

    def __repr__(self) -> str:
        return f"Headers({self._map()!r})"
