"""The client: one record in, one :class:`~tether.model.Outcome` out, through the pool.

It prepares records (URL resolved, request bytes built, once) and sends them through the one
send path, :class:`~tether.engine.dispatch.Dispatch`, which the closed and open models use
too; bytes and parsing live in :mod:`tether.engine.connection`, choosing connections in
:mod:`tether.engine.pool`.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

from tether.engine.connection import Exchange
from tether.engine.dispatch import Dispatch, Journey, outcome_of
from tether.engine.ledger import Ledger
from tether.engine.options import ClientOptions
from tether.engine.pool import Pool
from tether.engine.request import Prepared, Url, encode_head, resolve, split_url
from tether.model import Outcome, Record


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
        self.dispatch = Dispatch(self.pool, self.options, self.ledger, self._encode)

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
        """Close every connection (a fetch still on its way ends with the error that makes);
        the ledger is complete once this returns."""
        await self.pool.close()

    def prepare(self, record: Record) -> Prepared:
        """Resolve the record's URL and build its request bytes; InputError if it cannot."""
        url = resolve(record.url, self.base)
        head = self._encode(record.method, url, record.headers, record.body)
        key = self.pool.key_of(url)
        return Prepared(record, url, str(url), key, head, record.expect.body_need)

    async def fetch(self, record: Record) -> Outcome:
        """Send one record and return what happened. Request errors become the outcome's
        ``error``; they never raise. An unusable URL raises InputError."""
        return await self.fetch_prepared(self.prepare(record))

    async def fetch_prepared(self, prep: Prepared) -> Outcome:
        """:meth:`fetch` for a prepared record."""
        journey = _Awaited(self.dispatch, prep, time.perf_counter())
        self.dispatch.send(journey)
        return await journey.future

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


class _Awaited(Journey):
    """A journey someone awaits: :meth:`Client.fetch`."""

    __slots__ = ("future",)

    def __init__(self, dispatch: Dispatch, prep: Prepared, started: float) -> None:
        super().__init__(dispatch, prep, started)
        self.future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def answered(self, response: Exchange) -> None:
        assert self.prep is not None
        self.concluded(outcome_of(self.prep, response, time.perf_counter() - self.started))

    def concluded(self, outcome: Outcome) -> None:
        if not self.future.done():
            self.future.set_result(outcome)

    def failed(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)
