"""The client: one record in, one :class:`~tether.model.Outcome` out, through the pool.

Redirects (when asked) and the one stale-connection retry live here; bytes and parsing live
in :mod:`tether.engine.connection`; choosing connections lives in :mod:`tether.engine.pool`.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from tether.engine.connection import Response
from tether.engine.options import ClientOptions
from tether.engine.pool import Pool
from tether.engine.request import (
    Url,
    encode_head,
    is_replayable,
    redirect_method,
    redirect_url,
    resolve,
    split_url,
)
from tether.errors import (
    InputError,
    ProtocolError,
    RequestError,
    StaleConnection,
    TooManyRedirects,
)
from tether.metrics.ledger import Ledger
from tether.model import BodyNeed, Outcome, Record

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DROP_ON_REDIRECT = frozenset({"host", "content-length", "content-type"})


class Client:
    """A pooled HTTP/1.1 client that sends records and accounts for every connection.

    Use it as ``async with Client(target="http://127.0.0.1:8080") as client:`` and
    ``outcome = await client.fetch(record)``; ``client.ledger`` holds the connection counts.
    """

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        target: str | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.options = options or ClientOptions()
        self.ledger = ledger if ledger is not None else Ledger()
        self.base: Url | None = split_url(target) if target else None
        self.pool = Pool(self.options, self.ledger)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection; the ledger is complete once this returns."""
        await self.pool.close()

    async def fetch(self, record: Record) -> Outcome:
        """Send one record and return what happened. Request errors become the outcome's
        ``error``; they never raise. An unusable URL raises InputError."""
        started = time.perf_counter()
        url = resolve(record.url, self.base)
        outcome = Outcome(record, url=str(url))
        try:
            response = await self._follow(record, url, outcome)
            _fill(outcome, response)
        except RequestError as exc:
            outcome.error = str(exc)
            outcome.error_kind = exc.kind
        outcome.latency = time.perf_counter() - started
        return outcome

    async def _follow(self, record: Record, url: Url, outcome: Outcome) -> Response:
        """Send, then follow redirects while allowed; each hop is counted in the outcome."""
        method, headers, body = record.method, record.headers, record.body
        need = record.expect.body_need
        timeout = self.options.timeout
        deadline = asyncio.get_running_loop().time() + timeout if timeout else 0.0
        while True:
            response = await self._send(method, url, headers, body, need, deadline, outcome)
            location = response.headers.get("location")
            if not self._should_follow(response.status, location):
                return response
            if outcome.redirects >= self.options.follow_redirects:
                raise TooManyRedirects(f"more than {self.options.follow_redirects} redirects")
            assert location is not None
            url = _redirect_target(url, location)
            method, keep_body = redirect_method(response.status, method)
            body = body if keep_body else b""
            headers = tuple(h for h in headers if h[0].lower() not in _DROP_ON_REDIRECT)
            outcome.redirects += 1
            outcome.url = str(url)

    def _should_follow(self, status: int, location: str | None) -> bool:
        return bool(self.options.follow_redirects and location and status in REDIRECT_STATUSES)

    async def _send(
        self,
        method: str,
        url: Url,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        need: BodyNeed,
        deadline: float,
        outcome: Outcome,
    ) -> Response:
        """One hop. A stale keep-alive connection is retried once, on a new connection,
        only when Go's Transport would: the request was not written at all, or it may be
        replayed (GET, HEAD, OPTIONS, TRACE, or an Idempotency-Key)."""
        request = encode_head(
            method,
            url,
            headers,
            body,
            user_agent=self.options.user_agent,
            close=self.options.disable_keep_alives,
        )
        conn = await self.pool.acquire(url, deadline)
        try:
            return await conn.send(request, method, need, deadline).future
        except StaleConnection as stale:
            if outcome.retried or (stale.written and not is_replayable(method, headers)):
                raise
        outcome.retried = True
        self.ledger.retried_stale += 1
        conn = await self.pool.acquire(url, deadline, fresh=True)
        return await conn.send(request, method, need, deadline).future


def _redirect_target(url: Url, location: str) -> Url:
    """The next hop; a Location we cannot follow is the server's fault, not the record's."""
    try:
        return redirect_url(url, location)
    except InputError as exc:
        raise ProtocolError(f"cannot follow redirect: {exc}") from None


def _fill(outcome: Outcome, response: Response) -> None:
    outcome.status = response.status
    outcome.headers = response.headers
    outcome.body = response.body
    outcome.body_sha256 = response.sha256
    outcome.body_size = response.body_size
    outcome.body_truncated = response.truncated
    outcome.conn_id = response.conn_id
    outcome.reused = response.reused
