"""One HTTP/1.1 connection: an asyncio Protocol driving httptools' response parser.

A connection carries one request at a time. Its :class:`Exchange` is reported from the
parser's callbacks, and the connection goes back to its pool in the same callback that sees
the body's last byte, before the report: whoever the report wakes finds it idle, so a
response can never be "done" while its connection is still busy.

What httptools (llhttp) does at the edges, and what we do about it:

- HEAD and 304 responses may carry a Content-Length with no body; the parser would wait for
  those bytes and eat the next response as the body. We end such a message at
  headers-complete and start a fresh parser (one request in flight means nothing else can be
  in that read).
- 1xx responses arrive as complete messages of their own: interim, skipped.
- A body delimited by the connection's close never gets message-complete; we finish it in
  ``connection_lost``.

This is the hot path. The protocol has no ``on_header``, so httptools does not call into
Python per header field: the head's bytes are kept as they came and parsed only if someone
looks at the headers (see :class:`~tether.model.Headers`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, cast

import httptools

from tether.errors import (
    ConnectionClosed,
    HeadersTooLarge,
    ProtocolError,
    RequestError,
    StaleConnection,
    TimeoutError_,
)
from tether.http.heads import Headers
from tether.ledger import CloseReason
from tether.model import BodyNeed, Outcome

if TYPE_CHECKING:
    from tether.engine._compiled import Wire
    from tether.engine.options import ClientOptions
    from tether.engine.request import Prepared

HTTP11 = "http/1.1"
"""The protocol of a connection that speaks HTTP/1.1, as ALPN names it (and outcomes say)."""


class State(Enum):
    """Where a connection is in its life."""

    CONNECTING = "CONNECTING"
    IDLE = "IDLE"
    ACTIVE = "ACTIVE"
    LEAKED = "LEAKED"
    CLOSED = "CLOSED"


class Stage(Enum):
    """How far the response to the request in flight has come."""

    SENT = "sent"  # written; nothing back yet
    HEAD = "head"  # some of the head is in (interim 1xx heads included)
    BODY = "body"  # the final head is complete; its body, if any, is coming


class Phase(Enum):
    """Which deadline the request in flight is held to now."""

    WHOLE = "whole"  # the whole request's (--timeout)
    HEADERS = "headers"  # until the head is in (--response-header-timeout)
    DRAIN = "drain"  # the body's own, past the read its head came in: ends it undrained


class ConnectionBusy(RuntimeError):
    """A request was sent on a connection that is not idle: a bug in whoever sent it."""


# Read on the hot path as plain globals: an enum member's lookup is a class attribute's.
_IDLE, _CLOSED = State.IDLE, State.CLOSED
_SENT, _HEAD, _BODY = Stage.SENT, Stage.HEAD, Stage.BODY
_WHOLE, _HEADERS, _DRAIN = Phase.WHOLE, Phase.HEADERS, Phase.DRAIN
# The compiled path names phases and stages by these indexes.
_PHASES = (_WHOLE, _HEADERS, _DRAIN)
_STAGES = (_SENT, _HEAD, _BODY)

Done = Callable[["Exchange", "RequestError | None"], None]
"""Called once per request: with the finished exchange and None, or with the error."""

_NO_BODY_STATUSES = frozenset({204, 304})
_SWITCHED = (
    "the server switched protocols (101 with Upgrade): a replay of HTTP requests stops there"
)


def _refuses_every(heads: tuple[bytes, ...]) -> bool:
    class _Quiet:
        pass

    for head in heads:
        try:
            httptools.HttpResponseParser(_Quiet()).feed_data(head)
        except httptools.HttpParserError:
            continue
        return False
    return True


STRICT_HEADS = _refuses_every(
    (
        b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",  # a bare LF
        b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",  # a folded line
        b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n",  # a blank before the colon
    )
)
"""Whether the parser refuses heads that are not plain, so every head a response is
checked on is plain (see :func:`tether.http.heads.plain_head`). llhttp 9 does; asked of the
parser itself, once, rather than assumed from its version."""


class Exchange:
    """One request in flight on a connection and, once reported, its response as read off
    the wire (one hop: redirects and retries are the client's)."""

    protocol: ClassVar[str] = HTTP11
    """What the response came over (an HTTP/2 stream's exchange says ``h2``)."""

    __slots__ = (
        "_buf",
        "_hasher",
        "_headers",
        "body",
        "body_size",
        "conn_id",
        "deadline",
        "done",
        "due",
        "head",
        "keeps",
        "method",
        "phase",
        "reused",
        "sha256",
        "stage",
        "status",
        "truncated",
    )

    def __init__(
        self, conn_id: int, reused: bool, method: str, need: BodyNeed, done: Done, deadline: float
    ) -> None:
        self.conn_id = conn_id
        self.reused = reused
        self.method = method
        self.done: Done | None = done
        self.deadline = deadline  # the whole request's, on the loop's clock; 0 = none
        self.due = deadline  # when the current phase runs out (the pool's ticker checks it)
        self.phase = _WHOLE
        self.stage = _SENT
        self.status = 0
        self.head = b""  # the bytes the head came in (and maybe the body's first bytes)
        self._headers: Headers | None = None
        self.body: bytes | None = None
        self.sha256: str | None = None
        self.body_size = 0
        self.truncated = False
        self._hasher = hashlib.sha256() if need is BodyNeed.HASH else None
        self._buf = bytearray() if need is BodyNeed.KEEP else None
        self.keeps = need is not BodyNeed.DISCARD

    def keep(self, chunk: bytes) -> None:
        """Hash or keep a piece of body, as the checks need."""
        if self._hasher is not None:
            self._hasher.update(chunk)
        elif self._buf is not None:
            self._buf += chunk

    def set_phase(self, now: float, step: float, phase: Phase) -> None:
        """The next deadline: the earlier of the whole request's and ``step`` from ``now``."""
        if step > 0 and (not self.deadline or now + step < self.deadline):
            self.due, self.phase = now + step, phase
        else:
            self.due, self.phase = self.deadline, _WHOLE

    @property
    def headers(self) -> Headers:
        """The response headers, parsed from the head only if someone looks."""
        if self._headers is None:
            self._headers = Headers(head=self.head)
        return self._headers

    @property
    def close_delimited(self) -> bool:
        """The body runs until the connection closes: no length, not chunked."""
        chunked = "chunked" in (self.headers.get("transfer-encoding") or "").lower()
        return "content-length" not in self.headers and not chunked

    def finish(self) -> None:
        """Report the response (once)."""
        done, self.done = self.done, None
        if done is None:
            return
        if self._hasher is not None:
            self.sha256 = self._hasher.hexdigest()
        if self._buf is not None:
            self.body = bytes(self._buf)
        done(self, None)

    def fail(self, error: RequestError) -> None:
        """Report an error (once)."""
        done, self.done = self.done, None
        if done is not None:
            done(self, error)

    def outcome(self, prep: Prepared, latency: float) -> Outcome:
        """The outcome of a plain one-hop exchange, built in one call (the hot path). The
        protocol is the class's: an h2 stream's outcome says its own, and this one costs
        nothing more for it."""
        return Outcome(
            prep.record,
            self.status,
            self.headers,
            self.body,
            self.sha256,
            self.body_size,
            self.truncated,
            latency,
            self.conn_id,
            self.reused,
            False,
            0,
            prep.url_text,
            None,
            None,
            0.0,
            "",  # the group: the sender's to say
        )

    def copy_to(self, outcome: Outcome) -> None:
        """Copy the response into an outcome (the last hop of one that took the async path)."""
        outcome.status = self.status
        outcome.headers = self.headers
        outcome.body = self.body
        outcome.body_sha256 = self.sha256
        outcome.body_size = self.body_size
        outcome.body_truncated = self.truncated
        outcome.conn_id = self.conn_id
        outcome.reused = self.reused


Opened = Callable[["PooledConnection"], None]
"""The pool's callbacks: a connection is open, or may carry another request."""
Closed = Callable[["PooledConnection", CloseReason], None]
"""The pool's callback: a connection is gone, for this reason (called once)."""


class PooledConnection(asyncio.Protocol):
    """What the pool and the send path know of a connection, whatever it speaks: its id,
    key and state, the requests it has carried, and how it is sent on, watched and closed.
    :class:`Connection` speaks HTTP/1.1, :class:`tether.engine.h2connection.H2Connection`
    HTTP/2."""

    protocol: ClassVar[str] = HTTP11
    """What the connection speaks, as ALPN names it."""

    def __init__(
        self,
        conn_id: int,
        key: tuple[Any, ...],
        options: ClientOptions,
        on_open: Opened,
        on_released: Opened,
        on_closed: Closed,
    ) -> None:
        self.id = conn_id
        self.key = key
        self.options = options
        self.state = State.CONNECTING
        self.requests = 0
        self.idle_since = 0.0
        self.transport: asyncio.Transport | None = None
        self.wire: Wire | None = None  # the compiled protocol driving this one, if any
        self._on_open = on_open
        self._on_released = on_released
        self._on_closed = on_closed
        self._close_reason: CloseReason | None = None
        self._loop = asyncio.get_running_loop()
        self.timed = bool(options.timeout or options.response_header_timeout)
        self.timed |= bool(options.drain_timeout)

    def __repr__(self) -> str:
        host = ":".join(str(part) for part in self.key[1:3])
        return (
            f"<{type(self).__name__} #{self.id} {host} {self.state.value} requests={self.requests}>"
        )

    @property
    def usable(self) -> bool:
        """Whether a request may be sent on it now."""
        raise NotImplementedError

    def send(
        self, request: bytes, method: str, need: BodyNeed, deadline: float, done: Done
    ) -> None:
        """Write one request (its HTTP/1.1 bytes, as :func:`tether.engine.request.encode_head`
        makes them); ``done`` is called once with its response or error, possibly before
        this returns (when nothing could be written)."""
        raise NotImplementedError

    def closes_after(self) -> None:
        """The request just sent said ``Connection: close``: nothing more goes out on this
        connection once its response is in (RFC 9112 9.6), whatever the server answers."""
        raise NotImplementedError

    def expire(self, now: float) -> bool:
        """End what has run out of time; False when the connection needs no more watching."""
        raise NotImplementedError

    def close(self, reason: CloseReason) -> None:
        """Close with ``reason`` (the first reason given wins); the ledger hears of it once,
        from ``connection_lost``."""
        if self._close_reason is None:
            self._close_reason = reason
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        elif self.transport is None:
            self.state = State.CLOSED

    def abort(self, reason: CloseReason) -> None:
        """Close at once, dropping unsent data (timeouts, leaked connections)."""
        if self._close_reason is None:
            self._close_reason = reason
        if self.transport is not None:
            self.transport.abort()


class Connection(PooledConnection):
    """An HTTP/1.1 client connection, owned by a pool that hears of its events."""

    def __init__(
        self,
        conn_id: int,
        key: tuple[Any, ...],
        options: ClientOptions,
        on_open: Opened,
        on_released: Opened,
        on_closed: Closed,
    ) -> None:
        super().__init__(conn_id, key, options, on_open, on_released, on_closed)
        self._parser = httptools.HttpResponseParser(self)
        self._fresh_parser = False
        self._ex: Exchange | None = None
        # Read once: the callbacks below run per header and per body piece.
        self._limit = options.drain_limit
        self._checked_limit = options.max_body  # for a body the checks need whole
        self._max_head = options.max_response_header_bytes
        self._header_timeout = options.response_header_timeout
        self._drain_timeout = options.drain_timeout
        self._keep_alive = not options.disable_keep_alives
        self._leak = options.leak
        self._closing_after = False  # see closes_after

    # -- the pool's side -----------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Idle and still open as far as we can see."""
        t = self.transport
        return self.state is State.IDLE and t is not None and not t.is_closing()

    def send(
        self, request: bytes, method: str, need: BodyNeed, deadline: float, done: Done
    ) -> None:
        """Write one request; ``done`` is called once with its response or error, possibly
        before this returns (when nothing could be written). ConnectionBusy on a connection
        that is not idle (one request at a time is what makes the ledger exact)."""
        state = self.state
        if state is not _IDLE and state is not _CLOSED:
            raise ConnectionBusy(f"send on {self!r}")
        ex = Exchange(self.id, self.requests > 0, method, need, done, deadline)
        t = self.transport
        if t is None or t.is_closing():
            # Nothing was written: Go retries this whatever the method.
            ex.fail(StaleConnection("connection closed before the request", written=False))
            return
        self.state = State.ACTIVE
        self.requests += 1
        self._ex = ex
        if self._header_timeout:
            ex.set_phase(self._loop.time(), self._header_timeout, _HEADERS)
        t.write(request)

    def expire(self, now: float) -> bool:
        """End the request in flight if its deadline has passed. False when this connection
        needs no more watching (leaked: it will carry nothing more)."""
        ex = self._ex
        if ex is not None and ex.due and now >= ex.due:
            self._on_deadline(ex)
        elif ex is None and self.wire is not None:
            self.wire.expire()
        return self.state is not State.LEAKED

    # -- the compiled path's side (see tether.engine._compiled.Wire) ------------------------

    def wire_started(self) -> None:
        """The compiled path starts sending on this idle connection."""
        if self.state is not _IDLE:
            raise ConnectionBusy(f"send on {self!r}")
        self.state = State.ACTIVE

    def wire_released(self, sent: int) -> None:
        """The compiled path gives the connection back after ``sent`` more requests."""
        self.requests += sent
        self.state = State.IDLE
        self.idle_since = time.monotonic()
        self._on_released(self)

    def wire_closing(self, sent: int) -> None:
        """The compiled path's last response asked to close (keep-alive is ours otherwise)."""
        self.requests += sent
        self.close(CloseReason.SERVER_CLOSE)

    def adopt(
        self,
        sent: int,
        reused: bool,
        method: str,
        done: Done,
        deadline: float,
        due: float,
        phase: int,
        stage: int,
        status: int,
        head: bytes,
        body_size: int,
    ) -> None:
        """Take over the compiled path's request in flight, as it stands: this side reports
        it from here (``phase`` and ``stage`` index :class:`Phase` and :class:`Stage`)."""
        self.requests += sent
        ex = Exchange(self.id, reused, method, BodyNeed.DISCARD, done, deadline)
        ex.due, ex.phase = due, _PHASES[phase]
        ex.stage, ex.status, ex.head, ex.body_size = _STAGES[stage], status, head, body_size
        self._ex = ex

    def wire_expired(self) -> None:
        """The request the compiled path handed over has run out of time."""
        if self._ex is not None:
            self._on_deadline(self._ex)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but implement it.
        self.transport = cast("asyncio.Transport", transport)
        self.state = State.IDLE
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        ex = self._ex
        if ex is None:
            # Bytes nobody asked for (a leaked connection's body, or a server talking out of
            # turn). A leaked connection stays as it is; anything else cannot be trusted.
            if self.state is State.IDLE:
                self.close(CloseReason.PROTOCOL)
            return
        if ex.stage is not _BODY:
            # Every byte so far is the head's (interim heads included): the limit is on them.
            if self._max_head and len(ex.head) + len(data) > self._max_head:
                self._past_head_limit(ex, data)
                return
            # Keep the head's bytes for Headers to parse lazily: a Python callback per
            # header field would cost more than the rest of the response.
            ex.head = ex.head + data if ex.head else data
            ex.stage = _HEAD
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid response: {exc}"), CloseReason.PROTOCOL)
        except httptools.HttpParserUpgrade:  # (not an HttpParserError: llhttp pauses there)
            self._fail(ProtocolError(_SWITCHED), CloseReason.PROTOCOL)
        if self._fresh_parser:
            self._parser = httptools.HttpResponseParser(self)
            self._fresh_parser = False
        if ex.stage is _BODY and ex.done is not None and ex.phase is not _DRAIN:
            self._body_goes_on(ex)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        ex, self._ex = self._ex, None
        reason, error = classify_lost(self._close_reason, ex, exc)
        self.state = State.CLOSED
        if self.transport is not None:
            self._on_closed(self, reason)  # the pool first: the request's callback may dial
        if ex is not None:
            if error is None:
                ex.finish()
            else:
                ex.fail(error)

    # -- httptools callbacks ------------------------------------------------------------

    def on_headers_complete(self) -> None:
        ex = self._ex
        if ex is None:
            return
        status = self._parser.get_status_code()
        if status < 200:
            return  # interim; its message-complete follows and is skipped too
        ex.status = status
        ex.stage = _BODY
        if self._leak:
            self._leaked(ex)
        elif ex.method == "HEAD" or status in _NO_BODY_STATUSES:
            self._fresh_parser = True
            self._complete(ex)

    def on_body(self, body: bytes) -> None:
        ex = self._ex
        if ex is None:
            return
        size = ex.body_size + len(body)
        limit = self._checked_limit if ex.keeps else self._limit
        if size > limit:
            ex.keep(body[: max(limit - ex.body_size, 0)])
            ex.body_size = size
            self._undrained(ex)
            return
        ex.body_size = size
        if ex.keeps:
            ex.keep(body)

    def on_message_complete(self) -> None:
        ex = self._ex
        if ex is None:
            return
        if ex.stage is _BODY:
            self._complete(ex)
        # else: a 1xx, interim; Headers skips its head

    # -- internals ----------------------------------------------------------------------

    def _complete(self, ex: Exchange) -> None:
        """The response is whole: give the connection back (or close it), then report.
        In that order, so that whoever the report wakes finds the connection idle."""
        self._ex = None
        if not self._keep_alive:
            self.close(CloseReason.KEEP_ALIVE_OFF)
        elif self._closing_after:
            self.close(CloseReason.REQUEST_CLOSE)
        elif self._parser.should_keep_alive():
            self.state = State.IDLE
            self.idle_since = time.monotonic()
            self._on_released(self)
        else:
            self.close(CloseReason.SERVER_CLOSE)
        ex.finish()

    def closes_after(self) -> None:
        """The request just sent said ``Connection: close``: nothing more goes out on this
        connection once its response is in (RFC 9112 9.6), whatever the server answers."""
        self._closing_after = True

    def _body_goes_on(self, ex: Exchange) -> None:
        """The body runs on past the read its headers came in: from now on it has the drain
        timeout to end, and the header timeout no longer applies. (Set here, not when the
        headers are complete, because most bodies end in the same read: no clock read.)"""
        if self._drain_timeout:
            ex.set_phase(self._loop.time(), self._drain_timeout, _DRAIN)
        elif ex.phase is _HEADERS:
            ex.set_phase(0.0, 0.0, _WHOLE)

    def _undrained(self, ex: Exchange) -> None:
        """Stop reading a body that is too big or too slow: the response stands, the
        connection is closed instead of drained."""
        ex.truncated = True
        self._ex = None
        self.abort(CloseReason.UNDRAINED)
        ex.finish()

    def _leaked(self, ex: Exchange) -> None:
        """Leak mode: answer at the headers, never read the body, never give the connection
        back. The server keeps it open until the run ends."""
        self._ex = None
        self.state = State.LEAKED
        ex.truncated = True
        if self.transport is not None:
            self.transport.pause_reading()
        ex.finish()

    def _past_head_limit(self, ex: Exchange, data: bytes) -> None:
        """A read that takes the response past the head's size limit. What fits is read as
        any read is: if the head ends within it, the rest is read after, as if it came in a
        read of its own (body bytes do not count); if not, the request fails and the
        connection is closed, so that a head with no end is never held past the limit."""
        room = self._max_head - len(ex.head)
        if room:
            self.data_received(data[:room])
        if self._ex is ex and ex.stage is not _BODY:
            too_large = HeadersTooLarge(f"response headers over {self._max_head:,} bytes")
            self._fail(too_large, CloseReason.HEADERS_TOO_LARGE)
        else:
            self.data_received(data[room:])

    def _fail(self, error: RequestError, reason: CloseReason) -> None:
        ex, self._ex = self._ex, None
        self.abort(reason)
        if ex is not None:
            ex.fail(error)

    def _on_deadline(self, ex: Exchange) -> None:
        if ex.phase is _DRAIN:
            self._undrained(ex)
            return
        if ex.phase is _HEADERS:
            what = f"no response headers within {self._header_timeout:g}s"
        else:
            what = f"request not complete within {self.options.timeout:g}s"
        self._fail(TimeoutError_(what), CloseReason.TIMEOUT)


def classify_lost(
    ours: CloseReason | None, ex: Exchange | None, exc: Exception | None
) -> tuple[CloseReason, RequestError | None]:
    """Why a connection was lost, as the ledger counts it, and what that means for the
    request in flight (``ex``): its error, or None when it ends well (nothing in flight, or
    a body delimited by the close). One decision for both, so that the ledger and the
    outcomes cannot disagree. ``ours``: the reason we closed it for, if we did."""
    if ex is None:
        return ours or CloseReason.SERVER_IDLE, None
    if ours is not None:
        return ours, ConnectionClosed(f"connection closed: {ours.text}")
    if ex.stage is _BODY and exc is None and ex.close_delimited:
        return CloseReason.SERVER_CLOSE, None
    if ex.stage is _SENT and ex.reused:
        # Go's "server closed idle connection" race: retried when it may be.
        return CloseReason.STALE, StaleConnection(
            "server closed the reused connection", written=True
        )
    return _lost_mid_response(_WHERE[ex.stage], exc)


_WHERE = {_SENT: "before responding", _HEAD: "during the headers", _BODY: "during the body"}


def _lost_mid_response(where: str, exc: Exception | None) -> tuple[CloseReason, ConnectionClosed]:
    """A connection the server ended before the response did. A clean close (its FIN: the
    transport reports no exception) is counted and said as a close; a reset (RST), or any
    other way the socket failed, as a reset. They point at different things on the server:
    a close is its own doing (a handler that gave up, a limit of its own), a reset a
    connection torn down (a crash, SO_LINGER 0, a full queue)."""
    if exc is None:
        text = f"server closed the connection {where}"
        return CloseReason.SERVER_CLOSED_MID_RESPONSE, ConnectionClosed(text)
    if isinstance(exc, ConnectionResetError):
        return CloseReason.SERVER_RESET, ConnectionClosed(f"server reset the connection {where}")
    return CloseReason.SERVER_RESET, ConnectionClosed(f"connection failed {where}: {exc}")
