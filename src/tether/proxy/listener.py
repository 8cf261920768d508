"""The proxy's client side: HTTP/1.1 requests read off each client connection with
httptools' request parser (llhttp, as the engine reads responses), answered in order, one
at a time per connection (pipelined ones wait their turn), each handed whole to the
proxy's handler.

A client that misbehaves is answered by the listener itself and never reaches the
upstream: a head or a body that does not arrive within ``request_timeout`` (slowloris) gets
408, a connection that ends inside a request 400, a head over ``max_head`` 431, a body over
``max_body`` 413, what llhttp cannot parse 400, CONNECT 501; each with a sentence, and the
connection is closed after it. Idle keep-alive connections close after ``idle_timeout``.
The deadlines are held by one sweep a listener, not a timer a request.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httptools

from tether.proxy.hops import sentence_response

__all__ = ["ClientConnection", "Incoming", "Limits", "Listener"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEAD_LINE = 4  # what a field's ": " and CRLF add to its name and value


@dataclass(frozen=True, slots=True)
class Limits:
    """What a client may send and how long it may take (seconds; sizes in bytes)."""

    max_head: int = 64 * 1024
    max_body: int = 64 << 20
    request_timeout: float = 10.0
    idle_timeout: float = 60.0
    pipelined: int = 16  # requests read ahead of their answer before reading pauses


@dataclass(slots=True)
class Incoming:
    """One request as the client sent it: the body whole (de-chunked), the fields in order
    with their case."""

    method: str
    target: str
    fields: list[tuple[str, str]]
    body: bytes
    keep_alive: bool

    @property
    def head_only(self) -> bool:
        """Whether its response has no body on the wire (HEAD)."""
        return self.method == "HEAD"


Handler = Callable[["ClientConnection", Incoming], None]
"""Takes a whole request; answers it later with :meth:`ClientConnection.respond`."""


class _Refusal(Exception):
    """Raised inside a parser callback: stop reading, answer this, close."""

    def __init__(self, status: int, reason: str, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.reason = reason
        self.sentence = sentence


class ClientConnection(asyncio.Protocol):
    """One client connection: parse, queue, hand over, answer in order."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Incoming] = deque()
        self.busy = False  # a request of this connection is with the handler
        self.ended = False  # nothing more is read (refused, upgraded, closed, or EOF)
        self.refusal: _Refusal | None = None  # said once what is queued is answered
        self.in_message = False
        self.in_head = False
        self.deadline = 0.0  # the request being read must be whole by then (0: none)
        self.idle_since = 0.0
        self.paused = False
        self._reset_message()

    def _reset_message(self) -> None:
        self._url = b""
        self._fields: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._head_size = 0
        self._body_size = 0
        self._head_seen = 0
        self._length = -1

    def __repr__(self) -> str:
        state = "busy" if self.busy else "reading" if self.in_message else "idle"
        return f"<ClientConnection {state} queued={len(self.queue)}>"

    # asyncio's side
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.idle_since = self.listener.now()
        self.listener.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.transport = None
        self.listener.lost(self)

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if not isinstance(cause, _Refusal):
                raise
            self._refuse(cause)
            return
        except httptools.HttpParserUpgrade:
            # The request asking to switch protocols is whole and queued: it goes upstream
            # without its Upgrade (hop-by-hop) and the connection ends with its answer.
            self.ended = True
            if self.queue:
                self.queue[-1].keep_alive = False
            return
        except httptools.HttpParserError as exc:
            self._refuse(_Refusal(400, "Bad Request", f"malformed request: {exc}"))
            return
        if self.in_head:
            self._head_seen += len(data)
            if self._head_seen > self.listener.limits.max_head:
                self._refuse(self._head_too_large())

    def eof_received(self) -> bool:
        if self.in_message:
            self._refuse(self._ended_early())
        self.ended = True
        # Kept half-open while answers are owed: the client may still read them.
        return bool(self.busy or self.queue or self.refusal)

    def pause_writing(self) -> None:
        self._pause()

    def resume_writing(self) -> None:
        self._resume()

    def _pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.paused and self.transport is not None and not self.ended:
            self.paused = False
            self.transport.resume_reading()

    # httptools' side
    def on_message_begin(self) -> None:
        self.in_message = self.in_head = True
        self.deadline = self.listener.now() + self.listener.limits.request_timeout
        self._reset_message()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + _HEAD_LINE
        self._fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.in_head = False
        limits = self.listener.limits
        if self._head_size > limits.max_head:
            raise self._head_too_large()
        method = self.parser.get_method()
        if method == b"CONNECT":
            raise _Refusal(501, "Not Implemented", "tether capture does not tunnel (CONNECT)")
        for name, value in self._fields:
            key = name.lower()
            if key == "content-length" and value.strip().isdigit():
                self._length = int(value)
                if self._length > limits.max_body:
                    raise self._body_too_large()
            elif key == "expect" and value.strip().lower() == "100-continue":
                self._continue()

    def _continue(self) -> None:
        """Ask for the body (RFC 9110 10.1.1), unless an answer is still owed on this
        connection: an interim response written now would land inside it (the client
        sends the body after its own wait instead)."""
        if not self.busy and not self.queue and self.transport is not None:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.listener.limits.max_body:
            raise self._body_too_large()
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.deadline = 0.0
        incoming = Incoming(
            self.parser.get_method().decode("ascii", "replace"),
            self._url.decode("latin-1"),
            self._fields,
            b"".join(self._body),
            self.parser.should_keep_alive(),
        )
        self.queue.append(incoming)
        if len(self.queue) > self.listener.limits.pipelined:
            self._pause()
        if not self.busy:
            self._next()

    # the sentences
    def _head_too_large(self) -> _Refusal:
        most = self.listener.limits.max_head
        return _Refusal(
            431, "Request Header Fields Too Large", f"the request head is over {most:,} bytes"
        )

    def _body_too_large(self) -> _Refusal:
        most = self.listener.limits.max_body
        return _Refusal(413, "Content Too Large", f"the request body is over {most:,} bytes")

    def _ended_early(self) -> _Refusal:
        if self.in_head:
            return _Refusal(400, "Bad Request", "the connection ended inside a request head")
        length = f" of its {self._length:,}" if self._length >= 0 else ""
        return _Refusal(
            400,
            "Bad Request",
            f"the connection ended inside a request body ({self._body_size:,}{length} bytes)",
        )

    def timed_out(self) -> None:
        """The request being read was not whole by its deadline (the sweep's call)."""
        limit = self.listener.limits.request_timeout
        where = "head" if self.in_head else "body"
        self._refuse(
            _Refusal(
                408, "Request Timeout", f"the request {where} did not arrive within {limit:g}s"
            )
        )

    # answering
    def _refuse(self, refusal: _Refusal) -> None:
        """Read no more; answer what is queued, then this, then close."""
        self.ended = True
        self.in_message = False
        self.deadline = 0.0
        if self.refusal is None:
            self.refusal = refusal
            self.listener.refused[refusal.status] += 1
        if not self.busy and not self.queue:
            self._say_refusal()

    def _say_refusal(self) -> None:
        refusal = self.refusal
        if refusal is not None and self.transport is not None:
            self.transport.write(
                sentence_response(refusal.status, refusal.reason, refusal.sentence, head_only=False)
            )
            self.transport.close()

    def _next(self) -> None:
        if self.queue:
            self.busy = True
            self.listener.handle(self, self.queue.popleft())
            if len(self.queue) <= self.listener.limits.pipelined:
                self._resume()
        elif self.refusal is not None:
            self._say_refusal()
        elif self.ended and self.transport is not None:
            self.transport.close()
        else:
            self.idle_since = self.listener.now()

    def respond(self, data: bytes, *, close: bool) -> None:
        """The answer to the request handed over last; the next one queued goes next (or,
        with ``close``, none: the connection ends after this)."""
        self.busy = False
        transport = self.transport
        if transport is None:
            return  # the client went away while its answer was made
        transport.write(data)
        if close:
            self.ended = True
            self.queue.clear()
            self.refusal = None
            transport.close()
            return
        self._next()

    def idle(self) -> bool:
        """Whether nothing is being read, queued or answered on it."""
        return not (self.busy or self.in_message or self.queue)

    def close(self) -> None:
        """End it now (the listener stopping, or idle too long)."""
        self.ended = True
        if self.transport is not None:
            self.transport.close()


@dataclass(slots=True)
class Listener:
    """The client connections of one listening socket, their limits and their sweep."""

    handle: Handler
    limits: Limits = field(default_factory=Limits)
    now: Callable[[], float] = field(default=lambda: asyncio.get_running_loop().time())
    connections: set[ClientConnection] = field(default_factory=set)
    accepted: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    _server: asyncio.AbstractServer | None = None
    _sweeper: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); the port listened on."""
        loop = asyncio.get_running_loop()
        self.now = loop.time  # the sweep's clock, and each request's deadline
        self._server = await loop.create_server(
            lambda: ClientConnection(self), host, port, backlog=1024
        )
        self._sweep_later()
        port_of: int = self._server.sockets[0].getsockname()[1]
        return port_of

    def opened(self, conn: ClientConnection) -> None:
        """A client connected."""
        self.accepted += 1
        self.connections.add(conn)

    def lost(self, conn: ClientConnection) -> None:
        """A client connection ended."""
        self.connections.discard(conn)

    def _tick(self) -> float:
        return max(0.05, min(1.0, self.limits.request_timeout / 4, self.limits.idle_timeout / 4))

    def _sweep_later(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(self._tick(), self._sweep)

    def _sweep(self) -> None:
        """Hold every connection to its deadlines: the one timer a listener has."""
        now = self.now()
        idle_after = self.limits.idle_timeout
        for conn in list(self.connections):
            if conn.deadline and now >= conn.deadline:
                conn.timed_out()
            elif idle_after and conn.idle() and now - conn.idle_since >= idle_after:
                conn.close()
        self._sweep_later()

    def stop_listening(self) -> None:
        """Take no new connections; close the idle ones (the rest close once answered)."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn.idle():
                conn.close()
            else:
                conn.ended = True

    def close(self) -> None:
        """Stop listening and end every connection."""
        self.stop_listening()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.close()
