"""The client: one record in, one :class:`~tether.model.Outcome` out, through the pool.

It plans records (URL resolved, request head built, once; on a compiled send path, compiled
too where the response can be counted there: :meth:`Client.plan`), sends them through the
one send path, :class:`~tether.engine.dispatch.Dispatch`, which the closed and open models
use too, and gives back what the compiled path counted (:meth:`Client.counted`). Whether a
request took the compiled path is the engine's secret: a sender sees a
:class:`~tether.engine.request.Prepared` and hears back an outcome or a count. Bytes and
parsing live in :mod:`tether.engine.connection` and :mod:`tether.engine.h2connection`,
choosing connections in :mod:`tether.engine.pool`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from tether.engine.compiled import native
from tether.engine.cycle import Cycle
from tether.engine.dispatch import Dispatch, Journey
from tether.engine.options import ClientOptions
from tether.engine.pool import Pool
from tether.engine.request import (
    Prepared,
    RequestHead,
    Url,
    framing_problem,
    request_head,
    resolve,
    split_url,
    with_authorization,
)
from tether.errors import InputError
from tether.ledger import Ledger
from tether.model import BodyNeed, Counted, Outcome, Record, Vouch

if TYPE_CHECKING:
    from tether.engine._compiled import Cycle as NativeCycle
    from tether.engine._compiled import Path


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
        self._path = compiled_path(self.options, counter_slots)
        self.pool = Pool(self.options, self.ledger, self._path)
        self.dispatch = Dispatch(self.pool, self.options, self.ledger, self._encode)
        self._slots: dict[str, int] = {}  # counter slots by the name counts come back under
        self._names: list[str] = []
        self._most_slots = counter_slots
        if self._path is not None:
            self._path.adopt = self.dispatch.adopt

    @property
    def engine(self) -> str:
        """Which path sends the common case: ``"compiled"`` or ``"python"``."""
        return "python" if self._path is None else "compiled"

    def plan(
        self,
        record: Record,
        *,
        vouch: Vouch | None = None,
        counted_as: Callable[[Prepared], str] | None = None,
    ) -> Prepared:
        """``record`` made ready to send (see :meth:`prepare`): the one call a sender makes
        per record. With ``vouch`` (what a response must show to be counted without a
        check) and ``counted_as`` (the name its counts come back under, from the prepared
        record), a compiled send path may send it and count its responses itself: they come
        back in :meth:`counted`, and its sender hears :meth:`Journey.counted`."""
        prep = self.prepare(record)
        path = self._path
        if path is None or vouch is None or counted_as is None:
            return prep
        if prep.need is not BodyNeed.DISCARD or prep.request.closes:
            return prep  # its body is checked, or its connection ends with it
        slot = self._slot(counted_as(prep))
        if slot is not None:
            prep.native = path.job(prep, slot, vouch.statuses, vouch.equals, vouch.absent)
        return prep

    def plan_step(
        self,
        record: Record,
        *,
        vouch: Vouch | None,
        counted_as: str,
        captures: tuple[bytes, ...],
        keep_body: bool,
        takes: bool = True,
    ) -> Prepared:
        """A flow's step, as its record stands with its holes (``{{name}}``) in it: on a
        compiled HTTP/1.1 send path, with a compiled job whose bytes its sender fills
        before each send (``Job.fill``, from :func:`tether.engine.splice.splice` of the
        request's bytes), which reads the header fields named in ``captures`` and keeps the
        body when ``keep_body``, and whose sender's journey hears of each response it vouches
        for (see ``Path.step``; without ``takes``, only of those it cannot follow with the
        journey's ``cursor``'s next step itself). Without such a path (or over HTTP/2, whose
        encoding of a head is no bytes to splice) it has none, and each send is planned in
        full."""
        prep = self.prepare(record)
        path = self._path
        h2 = self.options.speaks_h2(prep.url.scheme)
        if path is None or vouch is None or h2 or prep.request.closes:
            return prep
        slot = self._slot(counted_as)
        if slot is None:
            return prep
        job = path.job(prep, slot, vouch.statuses, vouch.equals, vouch.absent)
        if job is not None and path.step(job, captures, keep_body, takes):
            prep.native = job
        return prep

    def _slot(self, name: str) -> int | None:
        """The counter slot counts under ``name`` are kept in (given on first sight), or
        None when every slot is taken."""
        slot = self._slots.get(name)
        if slot is None and len(self._names) < self._most_slots:
            slot = self._slots[name] = len(self._names)
            self._names.append(name)
        return slot

    def counted(self) -> Counted | None:
        """What the compiled send path counted since it was last asked (each response met
        its ``vouch``), or None when it counted nothing (or there is none)."""
        path = self._path
        if path is None or not path.counts.pending:
            return None
        return path.counts.drain(self._names)

    def cycle(self, jobs: list[Prepared], remaining: int) -> Cycle[object] | NativeCycle:
        """The ``token`` of each of ``jobs`` handed out in order, over and over,
        ``remaining`` times in all. On a compiled send path it is the one the path takes
        its next requests from itself, while a closed-model worker's responses are counted
        there (it hands the sender, through :meth:`Journey.counted`, the token of one it
        cannot send)."""
        tokens = [job.token for job in jobs]
        if self._path is None:
            return Cycle(tokens, remaining)
        assert native is not None
        cycle: NativeCycle = native.Cycle(tokens, [job.native for job in jobs], remaining)
        self._path.cycle = cycle
        return cycle

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
        """Resolve the record's URL and build its request head; InputError if it cannot (a
        URL that does not resolve, framing headers that disagree with the body)."""
        problem = framing_problem(record.headers, record.body)
        if problem is not None:
            raise InputError(problem)
        url = resolve(record.url, self.base)
        record = with_authorization(record, url)
        request = self._encode(record.method, url, record.headers, record.body)
        return Prepared(record, url, self.pool.key_of(url), request)

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
    ) -> RequestHead:
        return request_head(
            method,
            url,
            headers,
            body,
            user_agent=self.options.user_agent,
            close=self.options.disable_keep_alives,
        )


def compiled_path(options: ClientOptions, counter_slots: int) -> Path | None:
    """A compiled send path with ``counter_slots`` counter slots, when the extension is
    built, slots are asked for, and the options leave it a common case to run (over
    HTTP/1.1 or HTTP/2): keep-alive on, no leak mode, no per-host connection limit (a
    request waiting for a slot must get the next connection given back, and only the
    pool's Python side hands them out)."""
    if native is None or counter_slots <= 0:
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

    def answered(self, outcome: Outcome) -> None:
        if not self.future.done():
            self.future.set_result(outcome)

    def failed(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)
