"""What the pool and the send path know of a connection, whatever it speaks: the one
interface every connection implements (:class:`PooledConnection`), HTTP/1.1
(:class:`tether.engine.connection.Connection`) and HTTP/2
(:class:`tether.engine.h2connection.H2Connection`) alike.

The pool asks a connection only what any protocol can answer: has it room for another
request (:attr:`~PooledConnection.has_room`), is it idle, has it been idle too long
(:meth:`~PooledConnection.has_expired`), is it shared by many requests at once
(:attr:`~PooledConnection.multiplexed`, a class fact the pool's policy reads: an exclusive
connection is handed out and parked, a shared one stays listed while it has room); it
sends on it (:meth:`~PooledConnection.send`) and closes it with a reason. It never asks a
connection's type.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from tether.engine.exchange import HTTP11, Done
from tether.ledger import CloseReason
from tether.model import BodyNeed

if TYPE_CHECKING:
    from tether.engine._compiled import H2Wire, Wire
    from tether.engine.options import ClientOptions
    from tether.engine.request import RequestHead


class State(Enum):
    """Where a connection is in its life."""

    CONNECTING = "CONNECTING"
    IDLE = "IDLE"
    ACTIVE = "ACTIVE"
    LEAKED = "LEAKED"
    CLOSED = "CLOSED"


class ConnectionBusy(RuntimeError):
    """A request was sent on a connection that has no room for it: a bug in whoever sent it."""


Opened = Callable[["PooledConnection"], None]
"""The pool's callbacks: a connection is open, or has room for another request again."""
Closed = Callable[["PooledConnection", CloseReason], None]
"""The pool's callback: a connection is gone, for this reason (called once)."""


class PooledConnection(asyncio.Protocol):
    """One connection as the pool sees it: its id, key and state, the requests it has
    carried, and the questions and orders of the interface (see the module's docstring).
    Its events go to the pool's callbacks: open, room again (``on_released``), closed."""

    protocol: ClassVar[str] = HTTP11
    """What the connection speaks, as ALPN names it."""

    multiplexed: ClassVar[bool] = False
    """Whether it carries many requests at once (the pool shares it instead of handing it
    out, and dials a key's next one only when those it has are full)."""

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
        self.wire: Wire | H2Wire | None = None  # the compiled protocol driving this one, if any
        self._on_open = on_open
        self._on_released = on_released
        self._on_closed = on_closed
        self._close_reason: CloseReason | None = None
        self._loop = asyncio.get_running_loop()
        self._idle_timeout = options.idle_timeout
        self.timed = bool(options.timeout or options.response_header_timeout)
        self.timed |= bool(options.drain_timeout)

    def __repr__(self) -> str:
        host = ":".join(str(part) for part in self.key[1:3])
        return (
            f"<{type(self).__name__} #{self.id} {host} {self.state.value} requests={self.requests}>"
        )

    # -- the questions -----------------------------------------------------------------------

    @property
    def has_room(self) -> bool:
        """Whether a request may be sent on it now."""
        raise NotImplementedError

    @property
    def is_idle(self) -> bool:
        """Open and carrying nothing (since :attr:`idle_since`)."""
        return self.state is State.IDLE

    def has_expired(self, now: float) -> bool:
        """Idle for the idle timeout or longer at ``now`` (``time.monotonic``): to be closed
        rather than sent on."""
        timeout = self._idle_timeout
        return bool(timeout) and self.state is State.IDLE and now - self.idle_since >= timeout

    def settled(self) -> asyncio.Future[PooledConnection] | None:
        """None when the connection may carry requests as soon as it is connected; else a
        future of the connection that will carry them, once the protocol has settled (an
        HTTP/2 connection: the server's SETTINGS, or the HTTP/1.1 connection ALPN chose)."""
        return None

    # -- the orders ----------------------------------------------------------------------------

    def send(self, request: RequestHead, need: BodyNeed, deadline: float, done: Done) -> None:
        """Send ``request``; ``done`` is called once with its response or error, possibly
        before this returns (when nothing could be written). ``deadline``: the whole
        request's, on the loop's clock (0: none). A request that says ``Connection: close``
        is the last this connection carries."""
        raise NotImplementedError

    def check_deadlines(self, now: float) -> bool:
        """End what has run out of time by ``now`` (the loop's clock); False when the
        connection needs no more watching."""
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

    # -- for implementations --------------------------------------------------------------------

    def _now_idle(self) -> None:
        """It carries nothing from now on."""
        self.state = State.IDLE
        self.idle_since = time.monotonic()
