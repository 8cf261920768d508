"""The one send path: every request, whoever sends it, goes out through :class:`Dispatch`.

A request goes out on an idle connection straight from the caller's own callback (the hot
path: the closed model writes its next request from inside the callback that delivered the
last response), else on the async path, for that one request: dial, or wait for a pool slot.
A first exchange that needs more (a stale keep-alive retry, a redirect to follow) is taken
over by the async path too. On a compiled send path, a request that may be counted there
goes out on the compiled protocol, which hands back to the Python path (one
:class:`~tether.engine.exchange.Handover`, :meth:`Dispatch.adopt`) whatever it does not
read itself. The caller hears back through its :class:`Journey`, one way per response: an
:class:`~tether.model.Outcome` in :meth:`Journey.answered`, whichever way it went, or
:meth:`Journey.counted` when the compiled path counted it.

Here, once each: the whole request's deadline (:meth:`Dispatch.send`), latency and service
time (:meth:`Journey.times`), the "does this response need more" rule
(:meth:`Dispatch.needs_more`), Go's stale retry rule and the redirect rules.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from tether.engine.connection import Connection
from tether.engine.exchange import Exchange, Handover
from tether.engine.interface import PooledConnection
from tether.engine.options import ClientOptions
from tether.engine.pool import Pool
from tether.engine.request import (
    Prepared,
    RequestHead,
    Url,
    is_replayable,
    redirect_headers,
    redirect_method,
    redirect_url,
)
from tether.errors import InputError, ProtocolError, RequestError, StaleConnection, TooManyRedirects
from tether.ledger import Ledger
from tether.model import BodyNeed, Outcome

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

ASYNC_AT_ONCE = 4
"""Requests on the async path at once (dialing, waiting for a connection) past which a
sender with a schedule of its own holds its next one back (see :meth:`Dispatch.ready`)."""

Result = tuple[Exchange | None, RequestError | None]
Encode = Callable[[str, Url, tuple[tuple[str, str], ...], bytes], RequestHead]
"""Builds a request: (method, url, headers, body) -> its head (a redirect's next hop)."""


class Journey:
    """One request on its way, as its sender (a load model) sees it: :attr:`job`, what to
    send (a :class:`~tether.engine.request.Prepared` from
    :meth:`tether.engine.client.Client.plan`); :attr:`started`, what its latency is
    measured from, and :attr:`sent`, what its service time is measured from (both
    ``time.perf_counter`` seconds: a closed-model request starts when it is sent, an open
    one when it was due). The sender sets them and calls :meth:`Dispatch.send`; it hears
    back exactly once per request, by one of:

    - :meth:`answered`: the request's outcome, whichever way it went (one hop on an idle
      connection, or dialed, retried, redirected; a request error is the outcome's
      ``error``);
    - :meth:`counted`: a compiled send path counted the response itself (it met its
      expectation): its figures reach the run with the engine's counts, not one by one;
    - :meth:`failed`: an exception while answering, a bug.

    A closed-model worker is one journey sent again and again; the open model makes one per
    request; :meth:`tether.engine.client.Client.fetch` one per call.
    """

    __slots__ = ("deadline", "dispatch", "job", "sent", "started")

    repeats = False
    """Whether the journey is sent again and again, each time its last response is in (a
    closed-model worker): a compiled send path then sends its next requests itself."""

    cursor: Any = None
    """A flow's virtual user's place in its flow (the compiled path's ``Cursor``), which a
    compiled connection moves on itself; None for every other journey."""

    def __init__(self, dispatch: Dispatch, job: Prepared | None = None, started: float = 0.0):
        self.dispatch = dispatch
        self.job = job
        self.started = started
        self.sent = started
        self.deadline = 0.0  # the engine's: the loop-clock deadline, set when sent

    def answered(self, outcome: Outcome) -> None:
        """The request's outcome. Called from inside the parser's callbacks when it took
        one hop on an idle connection (the hot path)."""
        raise NotImplementedError

    def counted(self, token: Any) -> None:
        """The compiled path counted the response to :attr:`job` itself, and the connection
        is back in the pool: go on. ``token`` is the next item the path took from its cycle
        and could not send itself, or None (take the next one yourself)."""
        raise NotImplementedError

    def failed(self, exc: BaseException) -> None:
        """An exception while answering: a bug, not a request error (those are outcomes)."""
        raise exc

    def exchanged(self, response: Exchange, error: RequestError | None) -> None:
        """The engine's: the connection's callback for the first exchange."""
        dispatch = self.dispatch
        if dispatch.stopped:
            return  # the sender has stopped: what is still in flight is abandoned
        # (follow first: most runs follow no redirects, and a call per response costs.)
        if error is not None or (dispatch.follow and dispatch.needs_more(response)):
            dispatch.spawn(self, dispatch.resume(self, None if error else response, error))
            return
        # Called from inside the parser's callbacks: an exception here would be taken for
        # the server's fault, so it goes to the sender instead.
        try:
            now = time.perf_counter()  # (Journey.times, written out: this runs per response)
            self.answered(response.outcome(self.job, now - self.started, now - self.sent))
        except BaseException as exc:
            self.failed(exc)

    def times(self) -> tuple[float, float]:
        """(latency, service time) of the request, now that its response is in: the one rule
        the Python path measures them by (:meth:`exchanged` writes it out)."""
        now = time.perf_counter()
        return now - self.started, now - self.sent


class Dispatch:
    """Sends :class:`Journey` requests on a :class:`~tether.engine.pool.Pool` (see the
    module's docstring); keeps the tasks of the requests on the async path, so that
    :meth:`stop` can abandon them."""

    def __init__(self, pool: Pool, options: ClientOptions, ledger: Ledger, encode: Encode):
        self.pool = pool
        self.ledger = ledger
        self.stopped = False
        self._encode = encode
        self._loop = pool.loop
        self._timeout = options.timeout
        self.follow = options.follow_redirects  # redirects followed at most (0: none)
        self._tasks: dict[asyncio.Task[None], Journey] = {}
        self.room: Callable[[], None] | None = None
        """Told each time a request leaves the async path, so that a sender holding
        requests back until :meth:`ready` (the open model) sends them then: the journey
        hears its answer while its task still counts, and when every task fails in one
        turn of the loop (a refused port) no later answer would come to say so."""

    # --- the rules ---------------------------------------------------------------------------

    def needs_more(self, response: Exchange) -> bool:
        """Whether a response is a redirect this client follows."""
        return bool(
            self.follow and response.status in REDIRECT_STATUSES and "location" in response.headers
        )

    # --- sending -----------------------------------------------------------------------------

    def send(self, journey: Journey) -> None:
        """Send ``journey.job``: on a connection with room now, else on the async path. Its
        deadline is set here, the one place it is: the loop clock's now plus the timeout (0
        for none, with no clock read), for the whole request, retry and redirects included."""
        job = journey.job
        assert job is not None
        timeout = self._timeout
        journey.deadline = self._loop.time() + timeout if timeout else 0.0
        conn = self.pool.take_idle(job.key)
        if conn is None:
            self.spawn(journey, self._dial(journey))
        elif job.native is not None and conn.wire is not None:
            conn.wire.start(journey, job.native, journey.repeats)
        else:
            conn.send(job.request, job.need, journey.deadline, journey.exchanged)

    def adopt(self, conn: Connection, journey: Journey, handover: Handover) -> None:
        """The compiled path hands its request in flight to the Python one: the journey's
        job is the one in flight now (the path may have sent several since it started), and
        the connection reports it to the journey from here."""
        journey.job, journey.deadline = handover.prep, handover.deadline
        journey.started, journey.sent = handover.started, handover.sent
        conn.adopt(handover, journey.exchanged)

    def ready(self, job: Prepared) -> bool:
        """Whether ``job`` would go out at once on an idle connection, or the async path is
        not busy yet (fewer than :data:`ASYNC_AT_ONCE` requests on it): a sender with a
        schedule of its own (the open model) holds a request back otherwise, and sends it
        when a response frees a connection, instead of dialing a connection per request (a
        storm when the server stalls) and queueing a task for each."""
        return self.pool.has_idle(job.key) or len(self._tasks) < ASYNC_AT_ONCE

    def spawn(self, journey: Journey, work: Coroutine[Any, Any, None]) -> None:
        """Run one request's async path as a task; its failure goes to ``journey.failed``."""
        task = asyncio.ensure_future(work)
        self._tasks[task] = journey
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        journey = self._tasks.pop(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            journey.failed(exc)
        if self.room is not None and not self.stopped:
            self.room()

    def stop(self) -> None:
        """Abandon every request on its async path; callbacks still to come are ignored."""
        self.stopped = True
        if self.pool.path is not None:
            self.pool.path.stop()
        for task in list(self._tasks):
            task.cancel()

    # --- the async path ----------------------------------------------------------------------

    async def _dial(self, journey: Journey) -> None:
        job = journey.job
        assert job is not None
        try:
            conn = await self.pool.acquire(job.url, journey.deadline)
            response, error = await self.exchange(conn, job.request, job.need, journey.deadline)
        except RequestError as exc:
            response, error = None, exc
        await self.resume(journey, response, error)

    async def resume(
        self, journey: Journey, response: Exchange | None, error: RequestError | None
    ) -> None:
        """Take a first exchange's result through the stale retry and the redirects, and
        answer the journey with its outcome."""
        job = journey.job
        assert job is not None
        outcome = Outcome(job.record, url=job.url_text)
        try:
            if error is not None:
                response = await self._retry(
                    job.url, job.request, job.need, error, outcome, journey.deadline
                )
            assert response is not None
            last = await self._follow_redirects(job, response, outcome, journey.deadline)
            last.copy_to(outcome)
        except RequestError as exc:
            outcome.error = str(exc)
            outcome.error_kind = exc.kind
        outcome.latency, outcome.service = journey.times()
        if not self.stopped:
            journey.answered(outcome)

    def exchange(
        self, conn: PooledConnection, request: RequestHead, need: BodyNeed, deadline: float
    ) -> asyncio.Future[Result]:
        """One request on ``conn``, as a future of (response, error)."""
        future: asyncio.Future[Result] = self._loop.create_future()

        def done(response: Exchange | None, error: RequestError | None) -> None:
            if not future.done():
                future.set_result((response, error))

        conn.send(request, need, deadline, done)
        return future

    async def _retry(
        self,
        url: Url,
        request: RequestHead,
        need: BodyNeed,
        error: RequestError,
        outcome: Outcome,
        deadline: float,
    ) -> Exchange:
        """A stale keep-alive connection is retried once, on a new connection, only when
        Go's Transport would: the request was not written at all, or it may be replayed
        (GET, HEAD, OPTIONS, TRACE, or an Idempotency-Key). Any other error stands."""
        if not isinstance(error, StaleConnection) or outcome.retried:
            raise error
        if error.written and not is_replayable(request.method, request.fields):
            raise error
        outcome.retried = True
        self.ledger.count_retry(error)
        conn = await self.pool.acquire(url, deadline, fresh=True)
        response, again = await self.exchange(conn, request, need, deadline)
        if again is not None:
            raise again
        assert response is not None
        return response

    async def _follow_redirects(
        self, job: Prepared, response: Exchange, outcome: Outcome, deadline: float
    ) -> Exchange:
        """Follow redirects while allowed; each hop is counted in the outcome."""
        record, url = job.record, job.url
        method, headers, body = record.method, record.headers, record.body
        while self.needs_more(response):
            if outcome.redirects >= self.follow:
                raise TooManyRedirects(f"more than {self.follow} redirects")
            location = response.headers["location"]
            url = _redirect_target(url, location)
            method, keep_body = redirect_method(response.status, method)
            body = body if keep_body else b""
            headers = redirect_headers(headers, job.url, url, location, keep_body)
            outcome.redirects += 1
            outcome.url = str(url)
            hop = self._encode(method, url, headers, body)
            response = await self._send_hop(url, hop, job.need, deadline, outcome)
        return response

    async def _send_hop(
        self, url: Url, hop: RequestHead, need: BodyNeed, deadline: float, outcome: Outcome
    ) -> Exchange:
        conn = await self.pool.acquire(url, deadline)
        response, error = await self.exchange(conn, hop, need, deadline)
        if error is not None:
            return await self._retry(url, hop, need, error, outcome, deadline)
        assert response is not None
        return response


def _redirect_target(url: Url, location: str) -> Url:
    """The next hop; a Location we cannot follow is the server's fault, not the record's."""
    try:
        return redirect_url(url, location)
    except InputError as exc:
        raise ProtocolError(f"cannot follow redirect: {exc}") from None
