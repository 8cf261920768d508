"""The connection pool: which connection carries the next request, and all the accounting.

Connections are keyed by (scheme, host, port, TLS settings), as Go's Transport and aiohttp's
connector do. The pool alone decides when a connection is opened, reused, parked or closed,
and tells the ledger each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from tether.engine.compiled import native
from tether.engine.connection import Connection, PooledConnection, State
from tether.engine.options import GO_DEFAULT_MAX_IDLE_PER_HOST, ClientOptions
from tether.engine.request import Url
from tether.errors import ConnectError, TimeoutError_
from tether.ledger import CloseReason, Ledger

if TYPE_CHECKING:
    from tether.engine._compiled import Path, Wire

Key = tuple[Any, ...]

DEADLINE_TICK = 0.02
"""How often deadlines are checked: timeouts fire up to this much late."""

IDLE_SLACK = 0.002
"""How late after its idle timeout an idle connection is closed, at least: the loop's timers
may fire a millisecond early by ``time.monotonic``, the idle clock, and a sweep that fires
early finds nothing to close and must wake again."""


def make_ssl_context(options: ClientOptions) -> ssl.SSLContext:
    """Verification on by default; ``cacert`` trusts that CA file instead of the system's.
    ALPN offers ``h2`` first when the options speak HTTP/2 over TLS, then ``http/1.1``."""
    context = ssl.create_default_context(cafile=options.cacert)
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"] if options.speaks_h2("https") else ["http/1.1"])
    return context


class Pool:
    """Pooled HTTP/1.1 connections for any number of hosts (for HTTP/2:
    :class:`tether.engine.h2pool.H2Pool`)."""

    def __init__(self, options: ClientOptions, ledger: Ledger, path: Path | None = None) -> None:
        self.options = options
        self.ledger = ledger
        self.path = path  # the compiled send path its connections are driven by, if any
        self._tls_key = (options.insecure, options.cacert)
        per_host = options.max_idle_per_host
        self._max_idle_per_host = GO_DEFAULT_MAX_IDLE_PER_HOST if per_host is None else per_host
        self._max_idle = options.max_idle or float("inf")
        self._idle_timeout = options.idle_timeout
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Key, list[PooledConnection]] = {}
        self._idle_total = 0
        self._open: dict[Key, int] = {}  # connecting or open, busy or idle, per key
        self._waiters: dict[Key, deque[asyncio.Future[PooledConnection | None]]] = {}
        self._live: set[PooledConnection] = set()
        self._next_id = 1
        self._sweep: asyncio.TimerHandle | None = None
        self._watched: set[PooledConnection] = set()  # open ones whose requests have deadlines
        self._ticker: asyncio.TimerHandle | None = None
        self._all_closed: asyncio.Event | None = None
        self._closing = False
        self.loop = asyncio.get_running_loop()

    def __repr__(self) -> str:
        return f"<Pool live={len(self._live)} idle={self._idle_total}>"

    def connections(self) -> list[PooledConnection]:
        """Every open connection (idle, busy or leaked), oldest first."""
        return sorted(self._live, key=lambda conn: conn.id)

    def key_of(self, url: Url) -> Key:
        """The pool key of a URL: TLS settings matter only for https."""
        return (*url.key, self._tls_key if url.scheme == "https" else None)

    async def acquire(self, url: Url, deadline: float, *, fresh: bool = False) -> PooledConnection:
        """A connection for ``url``, in the order Go's Transport chooses:

        1. the most recently parked idle connection (the least likely to have gone stale),
           unless ``fresh`` (a retry after a stale one) asks for a new dial;
        2. a new connection, while the per-host limit allows;
        3. otherwise wait for a connection to be released or closed.
        """
        if self._closing:
            raise ConnectError("the client is closed")
        key = self.key_of(url)
        if not fresh:
            conn = self.take_idle(key)
            if conn is not None:
                return conn
        limit = self.options.max_conns_per_host
        if not limit or self._open.get(key, 0) < limit:
            return await self._dial(url, key, deadline)
        handed = await self._wait(key, deadline)
        return handed if handed is not None else await self._dial(url, key, deadline)

    async def close(self, wait: float = 2.0) -> None:
        """Close every connection (leaked ones included) and wait, bounded, until each has
        reported its close to the ledger."""
        self._closing = True
        for timer in (self._sweep, self._ticker):
            if timer is not None:
                timer.cancel()
        for conn in list(self._live):
            leaked = conn.state is State.LEAKED
            conn.abort(CloseReason.LEAKED) if leaked else conn.close(CloseReason.SHUTDOWN)
        if self._live:
            self._all_closed = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), wait)

    # -- choosing ---------------------------------------------------------------------------

    def has_idle(self, key: Key) -> bool:
        """Whether a connection for ``key`` is parked (it may yet turn out stale)."""
        return bool(self._idle.get(key))

    def take_idle(self, key: Key) -> PooledConnection | None:
        """The most recently parked usable connection for ``key``, or None (then dial or
        wait: see :meth:`acquire`). Synchronous, for the runner's callback path."""
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        timeout = self._idle_timeout
        while idle:
            conn = idle.pop()
            self._idle_total -= 1
            if timeout and now - conn.idle_since >= timeout:
                conn.close(CloseReason.IDLE_TIMEOUT)
            elif conn.usable:
                return conn
        return None

    async def _wait(self, key: Key, deadline: float) -> PooledConnection | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PooledConnection | None] = loop.create_future()
        self._waiters.setdefault(key, deque()).append(future)
        budget = deadline - loop.time() if deadline else None
        try:
            return await asyncio.wait_for(future, budget)
        except TimeoutError:
            raise TimeoutError_("no connection free within the timeout") from None

    def _connection(self, url: Url, key: Key, conn_id: int) -> PooledConnection:
        """The protocol object for a new connection to ``url``."""
        return Connection(conn_id, key, self.options, self._opened, self._released, self._closed)

    async def _dial(self, url: Url, key: Key, deadline: float) -> PooledConnection:
        loop = asyncio.get_running_loop()
        conn = self._connection(url, key, self._next_id)
        self._next_id += 1
        self._open[key] = self._open.get(key, 0) + 1
        tls = self._tls() if url.scheme == "https" else None
        budget = self.connect_budget(deadline)
        protocol: asyncio.Protocol = conn
        if self.path is not None:
            assert isinstance(conn, Connection)  # the compiled path is HTTP/1.1's
            conn.wire = native_wire(conn, self.path)
            protocol = cast(asyncio.Protocol, conn.wire)  # it is one, compiled
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: protocol,
                    url.host,
                    url.port,
                    ssl=tls,
                    server_hostname=url.host if tls else None,
                ),
                budget,
            )
        except (OSError, TimeoutError) as exc:
            self._dial_failed(key)
            raise ConnectError(_connect_text(url, exc)) from None
        return conn

    def connect_budget(self, deadline: float) -> float | None:
        """The time a dial may take: the connect timeout, within the request's deadline."""
        budget = self.options.connect_timeout or None
        if deadline:
            budget = min(budget or 1e9, max(deadline - self.loop.time(), 0.0))
        return budget

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = make_ssl_context(self.options)
        return self._ssl

    # -- connection events ------------------------------------------------------------------

    def _opened(self, conn: PooledConnection) -> None:
        self._live.add(conn)
        self.ledger.on_open()
        if conn.timed:
            self._watch(conn)

    def _released(self, conn: PooledConnection) -> None:
        """A connection finished a response and may carry another: hand it to a waiter,
        park it, or close it when the idle pool is full."""
        if self._handed_to_waiter(conn):
            return
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        if len(idle) >= self._max_idle_per_host or self._idle_total >= self._max_idle:
            conn.close(CloseReason.POOL_FULL)
            return
        idle.append(conn)
        self._idle_total += 1
        if self._sweep is None and self._idle_timeout:
            self._schedule_sweep()

    def _handed_to_waiter(self, conn: PooledConnection) -> bool:
        """Give ``conn`` to the first request still waiting for its key, if any."""
        waiters = self._waiters.get(conn.key)
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(conn)
                return True
        return False

    def _closed(self, conn: PooledConnection, reason: CloseReason) -> None:
        self._live.discard(conn)
        self._watched.discard(conn)
        self.ledger.on_close(reason, conn.protocol, conn.requests)
        self._forget(conn.key, conn)
        if self._all_closed is not None and not self._live:
            self._all_closed.set()

    def _dial_failed(self, key: Key) -> None:
        self.ledger.connect_failed += 1
        self._forget(key, None)

    def _forget(self, key: Key, conn: PooledConnection | None) -> None:
        """A connection (or a dial) is gone: free its slot and wake one waiter to dial."""
        self._open[key] -= 1
        idle = self._idle.get(key)
        if conn is not None and idle and conn in idle:
            idle.remove(conn)
            self._idle_total -= 1
        waiters = self._waiters.get(key)
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return

    # -- deadlines -------------------------------------------------------------------------

    def _watch(self, conn: PooledConnection) -> None:
        """Check ``conn``'s deadlines while it lives. One coarse ticker checks every open
        connection: a timer per request would cost more than the request's own parsing."""
        self._watched.add(conn)
        if self._ticker is None:
            loop = asyncio.get_running_loop()
            self._ticker = loop.call_later(DEADLINE_TICK, self._tick)

    def _tick(self) -> None:
        self._ticker = None
        now = asyncio.get_running_loop().time()
        for conn in list(self._watched):
            if not conn.expire(now):
                self._watched.discard(conn)
        if self._watched:
            self._ticker = asyncio.get_running_loop().call_later(DEADLINE_TICK, self._tick)

    # -- idle timeout -------------------------------------------------------------------------

    def _schedule_sweep(self) -> None:
        """One timer for all parked connections, due when the first of them runs out. A
        connection parked later runs out later (one timeout for all), so a park never needs
        the timer sooner: the hot path sets no timer of its own. Each key's list is in the
        order its connections were parked, oldest first."""
        if not self._idle_timeout or self._sweep is not None or self._closing:
            return
        first = self._idle_sinces()
        if first:
            due = min(first) + self._idle_timeout - time.monotonic()
            self._sweep = self.loop.call_later(max(due, 0.0) + IDLE_SLACK, self._sweep_idle)

    def _idle_sinces(self) -> list[float]:
        """When each key's longest-idle connection went idle."""
        return [idle[0].idle_since for idle in self._idle.values() if idle]

    def _sweep_idle(self) -> None:
        """Close the parked connections past the idle timeout, so that they do not sit open
        on the server either (taken off the idle lists now, as :meth:`take_idle` takes
        them, not when their close is heard of), and wake again for the next to run out."""
        self._sweep = None
        now = time.monotonic()
        for idle in self._idle.values():
            while idle and now - idle[0].idle_since >= self._idle_timeout:
                conn = idle.pop(0)
                self._idle_total -= 1
                conn.close(CloseReason.IDLE_TIMEOUT)
        self._schedule_sweep()


def native_wire(conn: Connection, path: Path) -> Wire:
    """The compiled protocol driving ``conn`` (only made when the extension is built)."""
    assert native is not None
    wire: Wire = native.Wire(conn, path)
    return wire


def _connect_text(url: Url, exc: BaseException) -> str:
    where = f"{url.host}:{url.port}"
    if isinstance(exc, TimeoutError):
        return f"connect to {where} timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS to {where}: certificate verification failed ({exc.verify_message})"
    return (
        f"connect to {where} failed: {exc.strerror or exc}"
        if isinstance(exc, OSError)
        else str(exc)
    )
