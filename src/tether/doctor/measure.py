"""The doctor's measurements, each on connections of its own through tether's client. Each
probe says when it starts and ends through a callback (:data:`OnProbe`): what is shown of
that is the command's business, never this module's."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from tether.doctor import MAX_IDLE_WAIT, MAX_REQUESTS
from tether.engine.client import Client
from tether.engine.options import ClientOptions
from tether.ledger import CloseReason
from tether.model import Outcome, Record

__all__ = ["Findings", "OnProbe", "Probe", "examine"]


@dataclass(frozen=True, slots=True)
class Probe:
    """One measurement as it is shown while it runs: what it finds out, and what bounds it
    (``limit`` seconds or requests: ``unit``)."""

    name: str
    limit: float
    unit: Literal["s", "requests"]


OnProbe = Callable[[Probe, bool], None]
"""Called as each probe starts (``finished`` False) and as it ends, however it ends (True).
The idle wait runs beside the other probes: two can be running at once."""


@dataclass(slots=True)
class Findings:
    """What the server did. ``None`` where it could not be measured."""

    url: str
    status: int = 0
    error: str | None = None
    server_header: str | None = None  # the first response's Server header, if any
    keep_alive: bool = False
    requests_per_connection: int | None = None  # requests one connection carried
    request_limit_reached: bool = False  # the server closed none within the limit
    idle_timeout_s: float | None = None  # how long an idle connection survived
    idle_wait_s: float = 0.0  # how long we waited for it to close
    error_status: int = 0  # the status of a request for a missing path
    closes_after_error: bool | None = None


def _client() -> Client:
    # Never close an idle connection ourselves: the server's closing it is what is measured.
    return Client(ClientOptions(idle_timeout=0, max_idle_per_host=1, timeout=10))


async def _get(client: Client, url: str) -> Outcome:
    return await client.fetch(Record("GET", url))


async def _probed(on_probe: OnProbe | None, probe: Probe, work: Awaitable[None]) -> None:
    """Await ``work``, telling ``on_probe`` that ``probe`` runs and then that it ended
    (however it ended: an error, Ctrl-C)."""
    if on_probe is not None:
        on_probe(probe, False)
    try:
        await work
    finally:
        if on_probe is not None:
            on_probe(probe, True)


async def examine(
    url: str,
    max_requests: int = MAX_REQUESTS,
    max_idle_wait: float = MAX_IDLE_WAIT,
    on_probe: OnProbe | None = None,
) -> Findings:
    """Measure ``url``'s server: keep-alive, requests per connection, idle timeout, and
    whether an error status closes the connection. The idle wait runs beside the rest.
    ``on_probe`` is told as each of these starts and ends."""
    found = Findings(url)
    await _probed(on_probe, Probe("keep-alive", 2, "requests"), _keep_alive(url, found))
    if not found.keep_alive:
        return found
    idle = Probe("idle timeout", max_idle_wait, "s")
    waiting = asyncio.ensure_future(
        _probed(on_probe, idle, _idle_timeout(url, max_idle_wait, found))
    )
    per_connection = Probe("requests per connection", max_requests, "requests")
    await _probed(on_probe, per_connection, _requests_per_connection(url, max_requests, found))
    await _probed(on_probe, Probe("after an error", 2, "requests"), _after_error(url, found))
    await waiting
    return found


async def _keep_alive(url: str, found: Findings) -> None:
    async with _client() as client:
        first = await _get(client, url)
        found.status, found.error = first.status, first.error
        found.server_header = first.headers.get("server")
        if first.error is not None:
            return
        second = await _get(client, url)
        found.keep_alive = second.error is None and second.conn_id == first.conn_id


async def _requests_per_connection(url: str, limit: int, found: Findings) -> None:
    async with _client() as client:
        first = await _get(client, url)
        carried = 1
        # One past the limit: a server that closes after exactly ``limit`` requests is told
        # apart from one that would carry more.
        while carried <= limit:
            outcome = await _get(client, url)
            if outcome.error is not None or outcome.conn_id != first.conn_id:
                break
            carried += 1
        found.request_limit_reached = carried > limit
        found.requests_per_connection = min(carried, limit)


async def _idle_timeout(url: str, max_wait: float, found: Findings) -> None:
    async with _client() as client:
        await _get(client, url)
        idle_since = time.perf_counter()
        closed = client.ledger.closed
        while closed[CloseReason.SERVER_IDLE] == 0:
            waited = time.perf_counter() - idle_since
            if waited >= max_wait:
                found.idle_wait_s = max_wait
                return
            await asyncio.sleep(0.01)
        found.idle_timeout_s = round(time.perf_counter() - idle_since, 2)


async def _after_error(url: str, found: Findings) -> None:
    async with _client() as client:
        bad = await _get(client, missing_path(url))
        if bad.error is not None:
            return
        found.error_status = bad.status
        if bad.status < 400:
            return  # no error to learn from: the server answers any path
        after = await _get(client, url)
        found.closes_after_error = after.conn_id != bad.conn_id


def missing_path(url: str) -> str:
    """``url`` with a path no server has, for an error status (usually 404)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/tether-doctor-{secrets.token_hex(6)}", query=""))
