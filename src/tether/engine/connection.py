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
from typing import TYPE_CHECKING, Any, cast

import httptools

from tether.engine.ledger import CloseReason
from tether.errors import (
    ConnectionClosed,
    ProtocolError,
    RequestError,
    StaleConnection,
    TimeoutError_,
)
from tether.http.heads import Headers
from tether.model import BodyNeed

if TYPE_CHECKING:
    from tether.engine.options import ClientOptions


class State(Enum):
    """Where a connection is in its life."""

    CONNECTING = "CONNECTING"
    IDLE = "IDLE"
    ACTIVE = "ACTIVE"
    LEAKED = "LEAKED"
    CLOSED = "CLOSED"


Done = Callable[["Exchange", "RequestError | None"], None]
"""Called once per request: with the finished exchange and None, or with the error."""

_NO_BODY_STATUSES = frozenset({204, 304})


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
        "got_bytes",
        "head",
        "headers_done",
        "keeps",
        "method",
        "phase",
        "reused",
        "sha256",
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
        self.phase = "total"
        self.status = 0
        self.head = b""  # the bytes the head came in (and maybe the body's first bytes)
        self._headers: Headers | None = None
        self.headers_done = False
        self.got_bytes = False
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

    def set_phase(self, now: float, step: float, phase: str) -> None:
        """The next deadline: the earlier of the whole request's and ``step`` from ``now``."""
        if step > 0 and (not self.deadline or now + step < self.deadline):
            self.due, self.phase = now + step, phase
        else:
            self.due, self.phase = self.deadline, "total"

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


class Connection(asyncio.Protocol):
    """An HTTP/1.1 client connection, owned by a pool that hears of its events."""

    def __init__(
        self,
        conn_id: int,
        key: tuple[Any, ...],
        options: ClientOptions,
        on_open: Callable[[Connection], None],
        on_released: Callable[[Connection], None],
        on_closed: Callable[[Connection, CloseReason], None],
    ) -> None:
        self.id = conn_id
        self.key = key
        self.options = options
        self.state = State.CONNECTING
        self.requests = 0
        self.idle_since = 0.0
        self.transport: asyncio.Transport | None = None
        self._on_open = on_open
        self._on_released = on_released
        self._on_closed = on_closed
        self._close_reason: CloseReason | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._fresh_parser = False
        self._ex: Exchange | None = None
        self._loop = asyncio.get_running_loop()
        # Read once: the callbacks below run per header and per body piece.
        self._limit = options.drain_limit
        self._header_timeout = options.response_header_timeout
        self._drain_timeout = options.drain_timeout
        self._keep_alive = not options.disable_keep_alives
        self._leak = options.leak
        self.timed = bool(options.timeout or self._header_timeout or self._drain_timeout)

    def __repr__(self) -> str:
        host = ":".join(str(part) for part in self.key[1:3])
        return f"<Connection #{self.id} {host} {self.state.value} requests={self.requests}>"

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
        before this returns (when nothing could be written)."""
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
            ex.set_phase(self._loop.time(), self._header_timeout, "header")
        t.write(request)

    def expire(self, now: float) -> bool:
        """End the request in flight if its deadline has passed. False when this connection
        needs no more watching (leaked: it will carry nothing more)."""
        ex = self._ex
        if ex is not None and ex.due and now >= ex.due:
            self._on_deadline(ex)
        return self.state is not State.LEAKED

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
        ex.got_bytes = True
        if not ex.headers_done:
            # Keep the head's bytes for Headers to parse lazily: a Python callback per
            # header field would cost more than the rest of the response.
            ex.head = ex.head + data if ex.head else data
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid response: {exc}"), CloseReason.PROTOCOL)
        if self._fresh_parser:
            self._parser = httptools.HttpResponseParser(self)
            self._fresh_parser = False
        if ex.headers_done and ex.done is not None and ex.phase != "drain":
            self._body_goes_on(ex)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self._close_reason or self._lost_reason(exc)
        ex, self._ex = self._ex, None
        self.state = State.CLOSED
        if self.transport is not None:
            self._on_closed(self, reason)  # the pool first: the request's callback may dial
        if ex is not None:
            self._end_with_connection(ex, exc)

    # -- httptools callbacks ------------------------------------------------------------

    def on_headers_complete(self) -> None:
        ex = self._ex
        if ex is None:
            return
        status = self._parser.get_status_code()
        if status < 200:
            return  # interim; its message-complete follows and is skipped too
        ex.status = status
        ex.headers_done = True
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
        if size > self._limit:
            ex.keep(body[: max(self._limit - ex.body_size, 0)])
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
        if ex.headers_done:
            self._complete(ex)
        # else: a 1xx, interim; Headers skips its head

    # -- internals ----------------------------------------------------------------------

    def _complete(self, ex: Exchange) -> None:
        """The response is whole: give the connection back (or close it), then report.
        In that order, so that whoever the report wakes finds the connection idle."""
        self._ex = None
        if self._keep_alive and self._parser.should_keep_alive():
            self.state = State.IDLE
            self.idle_since = time.monotonic()
            self._on_released(self)
        elif self._keep_alive:
            self.close(CloseReason.SERVER_CLOSE)
        else:
            self.close(CloseReason.KEEP_ALIVE_OFF)
        ex.finish()

    def _body_goes_on(self, ex: Exchange) -> None:
        """The body runs on past the read its headers came in: from now on it has the drain
        timeout to end, and the header timeout no longer applies. (Set here, not when the
        headers are complete, because most bodies end in the same read: no clock read.)"""
        if self._drain_timeout:
            ex.set_phase(self._loop.time(), self._drain_timeout, "drain")
        elif ex.phase == "header":
            ex.set_phase(0.0, 0.0, "total")

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

    def _fail(self, error: RequestError, reason: CloseReason) -> None:
        ex, self._ex = self._ex, None
        self.abort(reason)
        if ex is not None:
            ex.fail(error)

    def _end_with_connection(self, ex: Exchange, exc: Exception | None) -> None:
        """The connection is gone with a response in flight: a close-delimited body ends
        here; anything else is an error, the stale kind when the server closed a reused
        connection before any byte came back."""
        ours = self._close_reason
        if ours is not None:
            ex.fail(ConnectionClosed(f"connection closed: {ours.text}"))
        elif ex.headers_done and exc is None and ex.close_delimited:
            ex.finish()
        elif not ex.got_bytes and ex.reused:
            ex.fail(StaleConnection("server closed the reused connection", written=True))
        elif not ex.got_bytes:
            ex.fail(ConnectionClosed(_lost_text("before responding", exc)))
        else:
            where = "during the body" if ex.headers_done else "during the headers"
            ex.fail(ConnectionClosed(_lost_text(where, exc)))

    def _lost_reason(self, exc: Exception | None) -> CloseReason:
        ex = self._ex
        if ex is None:
            return CloseReason.SERVER_IDLE
        if ex.headers_done and exc is None and ex.close_delimited:
            return CloseReason.SERVER_CLOSE
        if not ex.got_bytes and ex.reused:
            return CloseReason.STALE
        return CloseReason.SERVER_RESET

    def _on_deadline(self, ex: Exchange) -> None:
        if ex.phase == "drain":
            self._undrained(ex)
            return
        what = {
            "header": f"no response headers within {self._header_timeout:g}s",
            "total": f"request not complete within {self.options.timeout:g}s",
        }[ex.phase]
        self._fail(TimeoutError_(what), CloseReason.TIMEOUT)


def _lost_text(where: str, exc: Exception | None) -> str:
    how = "reset" if isinstance(exc, ConnectionResetError) else "closed"
    return f"server {how} the connection {where}"
