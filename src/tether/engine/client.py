"""The client: one record in, one :class:`~tether.model.Outcome` out, through the pool.

Redirects (when asked) and the one stale-connection retry live here; bytes and parsing live
in :mod:`tether.engine.connection`; choosing connections lives in :mod:`tether.engine.pool`.
The runner sends most requests itself, straight from the last response's callback, and hands
a request here only when it needs more than one plain exchange (see :meth:`Client.complete`).
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from tether.check import quick_check
from tether.engine.connection import STRICT_HEADS, Connection, Exchange
from tether.engine.options import ClientOptions
from tether.engine.pool import Pool
from tether.engine.request import (
    Prepared,
    Url,
    encode_head,
    is_replayable,
    redirect_headers,
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
from tether.metrics.groups import group_key
from tether.metrics.ledger import Ledger
from tether.model import Outcome, Record

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

Result = tuple[Exchange | None, RequestError | None]


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

    def prepare(self, record: Record) -> Prepared:
        """Resolve the record's URL and build its request bytes; InputError if it cannot."""
        url = resolve(record.url, self.base)
        head = self._encode(record.method, url, record.headers, record.body)
        need = record.expect.body_need
        group = group_key(record.method, url.target, record.tag)
        key = self.pool.key_of(url)
        quick = None if self.options.check_in_full else quick_check(record.expect, STRICT_HEADS)
        return Prepared(record, url, str(url), key, head, need, group, quick)

    def deadline(self) -> float:
        """The loop-clock deadline of a request starting now (0: none)."""
        timeout = self.options.timeout
        return self.pool.loop.time() + timeout if timeout else 0.0

    def needs_more(self, response: Exchange) -> bool:
        """Whether a response is a redirect this client follows."""
        return bool(
            self.options.follow_redirects
            and response.status in REDIRECT_STATUSES
            and "location" in response.headers
        )

    async def fetch(self, record: Record) -> Outcome:
        """Send one record and return what happened. Request errors become the outcome's
        ``error``; they never raise. An unusable URL raises InputError."""
        return await self.fetch_prepared(self.prepare(record))

    async def fetch_prepared(self, prep: Prepared) -> Outcome:
        """:meth:`fetch` for a prepared record."""
        started = time.perf_counter()
        deadline = self.deadline()
        try:
            conn = await self.pool.acquire(prep.url, deadline)
            response, error = await self.exchange(conn, prep.head, prep.record, deadline)
        except RequestError as exc:
            response, error = None, exc
        return await self.complete(prep, started, deadline, response, error)

    async def complete(
        self,
        prep: Prepared,
        started: float,
        deadline: float,
        response: Exchange | None,
        error: RequestError | None,
    ) -> Outcome:
        """Take a first exchange's result through the stale retry and the redirects, and
        make the outcome."""
        outcome = Outcome(prep.record, url=prep.url_text, group=prep.group)
        try:
            if error is not None:
                response = await self._retry(
                    prep.url, prep.head, prep.record, error, outcome, deadline
                )
            assert response is not None
            fill(outcome, await self._follow(prep, response, outcome, deadline))
        except RequestError as exc:
            outcome.error = str(exc)
            outcome.error_kind = exc.kind
        outcome.latency = time.perf_counter() - started
        return outcome

    def exchange(
        self, conn: Connection, head: bytes, record: Record, deadline: float
    ) -> asyncio.Future[Result]:
        """One request on ``conn``, as a future of (response, error)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

        def done(response: Exchange | None, error: RequestError | None) -> None:
            if not future.done():
                future.set_result((response, error))

        conn.send(head, record.method, record.expect.body_need, deadline, done)
        return future

    async def _retry(
        self,
        url: Url,
        head: bytes,
        record: Record,
        error: RequestError,
        outcome: Outcome,
        deadline: float,
    ) -> Exchange:
        """A stale keep-alive connection is retried once, on a new connection, only when
        Go's Transport would: the request was not written at all, or it may be replayed
        (GET, HEAD, OPTIONS, TRACE, or an Idempotency-Key). Any other error stands."""
        if not isinstance(error, StaleConnection) or outcome.retried:
            raise error
        if error.written and not is_replayable(record.method, record.headers):
            raise error
        outcome.retried = True
        self.ledger.retried_stale += 1
        conn = await self.pool.acquire(url, deadline, fresh=True)
        response, again = await self.exchange(conn, head, record, deadline)
        if again is not None:
            raise again
        assert response is not None
        return response

    async def _follow(
        self, prep: Prepared, response: Exchange, outcome: Outcome, deadline: float
    ) -> Exchange:
        """Follow redirects while allowed; each hop is counted in the outcome."""
        record, url = prep.record, prep.url
        method, headers, body = record.method, record.headers, record.body
        while self.needs_more(response):
            if outcome.redirects >= self.options.follow_redirects:
                raise TooManyRedirects(f"more than {self.options.follow_redirects} redirects")
            location = response.headers["location"]
            url = _redirect_target(url, location)
            method, keep_body = redirect_method(response.status, method)
            body = body if keep_body else b""
            headers = redirect_headers(headers, prep.url, url, location, keep_body)
            hop = Record(method, str(url), headers, body, record.expect, record.line)
            outcome.redirects += 1
            outcome.url = str(url)
            response = await self._send(url, hop, deadline, outcome)
        return response

    async def _send(self, url: Url, hop: Record, deadline: float, outcome: Outcome) -> Exchange:
        head = self._encode(hop.method, url, hop.headers, hop.body)
        conn = await self.pool.acquire(url, deadline)
        response, error = await self.exchange(conn, head, hop, deadline)
        if error is not None:
            return await self._retry(url, head, hop, error, outcome, deadline)
        assert response is not None
        return response

    def _encode(
        self, method: str, url: Url, headers: tuple[tuple[str, str], ...], body: bytes
    ) -> bytes:
        return encode_head(
            method,
            url,
            headers,
            body,
            user_agent=self.options.user_agent,
            close=self.options.disable_keep_alives,
        )


def _redirect_target(url: Url, location: str) -> Url:
    """The next hop; a Location we cannot follow is the server's fault, not the record's."""
    try:
        return redirect_url(url, location)
    except InputError as exc:
        raise ProtocolError(f"cannot follow redirect: {exc}") from None


def fill(outcome: Outcome, response: Exchange) -> None:
    """Copy a response into an outcome."""
    outcome.status = response.status
    outcome.headers = response.headers
    outcome.body = response.body
    outcome.body_sha256 = response.sha256
    outcome.body_size = response.body_size
    outcome.body_truncated = response.truncated
    outcome.conn_id = response.conn_id
    outcome.reused = response.reused


def outcome_of(prep: Prepared, response: Exchange, latency: float) -> Outcome:
    """The outcome of a plain one-hop exchange, built in one call (the hot path)."""
    return Outcome(
        prep.record,
        response.status,
        response.headers,
        response.body,
        response.sha256,
        response.body_size,
        response.truncated,
        latency,
        response.conn_id,
        response.reused,
        False,
        0,
        prep.url_text,
        None,
        None,
        0.0,
        prep.group,
    )
