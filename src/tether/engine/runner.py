"""The runner: records in, summary out. In the closed model, N workers each send their next
record when their last response is in (N=1 is the plain sequential loop); the open model
(:mod:`tether.engine.arrivals`) sends on a schedule instead. Outcomes are checked and added to
the summary as they arrive; nothing is kept per request.

The hot path is callback-driven: a worker writes its next request from inside the callback
that delivered the last response, on the connection that response just freed, with no task
switch in between. Anything more (dialing, waiting for a pool slot, a stale retry, a
redirect) goes through the client's async path for that one request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from tether.check import check
from tether.engine.arrivals import Arrivals
from tether.engine.client import REDIRECT_STATUSES, Client, outcome_of
from tether.engine.connection import Exchange
from tether.engine.options import ClientOptions
from tether.engine.pacer import Schedule
from tether.engine.request import Prepared
from tether.errors import InputError, RecordError, RequestError
from tether.metrics.histogram import Histogram, preload_numpy
from tether.metrics.summary import Summary
from tether.metrics.timeline import Point, Sampler
from tether.model import Mismatch, Outcome, Record
from tether.secrets import SECRET_HEADERS
from tether.watch import Source
from tether.watch.sampler import Watcher, conclude

RecordSource = Callable[[], Iterable[Record | RecordError]]
"""Opens the records afresh each time it is called (a second call cycles them)."""

OutcomeSink = Callable[[Outcome, list[Mismatch]], None]


class ProgressView(Protocol):
    """Something showing a run's progress (see :mod:`tether.report.progress`)."""

    def start(self) -> None: ...
    def show(self, point: Point, summary: Summary) -> None: ...
    def stop(self) -> None: ...


CACHE_RECORDS = 100_000
"""Records of a first pass kept ready to send again when they cycle; a larger set is read
again from its source on every cycle, so memory stays bounded."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How much to send and how. ``requests`` beyond the number of records cycles them;
    with neither ``requests`` nor ``duration`` each record is sent once.

    Without ``rate`` the model is closed: ``concurrency`` workers, each sending when its last
    response is in. With ``rate`` it is open: requests start on the pacer's schedule whatever
    the responses do, at most ``max_inflight`` at once; the rest wait, counted as late.

    ``share`` = (k, n) sends only every n-th record from the k-th: one process's part of a
    run split over n (see :mod:`tether.engine.processes`).
    """

    target: str | None = None
    concurrency: int = 1
    requests: int | None = None
    duration: float | None = None
    strict: bool = False
    rate: Schedule | None = None
    max_inflight: int = 1000
    share: tuple[int, int] = (0, 1)
    watch: tuple[Source, ...] = ()
    watch_interval: float = 0.5
    secret: frozenset[str] = SECRET_HEADERS  # header values reports do not show


class Feed:
    """Hands prepared records to the workers: in order, skipping (and reporting) bad ones,
    cycling when asked for more requests than there are records, stopping when told.

    A first pass of up to ``cache_limit`` records is kept to cycle through again; a larger
    one is read again from ``source`` on every cycle (see :data:`CACHE_RECORDS`)."""

    def __init__(
        self,
        source: RecordSource,
        prepare: Callable[[Record], Prepared],
        summary: Summary,
        limit: int | None,
        share: tuple[int, int] = (0, 1),
        cache_limit: int = CACHE_RECORDS,
    ) -> None:
        self._source = source
        self._share = share
        self._prepare = prepare
        self._summary = summary
        self._limit = limit
        self._given = 0
        self._in_pass = 0
        self._first_pass = True
        self._cache_limit = cache_limit
        self._cache: list[Prepared] | None = [] if limit is not None else None
        self._it: Iterator[Prepared] = self._read()
        self.stopped = False

    def next(self) -> Prepared | None:
        """The next record to send, or None when the run is over."""
        if self.stopped or (self._limit is not None and self._given >= self._limit):
            return None
        try:
            prep = next(self._it, None) or self._next_cycle()
        except InputError as fatal:
            # The records cannot be read any further (say, not UTF-8): what was sent stands.
            if not isinstance(fatal, RecordError):
                fatal = RecordError("<records>", 0, str(fatal))
            self._summary.add_input_error(fatal)
            prep = None
        if prep is None:
            self.stopped = True
            return None
        self._given += 1
        self._in_pass += 1
        return prep

    def _next_cycle(self) -> Prepared | None:
        """Start the records over, when a count asks for more and the last pass had any."""
        if self._limit is None or not self._in_pass:
            return None
        self._first_pass = False
        self._in_pass = 0
        self._it = iter(self._cache) if self._cache is not None else self._read()
        return next(self._it, None)

    def _read(self) -> Iterator[Prepared]:
        mine, every = self._share
        for position, item in enumerate(self._source()):
            if position % every != mine:
                continue
            prep = self._good(item)
            if prep is None:
                continue
            if self._cache is not None and self._first_pass:
                self._cache.append(prep)
                if len(self._cache) > self._cache_limit:
                    self._cache = None
            yield prep

    def _good(self, item: Record | RecordError) -> Prepared | None:
        """A prepared record, or None for a bad one (reported on the first pass only)."""
        if isinstance(item, RecordError):
            if self._first_pass:
                self._summary.add_input_error(item)
            return None
        try:
            return self._prepare(item)
        except InputError as exc:
            if self._first_pass:
                self._summary.add_input_error(RecordError(item.source, item.line, str(exc)))
            return None


def validate(source: RecordSource) -> None:
    """Strict mode: read every record before sending any; raise on the first bad ones."""
    bad: list[RecordError] = []
    try:
        bad.extend(item for item in source() if isinstance(item, RecordError))
    except RecordError as fatal:
        bad.append(fatal)
    if bad:
        shown = "\n".join(str(e) for e in bad[:10])
        more = f"\n... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise InputError(f"{len(bad)} bad record(s); nothing was sent:\n{shown}{more}")


class Worker:
    """One closed-model worker: at most one request in flight, the next one sent as soon as
    the last one is done."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._prep: Prepared | None = None
        self._started = 0.0
        self._deadline = 0.0

    def next(self) -> None:
        """Send the next record, or tell the run this worker is done."""
        run = self._run
        prep = run.feed.next()
        if prep is None:
            run.worker_done()
            return
        self._prep = prep
        self._started = time.perf_counter()
        self._deadline = run.loop.time() + run.timeout if run.timeout else 0.0
        conn = run.pool.take_idle(prep.key)
        if conn is None:
            run.spawn(self._slow(prep))
        else:
            conn.send(prep.head, prep.record.method, prep.need, self._deadline, self._done)

    def _done(self, response: Exchange, error: RequestError | None) -> None:
        """The connection's callback: record the outcome and send the next request, unless
        this one needs a retry or a redirect, which the client's async path takes over."""
        run = self._run
        if run.over:
            return  # the run is over (Ctrl-C): what is still in flight is abandoned
        prep = self._prep
        assert prep is not None
        if run.hands_over(response, error):
            run.spawn(self._resume(prep, None if error else response, error))
            return
        # Called from inside the parser's callbacks: an exception here would be taken for
        # the server's fault, so it ends the run instead.
        try:
            latency = time.perf_counter() - self._started
            run.finish(prep, response, latency, latency)
            self.next()
        except BaseException as exc:
            run.fail(exc)

    async def _slow(self, prep: Prepared) -> None:
        outcome = await self._run.client.fetch_prepared(prep)
        self._run.deliver(outcome)
        self.next()

    async def _resume(
        self, prep: Prepared, response: Exchange | None, error: RequestError | None
    ) -> None:
        client = self._run.client
        outcome = await client.complete(prep, self._started, self._deadline, response, error)
        self._run.deliver(outcome)
        self.next()


class Run:
    """One run's shared state: the feed, the client, the summary, and the workers' end."""

    def __init__(
        self, feed: Feed, client: Client, summary: Summary, sink: OutcomeSink | None, n: int
    ) -> None:
        self.feed = feed
        self.client = client
        self.summary = summary
        self.sink = sink
        self.loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        # Read once, for the workers' hot path.
        self.pool = client.pool
        self.timeout = client.options.timeout
        self.follow = client.options.follow_redirects
        self._running = n
        self._tasks: set[asyncio.Task[None]] = set()

    def hands_over(self, response: Exchange, error: RequestError | None) -> bool:
        """Whether a request needs the client's async path after its first exchange (a
        retry, or a redirect to follow); the rest finish on the callback path."""
        return error is not None or bool(self.follow and response.status in REDIRECT_STATUSES)

    def finish(self, prep: Prepared, response: Exchange, latency: float, service: float) -> None:
        """Count a request that took one plain exchange. When its compiled check vouches
        for the response, nothing is checked again, and when nobody wants the outcome either,
        the counts go straight into the summary; anything else is built into an outcome and
        checked in full."""
        quick = prep.quick
        vouched = quick is not None and quick.passes(response.status, response.head)
        if vouched and self.sink is None:
            self.summary.add_ok(
                prep.group, response.status, latency, service, response.reused, response.truncated
            )
            return
        outcome = outcome_of(prep, response, latency)
        outcome.service = service
        self.deliver(outcome, [] if vouched else None)

    def deliver(self, outcome: Outcome, mismatches: list[Mismatch] | None = None) -> None:
        """Check an outcome (unless its ``mismatches`` are known) and count it."""
        if mismatches is None:
            mismatches = check(outcome.record.expect, outcome)
        self.summary.add(outcome, mismatches)
        if self.sink is not None:
            self.sink(outcome, mismatches)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run one request's slow path as a task; its failure ends the run (a bug, not a
        request error: those are outcomes)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.fail(exc)

    @property
    def over(self) -> bool:
        """The run has ended (all done, interrupted, or failed)."""
        return self.finished.done()

    def fail(self, exc: BaseException) -> None:
        """End the run with an unexpected exception."""
        if not self.finished.done():
            self.finished.set_exception(exc)

    def cancel_tasks(self) -> None:
        """Abandon every request still on its slow path."""
        for task in list(self._tasks):
            task.cancel()

    def worker_done(self) -> None:
        """A worker (or the open-model scheduler) has nothing more to send."""
        self._running -= 1
        if self._running == 0 and not self.finished.done():
            self.finished.set_result(None)

    def interrupt(self) -> None:
        """Ctrl-C: stop now; requests in flight are abandoned (their connections close)."""
        self.feed.stopped = True
        self.summary.interrupted = True
        self.cancel_tasks()
        if not self.finished.done():
            self.finished.set_result(None)


async def run_async(
    source: RecordSource,
    run: RunOptions,
    options: ClientOptions | None = None,
    *,
    sink: OutcomeSink | None = None,
    summary: Summary | None = None,
    handle_sigint: bool = False,
    progress: ProgressView | None = None,
) -> Summary:
    """Send the records and return the closed summary. With ``handle_sigint`` a Ctrl-C stops
    the run cleanly: requests in flight are abandoned and the summary says ``interrupted``.
    ``progress`` is shown once a second."""
    preload_numpy()
    if run.strict:
        validate(source)
    options = options or ClientOptions()
    if options.max_idle_per_host is None:
        # Keep every connection a worker (or a request in flight) may need: anything less
        # closes one per response.
        keep = run.max_inflight if run.rate is not None else run.concurrency
        options = dataclasses.replace(options, max_idle_per_host=keep)
    summary = summary if summary is not None else Summary()
    summary.secret = run.secret
    summary.concurrency = run.concurrency
    summary.target = run.target
    if run.rate is not None:
        summary.service = Histogram()
        summary.rate_target = run.rate.mean_rate
    client = Client(options, target=run.target, ledger=summary.ledger)
    feed = Feed(source, client.prepare, summary, run.requests, run.share)
    watcher = (
        Watcher(run.watch, run.watch_interval, lambda: summary.requests) if run.watch else None
    )
    if watcher is not None:
        await watcher.start()
    started = time.perf_counter()
    ticking = _EverySecond(summary, started, progress)
    try:
        workers = 1 if run.rate is not None else run.concurrency
        await _drive(Run(feed, client, summary, sink, workers), run, handle_sigint)
    finally:
        summary.duration = time.perf_counter() - started
        ticking.cancel()
        ticking.sample(show=False)  # the run's last stretch (the summary follows it)
        if progress is not None:
            progress.stop()
        if watcher is not None:
            await _conclude_watch(watcher, summary, run)
        await client.aclose()
    return summary


class _EverySecond:
    """Once a second on the run's loop (off the per-request path): the timeline's next point,
    and the progress shown from it."""

    def __init__(self, summary: Summary, started: float, progress: ProgressView | None) -> None:
        self._summary = summary
        self._started = started
        self._progress = progress
        self._sampler = Sampler()
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(1.0, self._tick)
        summary.window = Histogram()
        if progress is not None:
            progress.start()

    def _tick(self) -> None:
        self.sample(show=True)
        self._handle = self._loop.call_later(1.0, self._tick)

    def sample(self, show: bool) -> None:
        """The timeline's point for the stretch up to now, shown as progress if ``show``."""
        point = self._sampler.sample(self._summary, time.perf_counter() - self._started)
        if show and self._progress is not None:
            self._progress.show(point, self._summary)

    def cancel(self) -> None:
        self._handle.cancel()


async def _conclude_watch(watcher: Watcher, summary: Summary, run: RunOptions) -> None:
    """The last sample, taken before the run's pool closes what the run left open."""
    await watcher.stop()
    concurrency = summary.peak_inflight if run.rate is not None else run.concurrency
    led = summary.ledger
    summary.watch = conclude(
        watcher, summary.requests, max(concurrency, 1), led.opened, led.connect_failed
    )


async def _drive(state: Run, run: RunOptions, handle_sigint: bool) -> None:
    loop = asyncio.get_running_loop()
    # An open model's schedule ends by itself at the duration; a timer could cut its last
    # requests short.
    timed = run.duration if run.rate is None else None
    stopper = loop.call_later(timed, _stop, state.feed) if timed else None
    if handle_sigint:
        loop.add_signal_handler(signal.SIGINT, state.interrupt)
    try:
        if run.rate is not None:
            Arrivals(state, run.rate, run.max_inflight).start()
        else:
            for _ in range(run.concurrency):
                Worker(state).next()
        await state.finished
    finally:
        if stopper is not None:
            stopper.cancel()
        if handle_sigint:
            loop.remove_signal_handler(signal.SIGINT)
        state.cancel_tasks()


def _stop(feed: Feed) -> None:
    feed.stopped = True


def run(
    source: RecordSource,
    run_options: RunOptions,
    options: ClientOptions | None = None,
    *,
    sink: OutcomeSink | None = None,
    handle_sigint: bool = False,
    progress: ProgressView | None = None,
) -> Summary:
    """Blocking form of :func:`run_async`, on its own uvloop event loop."""
    import uvloop

    return uvloop.run(
        run_async(
            source, run_options, options, sink=sink, handle_sigint=handle_sigint, progress=progress
        )
    )
