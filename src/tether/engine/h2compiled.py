"""The pool's side of a compiled HTTP/2 connection: the same interface as the h2-library
one (:class:`tether.engine.h2connection.H2Connection`), over
:class:`tether.engine._compiled.H2Wire`, which speaks the protocol (frames, HPACK, flow
control) and counts the compiled send path's streams itself.

The wire is the connection's asyncio protocol and its ``wire`` (the send path starts its
compiled jobs there, as on HTTP/1.1); this side keeps what the pool reads (state, the
requests carried, readiness) and what a lost or handed-over connection means, in Python,
where it is said once for every stream. Made only when the extension is built and the run
has a compiled send path.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar, cast

from tether.engine.compiled import native
from tether.engine.connection import Connection
from tether.engine.exchange import Done, Exchange, Handover
from tether.engine.h2common import (
    ERROR_NAMES,
    H2,
    Stream,
    lost_before_settings,
    lost_streams,
    unacked_text,
)
from tether.engine.interface import Closed, Opened, PooledConnection, State
from tether.errors import ConnectError, ProtocolError
from tether.ledger import CloseReason, Streams
from tether.model import BodyNeed

SETTINGS_TIMEOUT = ERROR_NAMES.index("settings_timeout")

if TYPE_CHECKING:
    from tether.engine._compiled import H2Wire, Path
    from tether.engine.options import ClientOptions
    from tether.engine.request import RequestHead


class CompiledH2Connection(PooledConnection):
    """An HTTP/2 client connection on the compiled path (see the module's docstring)."""

    protocol: ClassVar[str] = H2
    multiplexed: ClassVar[bool] = True

    def __init__(
        self,
        conn_id: int,
        key: tuple[Any, ...],
        options: ClientOptions,
        on_open: Opened,
        on_released: Opened,
        on_closed: Closed,
        counts: Streams,
        path: Path,
    ) -> None:
        assert native is not None
        self.h2: H2Wire = native.H2Wire(
            self,
            path,
            counts,
            str(key[0]),
            options.timeout,
            options.response_header_timeout,
            options.drain_timeout,
            options.max_response_header_bytes,
            options.max_body,
        )
        super().__init__(conn_id, key, options, on_open, on_released, on_closed)
        self.counts = counts
        self.path = path
        self.wire = self.h2
        self.ready: asyncio.Future[PooledConnection] = self._loop.create_future()
        """Resolved when the server's first SETTINGS are in (with this connection), or with
        the HTTP/1.1 connection that took over when ALPN picked ``http/1.1``."""
        self._unacked: asyncio.TimerHandle | None = None  # ends it if ours stay unacked

    @property
    def requests(self) -> int:
        """Requests carried: counted by the wire, which opens the streams."""
        return self.h2.carried

    @requests.setter
    def requests(self, value: int) -> None:
        self.h2.carried = value

    # -- the pool's side -------------------------------------------------------------------

    @property
    def has_room(self) -> bool:
        return self.h2.has_room

    def settled(self) -> asyncio.Future[PooledConnection]:
        return self.ready

    def send(self, request: RequestHead, need: BodyNeed, deadline: float, done: Done) -> None:
        ex = Stream(self.id, self.requests > 0, request.method, need, done, deadline)
        self.h2.send_python(ex, request)

    def check_deadlines(self, now: float) -> bool:
        self.h2.check_deadlines(now)
        return self.state is not State.CLOSED

    def close(self, reason: CloseReason) -> None:
        """Say GOAWAY, then close (the first reason given wins)."""
        self.h2.goaway()
        super().close(reason)

    def abort(self, reason: CloseReason) -> None:
        self.h2.closed_by_us()
        super().abort(reason)

    def adopt(self, handover: Handover, done: Done) -> None:
        """Take over the compiled stream being handed over: reported to ``done`` from
        here, as a Python stream of the wire's."""
        self.h2.adopted(handover.exchange(self.id, done, Stream))

    # -- the wire's side ---------------------------------------------------------------------

    def made(self, transport: asyncio.Transport) -> None:
        """The connection speaks HTTP/2: our preface and SETTINGS are out."""
        self.transport = transport
        self.counts.connections += 1
        self._on_open(self)

    def settled_now(self) -> None:
        """The server's first SETTINGS are in: requests may go, and it has the settings
        timeout from now to acknowledge ours (as on the h2-library path)."""
        self._now_idle()
        if not self.ready.done():
            self.ready.set_result(self)
        timeout = self.options.settings_timeout
        if timeout and not self.h2.settings_acked:
            self._unacked = self._loop.call_later(timeout, self._settings_timed_out)

    def settings_acked(self) -> None:
        if self._unacked is not None:
            self._unacked.cancel()
            self._unacked = None

    def _settings_timed_out(self) -> None:
        self._unacked = None
        error = ProtocolError(unacked_text(self.options.settings_timeout))
        self.h2.end(SETTINGS_TIMEOUT, error)

    def hand_over(self, transport: asyncio.Transport) -> None:
        """ALPN picked HTTP/1.1: an HTTP/1.1 connection (compiled, as the path's are) takes
        the transport over, with this one's id and the pool's callbacks; this one never
        opened, as far as anyone counts."""
        conn = Connection(
            self.id, self.key, self.options, self._on_open, self._on_released, self._on_closed
        )
        assert native is not None
        conn.wire = native.Wire(conn, self.path)
        protocol = cast(asyncio.Protocol, conn.wire)  # it is one, compiled
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        self.transport = None
        self.state = State.CLOSED
        self.ready.set_result(conn)

    def lost(self, exc: Exception | None, streams: list[Exchange]) -> None:
        """The connection is gone, with these streams on it (as the h2-library connection
        decides: :func:`~tether.engine.h2common.lost_streams`)."""
        draining = self.h2.draining
        reason, failed = lost_streams(self._close_reason, draining, streams, exc)
        self.state = State.CLOSED
        self.settings_acked()  # (no timer left behind)
        if not self.ready.done():
            self.ready.set_exception(ConnectError(lost_before_settings(exc)))
            self.ready.exception()  # retrieved: the pool asks only while it waits
        if self.transport is not None:
            self._on_closed(self, reason)
        for ex, error in failed:
            ex.fail(error)
