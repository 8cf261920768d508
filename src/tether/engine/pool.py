"""The connection pool: which connection carries the next request, and all the accounting.

Connections are keyed by (scheme, host, port, TLS settings), as Go's Transport and aiohttp's
connector do. The pool alone decides when a connection is opened, reused, parked or closed,
and tells the ledger each time. It asks each connection only what the one interface says
(:class:`~tether.engine.interface.PooledConnection`), never its type; what protocol a new
connection speaks is the options' to say (and, over TLS, the server's, by ALPN).

Its policy, by the one fact of a protocol it reads (``multiplexed``):

- An exclusive connection (HTTP/1.1) carries one request at a time: it is handed out, and
  parked when its response is in; the most recently parked is taken first (the least likely
  to have gone stale), and a key keeps at most ``max_idle_per_host`` parked.
- A multiplexed connection (HTTP/2) is shared: it stays listed while it is open, and a
  request takes the oldest of its key with room for one more (new ones take only the
  overflow). While such a dial is under way, the requests that find no room wait for it
  rather than each dialing its own: N requests at once make one connection, not N (Go's
  HTTP/2 transport dials once per key likewise). A key whose server picked HTTP/1.1 by
  ALPN is dialed as an exclusive one from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from tether.engine.compiled import native
from tether.engine.connection import Connection
from tether.engine.interface import PooledConnection, State
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
    """Pooled connections for any number of hosts, over whichever protocol each speaks."""

    def __init__(self, options: ClientOptions, ledger: Ledger, path: Path | None = None) -> None:
        self.options = options
        self.ledger = ledger
        self.path = path  # the compiled send path its connections are driven by
        self._tls_key = (options.insecure, options.cacert)
        per_host = options.max_idle_per_host
        self._max_idle_per_host = GO_DEFAULT_MAX_IDLE_PER_HOST if per_host is None else per_host
        self._max_idle = options.max_idle or float("inf")
        self._idle_timeout = options.idle_timeout
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Key, list[PooledConnection]] = {}  # exclusive, parked, oldest first
        self._idle_total = 0
        self._shared: dict[Key, list[PooledConnection]] = {}  # multiplexed, open, oldest first
        self._dialing: dict[Key, asyncio.Future[ConnectError | None]] = {}  # multiplexed ones
        self._exclusive: set[Key] = set()  # keys whose server picked HTTP/1.1 by ALPN
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

        1. one with room (see :meth:`take_idle`), unless ``fresh`` (a retry after a stale
           one) asks for a new dial; a multiplexed connection that lost a request by
           closing or going away never has room again, so one that has is fit for a retry
           (a stream refused alone may go again on its own connection: the server refused
           that stream, not the connection);
        2. the multiplexed connection being dialed for the key, once it is ready;
        3. a new connection, while the per-host limit allows;
        4. otherwise wait for room (a response, a close) and look again.
        """
        key = self.key_of(url)
        while not self._closing:
            shares = self._shares(url.scheme, key)  # (again each time: ALPN may have said no)
            if not fresh or shares:
                conn = self.take_idle(key)
                if conn is not None:
                    return conn
            dialing = self._dialing.get(key)
            if dialing is not None:
                await self._join(dialing, deadline)
                continue
            limit = self.options.max_conns_per_host
            if not limit or self._open.get(key, 0) < limit:
                return await self._dial(url, key, deadline, shares)
            handed = await self._wait(key, deadline)
            if handed is not None and handed.has_room:
                return handed
        raise ConnectError("the client is closed")

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
        """Whether a connection for ``key`` has room now (it may yet turn out stale)."""
        return bool(self._idle.get(key)) or (bool(self._shared) and self._room(key) is not None)

    def take_idle(self, key: Key) -> PooledConnection | None:
        """A connection for ``key`` with room now, or None (then dial or wait: see
        :meth:`acquire`): the oldest shared one with room, else the most recently parked
        exclusive one. Those found past their idle timeout are closed on the way.
        Synchronous, for the senders' callback path."""
        if self._shared:
            shared = self._room(key)
            if shared is not None:
                return shared
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        timeout = self._idle_timeout
        while idle:
            conn = idle.pop()
            self._idle_total -= 1
            # (conn.has_expired, written out for a parked one: this runs per request)
            if timeout and now - conn.idle_since >= timeout:
                conn.close(CloseReason.IDLE_TIMEOUT)
            elif conn.has_room:
                return conn
        return None

    def _room(self, key: Key) -> PooledConnection | None:
        """The oldest shared connection for ``key`` with room for one more request."""
        shared = self._shared.get(key)
        if not shared:
            return None
        now = time.monotonic()
        for conn in shared:
            if conn.has_expired(now):
                conn.close(CloseReason.IDLE_TIMEOUT)
            elif conn.has_room:
                return conn
        return None

    def _shares(self, scheme: str, key: Key) -> bool:
        """Whether a new connection for ``key`` may be multiplexed: the options speak HTTP/2
        for the scheme, and its server has not picked HTTP/1.1."""
        return self.options.speaks_h2(scheme) and key not in self._exclusive

    async def _wait(self, key: Key, deadline: float) -> PooledConnection | None:
        future: asyncio.Future[PooledConnection | None] = self.loop.create_future()
        self._waiters.setdefault(key, deque()).append(future)
        budget = deadline - self.loop.time() if deadline else None
        try:
            return await asyncio.wait_for(future, budget)
        except TimeoutError:
            raise TimeoutError_("no connection free within the timeout") from None

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

    # -- dialing ----------------------------------------------------------------------------

    async def _dial(self, url: Url, key: Key, deadline: float, shares: bool) -> PooledConnection:
        """A new connection for ``key``; one that may be multiplexed is dialed once for the
        requests that come meanwhile (see :meth:`_join`)."""
        if not shares:
            return await self._connect(url, key, deadline, shares)
        told: asyncio.Future[ConnectError | None] = self.loop.create_future()
        self._dialing[key] = told
        try:
            return await self._connect(url, key, deadline, shares)
        except ConnectError as exc:  # what a dial fails with, whatever failed
            told.set_result(exc)
            raise
        finally:
            del self._dialing[key]
            if not told.done():
                told.set_result(None)

    async def _connect(self, url: Url, key: Key, deadline: float, shares: bool) -> PooledConnection:
        conn = self._connection(key, shares)
        self._open[key] = self._open.get(key, 0) + 1
        tls = self._tls() if url.scheme == "https" else None
        protocol: asyncio.Protocol = conn
        if conn.wire is not None:
            protocol = cast(asyncio.Protocol, conn.wire)  # it is one, compiled
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: protocol,
                    url.host,
                    url.port,
                    ssl=tls,
                    server_hostname=url.host if tls else None,
                ),
                self.connect_budget(deadline),
            )
        except (OSError, TimeoutError) as exc:
            self._dial_failed(key)
            raise ConnectError(_connect_text(url, exc)) from None
        return await self._settled(conn, url, deadline)

    def _connection(self, key: Key, shares: bool) -> PooledConnection:
        """The protocol object for a new connection: HTTP/2 when it may be multiplexed (it
        hands over to HTTP/1.1 where ALPN picks that), else HTTP/1.1; compiled when there is
        a compiled path, else on the h2 library (imported only then: a run over HTTP/1.1,
        or a compiled one, does not load h2)."""
        conn_id, self._next_id = self._next_id, self._next_id + 1
        callbacks = (self._opened, self._released, self._closed)
        if shares and self.path is not None:
            from tether.engine.h2compiled import CompiledH2Connection

            return CompiledH2Connection(
                conn_id, key, self.options, *callbacks, self.ledger.h2, self.path
            )
        if shares:
            from tether.engine.h2connection import H2Connection

            return H2Connection(conn_id, key, self.options, *callbacks, self.ledger.h2)
        conn = Connection(conn_id, key, self.options, *callbacks)
        if self.path is not None:
            conn.wire = native_wire(conn, self.path)
        return conn

    async def _settled(self, conn: PooledConnection, url: Url, deadline: float) -> PooledConnection:
        """The connection that carries requests once the protocol has settled; a
        multiplexed one is listed for its key to share."""
        settling = conn.settled()
        if settling is None:
            return conn
        try:
            ready = await asyncio.wait_for(asyncio.shield(settling), self.connect_budget(deadline))
        except TimeoutError:
            conn.abort(CloseReason.TIMEOUT)
            raise ConnectError(f"no HTTP/2 SETTINGS from {url.host}:{url.port} in time") from None
        if ready.multiplexed:
            self._shared.setdefault(ready.key, []).append(ready)
        else:
            self._exclusive.add(ready.key)
        return ready

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
        """A connection has room for another request again: hand it to a waiter; else park
        an exclusive one (or close it when the idle pool is full); a shared one stays
        listed, and may now idle past the timeout."""
        if self._handed_to_waiter(conn):
            return
        if conn.multiplexed:
            if conn.is_idle:
                self._schedule_sweep()
            return
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        if len(idle) >= self._max_idle_per_host or self._idle_total >= self._max_idle:
            conn.close(CloseReason.POOL_FULL)
            return
        idle.append(conn)
        self._idle_total += 1
        if self._sweep is None:  # (checked here: this runs once a response)
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
        """A connection (or a dial) is gone: free its slot and wake one waiter to look
        again."""
        self._open[key] -= 1
        if conn is not None:
            listed = self._shared.get(key) if conn.multiplexed else self._idle.get(key)
            if listed and conn in listed:
                listed.remove(conn)
                if not conn.multiplexed:
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
            self._ticker = self.loop.call_later(DEADLINE_TICK, self._tick)

    def _tick(self) -> None:
        self._ticker = None
        now = self.loop.time()
        for conn in list(self._watched):
            if not conn.check_deadlines(now):
                self._watched.discard(conn)
        if self._watched:
            self._ticker = self.loop.call_later(DEADLINE_TICK, self._tick)

    # -- idle timeout -------------------------------------------------------------------------

    def _schedule_sweep(self) -> None:
        """One timer for all idle connections, due when the first of them runs out. A
        connection idle since later runs out later (one timeout for all), so a park never
        needs the timer sooner: the hot path sets no timer of its own. Each key's parked
        list is in the order its connections were parked, oldest first."""
        if not self._idle_timeout or self._sweep is not None or self._closing:
            return
        first = self._idle_sinces()
        if first:
            due = min(first) + self._idle_timeout - time.monotonic()
            self._sweep = self.loop.call_later(max(due, 0.0) + IDLE_SLACK, self._sweep_idle)

    def _idle_sinces(self) -> list[float]:
        """When each key's longest-parked connection, and each idle shared one, went idle."""
        parked = [idle[0].idle_since for idle in self._idle.values() if idle]
        shared = [c.idle_since for c in self._all_shared() if c.is_idle and c.has_room]
        return [*parked, *shared]

    def _all_shared(self) -> list[PooledConnection]:
        return [conn for shared in self._shared.values() for conn in shared]

    def _sweep_idle(self) -> None:
        """Close the idle connections past the idle timeout, so that they do not sit open on
        the server either (parked ones taken off their lists now, as :meth:`take_idle`
        takes them, not when their close is heard of), and wake again for the next to run
        out."""
        self._sweep = None
        now = time.monotonic()
        for conn in self._all_shared():
            if conn.has_expired(now):
                conn.close(CloseReason.IDLE_TIMEOUT)
        for idle in self._idle.values():
            while idle and idle[0].has_expired(now):
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
