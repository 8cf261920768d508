"""What both HTTP/2 connections share, the one on the h2 library
(:mod:`tether.engine.h2connection`) and the compiled one (:mod:`tether.engine.h2compiled`):
a stream's exchange, the names the ledger counts error codes by, the size rule of a
response head, and the sentences of a connection lost before it settled. Nothing here
loads h2: a compiled connection never needs it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from tether.engine.exchange import WHERE, Done, Exchange, Stage, classify_lost
from tether.errors import ProtocolError, RequestError
from tether.http.heads import Headers
from tether.ledger import CloseReason
from tether.model import BodyNeed

H2 = "h2"
"""The protocol of an HTTP/2 connection, as ALPN names it (and outcomes say)."""

_BODY, _SENT = Stage.BODY, Stage.SENT

ERROR_NAMES = (
    "no_error",
    "protocol_error",
    "internal_error",
    "flow_control_error",
    "settings_timeout",
    "stream_closed",
    "frame_size_error",
    "refused_stream",
    "cancel",
    "compression_error",
    "connect_error",
    "enhance_your_calm",
    "inadequate_security",
    "http_1_1_required",
)
"""RFC 9113 7's error codes by number, as the ledger names them."""


def code_name(code: int) -> str:
    """An error code as the ledger counts it: ``refused_stream``, ``cancel``, ``0x1f``."""
    return ERROR_NAMES[code] if 0 <= code < len(ERROR_NAMES) else f"{code:#x}"


class Stream(Exchange):
    """One request on an HTTP/2 connection and, once reported, its response."""

    __slots__ = ("leaked", "pending", "stalled_at", "stream_id")

    protocol: ClassVar[str] = H2

    def __init__(
        self,
        conn_id: int,
        reused: bool,
        method: str,
        need: BodyNeed,
        done: Done,
        deadline: float,
    ) -> None:
        super().__init__(conn_id, reused, method, need, done, deadline)
        self.stream_id = 0
        self.pending = memoryview(b"")  # the request body still to send
        self.stalled_at = 0.0  # since when it has waited for WINDOW_UPDATE (0: it does not)
        self.leaked = False

    @property
    def close_delimited(self) -> bool:
        return False  # an HTTP/2 body ends with its stream, never with the connection


HEAD_FLOOR = len(b"HTTP/2.0 000\r\n\r\n")
"""What a response head's size starts from: its status line and blank line."""


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
"""A field name as HTTP/2 allows it: a token (RFC 9110 5.6.2), in lower case."""
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
_BAD_IN_VALUE = re.compile(rb"[\x00\r\n]")


def _malformed(why: str) -> ProtocolError:
    return ProtocolError(f"malformed response: {why}")


def _field_problem(name: bytes, value: bytes) -> str | None:
    """What makes one regular field of a response malformed (RFC 9113 8.2), or None."""
    shown = repr(name.decode("latin-1"))
    if not _TOKEN.fullmatch(name):
        if _TOKEN.fullmatch(name.lower()):
            return f"upper-case field name {shown}"
        return f"field name {shown} is not a token"
    if name in _CONNECTION_SPECIFIC or (name == b"te" and value != b"trailers"):
        return f"connection-specific field {shown}"
    if _BAD_IN_VALUE.search(value):
        return f"CR, LF or NUL in the value of {shown}"
    if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
        return f"blanks around the value of {shown}"
    return None


def response_fields(fields: list[tuple[bytes, bytes]]) -> tuple[int, int, Headers]:
    """A response's fields, validated: the size of the head they make (as an HTTP/1.1
    head of them would be, status line first, for the head size limit to mean one thing
    over both protocols), the status, and the :class:`~tether.http.heads.Headers`.
    ProtocolError, in the compiled path's words, for a malformed head (RFC 9113 8.1.1,
    8.2, 8.3.2): a field name that is not a lower-case token, a connection-specific field,
    CR, LF or NUL in a value or blanks around it, a pseudo-header field other than one
    ``:status`` of three digits before the regular fields (``2000`` is not 200), or
    content-lengths that disagree. It is the stream's error, not the connection's."""
    status: bytes | None = None
    size = HEAD_FLOOR
    regular: list[tuple[bytes, bytes]] = []
    length: bytes | None = None
    for name, value in fields:
        if not name:
            raise _malformed("an empty field name")
        if name.startswith(b":"):
            if regular:
                raise _malformed("a pseudo-header field after the regular ones")
            if name != b":status":
                raise _malformed(f"pseudo-header field {name.decode('latin-1')!r} in a response")
            if status is not None:
                raise _malformed("two :status fields")
            status = value
            continue
        problem = _field_problem(name, value)
        if problem is not None:
            raise _malformed(problem)
        if name == b"content-length":
            if not value.isdigit() or (length is not None and value != length):
                raise _malformed(f"content-length {value.decode('latin-1')!r}")
            length = value
        regular.append((name, value))
        size += len(name) + len(value) + 4  # "name: value\r\n"
    if status is None:
        raise _malformed("no :status field")
    if len(status) != 3 or not status.isdigit():
        raise _malformed(f":status {status.decode('latin-1')!r} is not three digits")
    return size, int(status), Headers.of_fields(regular)


def where(ex: Exchange) -> str:
    """Where in its response a stream was when it was reset."""
    return WHERE[_BODY] if ex.stage is _BODY else WHERE[_SENT]


def lost_streams(
    ours: CloseReason | None,
    draining: CloseReason | None,
    streams: Sequence[Exchange],
    exc: Exception | None,
) -> tuple[CloseReason, list[tuple[Exchange, RequestError]]]:
    """What a lost HTTP/2 connection means, for both connections: why, as the ledger counts
    it, and the error of each stream still waiting; one decision for both, as on HTTP/1.1
    (the first stream still waiting says what the loss meant to a request). ``ours``: the
    reason we closed it for; ``draining``: the one it was going away for."""
    if ours is None and draining is CloseReason.GOAWAY:
        ours = CloseReason.GOAWAY  # the server's own decision, said before it closed
    waiting = [ex for ex in streams if ex.done is not None]
    reason, _ = classify_lost(ours, waiting[0] if waiting else None, exc)
    failed = []
    for ex in waiting:
        error = classify_lost(ours, ex, exc)[1]
        assert error is not None  # an HTTP/2 body never ends with its connection
        failed.append((ex, error))
    return reason, failed


def lost_before_settings(exc: Exception | None) -> str:
    """The error of the requests waiting for a connection lost before its SETTINGS."""
    why = f": {exc}" if exc is not None else ""
    return f"the server closed the connection before its HTTP/2 SETTINGS{why}"


MOST_ACKS_OWED = 10_000
"""The most SETTINGS and PINGs (each owed an ack) the server may send in a row, with no frame
for any stream between them (none that counts while it reads nothing we write): past it the
server floods us (RFC 9113 10.5; CVE-2019-9512, -9515), and the connection ends with
ENHANCE_YOUR_CALM, on both paths, where h2 would ack whatever comes. nghttp2 bounds the acks
not yet written (1,000), Go's server its queued control frames (10,000); a server that does
not read reaches those only once the kernel's buffers are full, megabytes of acks on a fast
link, which take h2 seconds to parse the frames of. Counting the frames bounds the acks and
that time alike."""


def flood_text(frame: str, owed: int) -> str:
    """The error of a connection ended for a flood of ``frame`` (SETTINGS or PING)."""
    said = f"{owed:,} SETTINGS and PING frames from the server"
    return f"{frame} flood: {said} with nothing for any stream between (ENHANCE_YOUR_CALM)"


def unacked_text(timeout: float) -> str:
    """The error of a connection whose server never acknowledged our SETTINGS."""
    said = f"the server did not acknowledge our SETTINGS within {timeout:g} s"
    return f"{said} (SETTINGS_TIMEOUT)"
