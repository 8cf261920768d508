"""The client: one record in, one :class:`~tether.model.Outcome` out, through the pool.

It prepares records (URL resolved, request bytes built, once) and sends them through the one
send path, :class:`~tether.engine.dispatch.Dispatch`, which the closed and open models use
too; bytes and parsing live in :mod:`tether.engine.connection`, choosing connections in
:mod:`tether.engine.pool`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from tether.engine.compiled import native
from tether.engine.connection import Exchange
from tether.engine.cycle import Cycle
from tether.engine.dispatch import Dispatch, Journey
from tether.engine.options import ClientOptions
from tether.engine.pool import Pool
from tether.engine.request import (
    Prepared,
    Url,
    asks_close,
    encode_head,
    framing_problem,
    resolve,
    split_url,
    with_authorization,
)
from tether.errors import InputError
from tether.ledger import Ledger
from tether.model import BodyNeed, Outcome, Record

if TYPE_CHECKING:
    from tether.engine._compiled import Cycle as NativeCycle
    from tether.engine._compiled import Job, Path

T = TypeVar("T")


class Client:
    """A pooled HTTP/1.1 (and, when asked, HTTP/2) client that sends records and accounts
    for every connection.

    Use it as ``async with Client(target="http://127.0.0.1:8080") as client:`` and
    ``outcome = await client.fetch(record)``; ``client.ledger`` holds the connection counts.
    """

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        target: str | None = None,
        ledger: Ledger | None = None,
        counter_slots: int = 0,
    ) -> None:
        self.options = options or ClientOptions()
        self.ledger = ledger if ledger is not None else Ledger()
        self.base: Url | None = split_url(target) if target else None
        self.path = compiled_path(self.options, counter_slots)
        self.pool = _pool(self.options, self.ledger, self.path)
        self.dispatch = Dispatch(self.pool, self.options, self.ledger, self._encode)

    @property
    def engine(self) -> str:
        """Which path sends the common case: ``"compiled"`` or ``"python"``."""
        return "python" if self.path is None else "compiled"

    def cycle(
        self, items: list[T], compiled: list[Job | None], remaining: int
    ) -> Cycle[T] | NativeCycle:
        """``items`` handed out in order, over and over, ``remaining`` times in all; on a
        compiled path, the cycle it takes its next requests from (``compiled[i]`` is
        ``items[i]``'s compiled job, or None)."""
        if self.path is None:
            return Cycle(items, remaining)
        assert native is not None
        cycle: NativeCycle = native.Cycle(list(items), compiled, remaining)
        self.path.cycle = cycle
        return cycle

    def compile(
        self,
        prep: Prepared,
        slot: int,
        statuses: Sequence[int],
        equals: Sequence[tuple[bytes, bytes]],
        absent: Sequence[bytes],
    ) -> Job | None:
        """``prep`` for the compiled path, with its counter slot and what it must meet to be
        counted there (see :meth:`tether.engine._compiled.Path.job`); None without one."""
        if self.path is None or prep.need is not BodyNeed.DISCARD or prep.closes:
            return None
        return self.path.job(prep, slot, statuses, equals, absent)

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
        """Resolve the record's URL and build its request bytes; InputError if it cannot
        (a URL that does not resolve, framing headers that disagree with the body)."""
        problem = framing_problem(record.headers, record.body)
        if problem is not None:
            raise InputError(problem)
        url = resolve(record.url, self.base)
        record = with_authorization(record, url)
        head = self._encode(record.method, url, record.headers, record.body)
        key = self.pool.key_of(url)
        closes = asks_close(record.headers)
        return Prepared(record, url, str(url), key, head, record.expect.body_need, closes)

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


def _pool(options: ClientOptions, ledger: Ledger, path: Path | None) -> Pool:
    """The client's pool: one that shares HTTP/2 connections when the options may speak it
    (imported only then: a run over HTTP/1.1 does not load h2)."""
    if not (options.http2 or options.http2_prior_knowledge):
        return Pool(options, ledger, path)
    from tether.engine.h2pool import H2Pool

    return H2Pool(options, ledger)


def compiled_path(options: ClientOptions, counter_slots: int) -> Path | None:
    """A compiled send path with ``counter_slots`` counter slots, when the extension is
    built, slots are asked for, and the options leave it a common case to run: HTTP/1.1
    only (the compiled protocol speaks nothing else), keep-alive on, no leak mode, no
    per-host connection limit (a request waiting for a slot must get the next connection
    given back, and only the pool's Python side hands them out)."""
    if native is None or counter_slots <= 0:
        return None
    if options.http2 or options.http2_prior_knowledge:
        return None
    if options.disable_keep_alives or options.leak or options.max_conns_per_host:
        return None
    path: Path = native.Path(
        options.timeout,
        options.response_header_timeout,
        options.drain_timeout,
        options.drain_limit,
        options.follow_redirects > 0,
        counter_slots,
        asyncio.get_running_loop().time,
        options.max_response_header_bytes,
    )
    return path


class _Awaited(Journey):
    """A journey someone awaits: :meth:`Client.fetch`."""

    __slots__ = ("future",)

    def __init__(self, dispatch: Dispatch, prep: Prepared, started: float) -> None:
        super().__init__(dispatch, prep, started)
        self.future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def answered(self, response: Exchange) -> None:
        assert self.prep is not None
        self.concluded(response.outcome(self.prep, time.perf_counter() - self.started))

    def concluded(self, outcome: Outcome) -> None:
        if not self.future.done():
            self.future.set_result(outcome)

    def failed(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)
