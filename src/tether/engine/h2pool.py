"""The pool of a client that speaks HTTP/2 (``--http2``, ``--http2-prior-knowledge``).

An HTTP/2 connection carries many requests at once, so the pool shares it instead of handing
it out: a request takes the oldest connection of its key with room for one more stream, and
a key's next connection is dialed only when every one it has is full (at the server's
SETTINGS_MAX_CONCURRENT_STREAMS) or going away (GOAWAY). While one is being dialed, the
requests that find none with room wait for it rather than each dialing its own: N requests
at once make one connection, not N (Go's HTTP/2 transport dials once per key likewise).

A connection whose server picked HTTP/1.1 by ALPN is pooled as :class:`Pool` pools any, and
so is every later one of its key: that server does not speak HTTP/2.

Chosen once per client (see :class:`tether.engine.client.Client`), so that a run over
HTTP/1.1 carries none of this, and kept apart from :mod:`tether.engine.pool` so that such a
run does not load h2 either.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from tether.engine.connection import PooledConnection, State
from tether.engine.h2connection import H2Connection
from tether.engine.options import ClientOptions
from tether.engine.pool import Key, Pool
from tether.engine.request import Url
from tether.errors import ConnectError, TimeoutError_
from tether.ledger import CloseReason, Ledger


class H2Pool(Pool):
    """Shared HTTP/2 connections (and, where a server picks HTTP/1.1, pooled HTTP/1.1 ones)
    for any number of hosts."""

    def __init__(self, options: ClientOptions, ledger: Ledger) -> None:
        super().__init__(options, ledger)  # no compiled path: it speaks HTTP/1.1 only
        self._shared: dict[Key, list[H2Connection]] = {}  # oldest first
        self._dialing: dict[Key, asyncio.Future[ConnectError | None]] = {}
        self._http11: set[Key] = set()  # keys whose server picked HTTP/1.1

    def has_idle(self, key: Key) -> bool:
        return self._room(key) is not None or super().has_idle(key)

    def take_idle(self, key: Key) -> PooledConnection | None:
        """The oldest HTTP/2 connection for ``key`` with room for a stream (new ones take
        only the overflow), else a parked HTTP/1.1 one, else None."""
        conn = self._room(key)
        return conn if conn is not None else super().take_idle(key)

    async def acquire(self, url: Url, deadline: float, *, fresh: bool = False) -> PooledConnection:
        """A connection for ``url``: one with room; else the one being dialed, once it is
        ready; else a new dial (or, at ``max_conns_per_host``, a place freed on one).

        ``fresh`` (a retry) asks for no connection that was open before, on HTTP/1.1. An
        HTTP/2 connection that lost a request by closing or going away never has room
        again, so one that has is fit for the retry (a stream refused alone, with
        REFUSED_STREAM, may go again on its own connection: the server refused that
        stream, not the connection)."""
        key = self.key_of(url)
        while not self._closing:
            if key in self._http11 or not self.options.speaks_h2(url.scheme):
                return await super().acquire(url, deadline, fresh=fresh)
            conn = self._room(key)
            if conn is not None:
                return conn
            dialing = self._dialing.get(key)
            if dialing is not None:
                await self._join(dialing, deadline)
                continue
            limit = self.options.max_conns_per_host
            if limit and self._open.get(key, 0) >= limit:
                await self._wait(key, deadline)  # a stream ended, or a connection closed
                continue
            return await self._dial_once(url, key, deadline)
        raise ConnectError("the client is closed")

    # -- dialing -------------------------------------------------------------------------

    def _connection(self, url: Url, key: Key, conn_id: int) -> PooledConnection:
        if not self.options.speaks_h2(url.scheme):
            return super()._connection(url, key, conn_id)
        return H2Connection(
            conn_id,
            key,
            self.options,
            self._opened,
            self._released,
            self._closed,
            self.ledger.h2,
        )

    async def _dial_once(self, url: Url, key: Key, deadline: float) -> PooledConnection:
        """Dial for ``key``, the requests that come meanwhile waiting for this one dial."""
        told: asyncio.Future[ConnectError | None] = self.loop.create_future()
        self._dialing[key] = told
        try:
            conn = await self._dial(url, key, deadline)
        except ConnectError as exc:  # what a dial fails with, whatever failed
            told.set_result(exc)
            raise
        finally:
            del self._dialing[key]
            if not told.done():
                told.set_result(None)
        return conn

    async def _join(self, dialing: asyncio.Future[ConnectError | None], deadline: float) -> None:
        """Wait for another request's dial; its failure is this request's too (one refused
        dial says what a storm of them would)."""
        budget = deadline - self.loop.time() if deadline else None
        try:
            failed = await asyncio.wait_for(asyncio.shield(dialing), budget)
        except TimeoutError:
            raise TimeoutError_("no connection free within the timeout") from None
        if failed is not None:
            raise ConnectError(str(failed))

    async def _dial(self, url: Url, key: Key, deadline: float) -> PooledConnection:
        """A dial, then (HTTP/2) the server's SETTINGS, or the HTTP/1.1 connection that took
        over when ALPN picked it."""
        conn = await super()._dial(url, key, deadline)
        if not isinstance(conn, H2Connection):
            return conn
        try:
            handed = await asyncio.wait_for(
                asyncio.shield(conn.ready), self.connect_budget(deadline)
            )
        except TimeoutError:
            conn.abort(CloseReason.TIMEOUT)
            raise ConnectError(f"no HTTP/2 SETTINGS from {url.host}:{url.port} in time") from None
        if handed is not None:
            self._http11.add(key)
            return handed
        self._shared.setdefault(key, []).append(conn)
        return conn

    # -- connection events -----------------------------------------------------------------

    def _released(self, conn: PooledConnection) -> None:
        """A stream ended on an HTTP/2 connection (a place is free): wake one request waiting
        for one. An HTTP/1.1 connection is parked as the base pool parks it."""
        if not isinstance(conn, H2Connection):
            super()._released(conn)
            return
        if self._handed_to_waiter(conn):
            return
        if conn.state is State.IDLE and self._sweep is None:
            self._schedule_sweep()  # its last stream ended: it may now idle past the timeout

    def _idle_sinces(self) -> list[float]:
        idle = [c.idle_since for c in self._all_shared() if c.state is State.IDLE and c.usable]
        return [*super()._idle_sinces(), *idle]

    def _sweep_idle(self) -> None:
        """Close the HTTP/2 connections that have carried nothing for the idle timeout, as
        the base pool closes its parked ones (which it then does, and wakes again)."""
        now = time.monotonic()
        for conn in self._all_shared():
            if conn.state is State.IDLE and now - conn.idle_since >= self._idle_timeout:
                conn.close(CloseReason.IDLE_TIMEOUT)
        super()._sweep_idle()

    def _all_shared(self) -> list[H2Connection]:
        return [conn for shared in self._shared.values() for conn in shared]

    def _closed(self, conn: PooledConnection, reason: CloseReason) -> None:
        if isinstance(conn, H2Connection):
            shared = self._shared.get(conn.key)
            if shared is not None:
                with contextlib.suppress(ValueError):
                    shared.remove(conn)
        super()._closed(conn, reason)

    # -- choosing ----------------------------------------------------------------------------

    def _room(self, key: Key) -> H2Connection | None:
        """The oldest HTTP/2 connection for ``key`` with room for one more stream. One past
        its idle timeout is closed on the way."""
        shared = self._shared.get(key)
        if not shared:
            return None
        timeout = self._idle_timeout
        for conn in shared:
            if not conn.usable:
                continue
            if (
                timeout
                and conn.state is State.IDLE
                and time.monotonic() - conn.idle_since >= timeout
            ):
                conn.close(CloseReason.IDLE_TIMEOUT)
                continue
            return conn
        return None
