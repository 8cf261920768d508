"""One HTTP/1.1 connection: an asyncio Protocol driving httptools' response parser.

A connection carries one request at a time. Its :class:`~tether.engine.exchange.Exchange`
is reported from the
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
looks at the headers (see :class:`~tether.http.heads.Headers`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, cast

import httptools

from tether.engine.exchange import (
    Exchange,
    Handover,
    Phase,
    Stage,
    classify_lost,
    timed_out,
)
from tether.engine.interface import (
    Closed,
    ConnectionBusy,
    Opened,
    PooledConnection,
    State,
)
from tether.errors import (
    HeadersTooLarge,
    ProtocolError,
    RequestError,
    StaleConnection,
)
from tether.ledger import CloseReason
from tether.model import BodyNeed

if TYPE_CHECKING:
    from tether.engine._compiled import Wire
    from tether.engine.exchange import Done
    from tether.engine.options import ClientOptions
    from tether.engine.request import RequestHead

# Read on the hot path as plain globals: an enum member's lookup is a class attribute's.
_IDLE, _CLOSED = State.IDLE, State.CLOSED
_SENT, _HEAD, _BODY = Stage.SENT, Stage.HEAD, Stage.BODY
_HEADERS, _DRAIN = Phase.HEADERS, Phase.DRAIN

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


class Connection(PooledConnection):
    """An HTTP/1.1 client connection, owned by a pool that hears of its events."""

    wire: Wire | None  # (an HTTP/1.1 connection is driven by the HTTP/1.1 compiled protocol)

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
        self._closing_after = False  # the request in flight said Connection: close

    # -- the pool's side -----------------------------------------------------------------

    @property
    def has_room(self) -> bool:
        """Idle and still open as far as we can see."""
        t = self.transport
        return self.state is State.IDLE and t is not None and not t.is_closing()

    def send(self, request: RequestHead, need: BodyNeed, deadline: float, done: Done) -> None:
        """Write one request; ``done`` is called once with its response or error, possibly
        before this returns (when nothing could be written). ConnectionBusy on a connection
        that is not idle (one request at a time is what makes the ledger exact)."""
        state = self.state
        if state is not _IDLE and state is not _CLOSED:
            raise ConnectionBusy(f"send on {self!r}")
        ex = Exchange(self.id, self.requests > 0, request.method, need, done, deadline)
        t = self.transport
        if t is None or t.is_closing():
            # Nothing was written: Go retries this whatever the method.
            ex.fail(StaleConnection("connection closed before the request", written=False))
            return
        self.state = State.ACTIVE
        self.requests += 1
        self._ex = ex
        if self._header_timeout:
            ex.reach(_SENT, self._loop.time(), self._header_timeout, self._drain_timeout)
        if request.closes:
            # Nothing more goes out on this connection once its response is in (RFC 9112
            # 9.6), whatever the server answers.
            self._closing_after = True
        t.write(request.http11)

    def check_deadlines(self, now: float) -> bool:
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
        self._now_idle()
        self._on_released(self)

    def wire_closing(self, sent: int) -> None:
        """The compiled path's last response asked to close (keep-alive is ours otherwise)."""
        self.requests += sent
        self.close(CloseReason.SERVER_CLOSE)

    def adopt(self, handover: Handover, done: Done) -> None:
        """Take over the compiled path's request in flight, as it stands: this side reports
        it to ``done`` from here."""
        self.requests += handover.carried
        self._ex = handover.exchange(self.id, done)

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
            self.state = _IDLE  # (_now_idle, written out: this runs per response)
            self.idle_since = time.monotonic()
            self._on_released(self)
        else:
            self.close(CloseReason.SERVER_CLOSE)
        ex.finish()

    def _body_goes_on(self, ex: Exchange) -> None:
        """The body runs on past the read its headers came in: from now on it has the drain
        timeout to end, and the header timeout no longer applies. (Set here, not when the
        headers are complete, because most bodies end in the same read: no clock read.)"""
        now = self._loop.time() if self._drain_timeout else 0.0
        ex.reach(_BODY, now, self._header_timeout, self._drain_timeout)

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
        error = timed_out(ex.phase, self._header_timeout, self.options.timeout)
        self._fail(error, CloseReason.TIMEOUT)
