"""What a reverse proxy passes on and what it keeps to itself (RFC 9110 7.6.1): hop-by-hop
fields are the connection's, not the message's, so they are dropped both ways, with every
field a ``Connection`` header names; the framing (``Content-Length``) is written afresh for
the hop it goes over. Pure: fields in, fields (and bytes) out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tether.http.heads import head_fields

__all__ = [
    "HOP_BY_HOP",
    "VIA",
    "forwarded_request",
    "framed",
    "response_bytes",
    "returned",
    "returned_head",
    "returned_response",
    "sentence_response",
]

Fields = Sequence[tuple[str, str]]

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"}
)
"""RFC 9110 7.6.1's: a proxy removes them (and what ``Connection`` names) before forwarding."""

_REWRITTEN_REQUEST = frozenset({"host", "content-length", "expect", "trailer"})
"""The engine writes these for the upstream hop itself: Host is the upstream's, the body's
length is framed by the engine, ``100-continue`` was answered by the proxy (the body is in
hand), and a chunked request's trailer was read with it."""

VIA = "1.1 tether"
"""What ``--via`` adds (RFC 9110 7.6.3: the protocol the message was received with, and
the proxy's name)."""


def _named_by_connection(fields: Fields) -> frozenset[str]:
    return frozenset(
        option.strip().lower()
        for name, value in fields
        if name.lower() == "connection"
        for option in value.split(",")
        if option.strip()
    )


def _kept(fields: Fields, dropped: frozenset[str]) -> list[tuple[str, str]]:
    named = _named_by_connection(fields)
    return [
        (name, value)
        for name, value in fields
        if (key := name.lower()) not in dropped and key not in named
    ]


def _with_via(fields: list[tuple[str, str]], via: bool) -> list[tuple[str, str]]:
    if via:
        fields.append(("Via", VIA))
    return fields


def forwarded_request(fields: Fields) -> list[tuple[str, str]]:
    """A client's request fields as they go upstream (and are recorded): hop-by-hop ones
    and what the engine writes itself (Host, Content-Length, Expect) left out. ``--via``
    adds its field to what goes upstream only: a record holds the client's request."""
    return _kept(fields, HOP_BY_HOP | _REWRITTEN_REQUEST)


def returned_response(
    fields: Fields, *, keep_length: bool, via: bool = False
) -> list[tuple[str, str]]:
    """The upstream's response fields as the client gets them: hop-by-hop ones left out;
    Content-Length too, since the proxy frames the body it has read whole, unless
    ``keep_length`` (the response to HEAD, and a 304: their Content-Length describes a body
    not sent, and is passed on as the upstream said it)."""
    dropped = HOP_BY_HOP if keep_length else HOP_BY_HOP | {"content-length"}
    return _with_via(_kept(fields, dropped), via)


def _bodiless(status: int) -> bool:
    return status < 200 or status in (204, 304)


def response_bytes(
    status: int,
    reason: str,
    fields: Iterable[tuple[str, str]],
    body: bytes,
    *,
    head_only: bool,
    close: bool,
) -> bytes:
    """The response's HTTP/1.1 bytes for the client: its own fields, then the framing of
    this hop (the body's length, unless HEAD or a status that has no body) and
    ``Connection: close`` when the proxy closes after it; no body for HEAD."""
    lines = [f"HTTP/1.1 {status} {reason}"]  # the SP before an empty reason is the grammar's
    lines.extend(f"{name}: {value}" for name, value in fields)
    if not head_only and not _bodiless(status):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if head_only or _bodiless(status) else head + body


_DROPPED_BYTES = frozenset(name.encode() for name in HOP_BY_HOP | {"content-length"})
_KEEP_ALIVE_ONLY = (b"keep-alive", b"close", b"")


def returned_head(head: bytes, *, via: bool) -> bytes | None:
    """:func:`returned_response`'s rule on a plain head's bytes as they are (a head llhttp
    read: CRLF lines, no folding), for a response whose body the proxy frames itself: the
    status line (as HTTP/1.1) and the kept field lines, through the CRLF of the last; no
    decoding, no field made. None when only the slow way can tell (a ``Connection`` header
    naming other fields, an interim response before it): use :func:`returned_response`."""
    end = head.find(b"\r\n\r\n")
    if end < 0 or head[9:10] == b"1":
        return None
    lines = head[:end].split(b"\r\n")
    kept = [b"HTTP/1.1" + lines[0][8:]]
    for line in lines[1:]:
        name = line[: line.find(b":")].lower()
        if name not in _DROPPED_BYTES:
            kept.append(line)
        elif name == b"connection" and line[11:].strip().lower() not in _KEEP_ALIVE_ONLY:
            return None  # it names other fields to drop
    if via:
        kept.append(f"Via: {VIA}".encode())
    kept.append(b"")
    return b"\r\n".join(kept)


def framed(head: bytes, body: bytes, *, close: bool) -> bytes:
    """A response from :func:`returned_head`'s head: this hop's framing added (the body's
    length, and ``Connection: close`` when the proxy closes after it), the body after it."""
    length = b"Content-Length: %d\r\n" % len(body)
    return head + length + (b"Connection: close\r\n\r\n" if close else b"\r\n") + body


def _reason(head: bytes) -> str:
    """The reason phrase of the head's status line, as the upstream wrote it."""
    parts = head[: head.find(b"\r\n")].split(b" ", 2)
    return parts[2].decode("latin-1") if len(parts) == 3 else ""


def returned(
    head: bytes, status: int, body: bytes, *, head_only: bool, close: bool, via: bool = False
) -> bytes:
    """The client's answer, from the upstream's head (its bytes as read) and whole body:
    the quick way (:func:`returned_head`) when the proxy frames a body and the head allows,
    else field by field."""
    if not head_only and not _bodiless(status):
        quick = returned_head(head, via=via)
        if quick is not None:
            return framed(quick, body, close=close)
    keep_length = head_only or status == 304
    fields = returned_response(head_fields(head), keep_length=keep_length, via=via)
    return response_bytes(status, _reason(head), fields, body, head_only=head_only, close=close)


def sentence_response(status: int, reason: str, sentence: str, *, head_only: bool) -> bytes:
    """The proxy's own answer (a 4xx for a client that misbehaved, a 502 or 504 for an
    upstream that failed): the sentence as plain text, and the connection closed after it."""
    return response_bytes(
        status,
        reason,
        [("Content-Type", "text/plain; charset=utf-8")],
        (sentence + "\n").encode("utf-8"),
        head_only=head_only,
        close=True,
    )
