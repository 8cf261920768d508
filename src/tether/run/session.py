"""A run: records in, summary out. The session wires the client, the feed of records, the
model that decides when to send (:mod:`tether.run.closed_model`, or
:mod:`tether.run.open_model` on a schedule), the summary, the watch, the progress shown each
second and Ctrl-C. Outcomes are checked and added to the summary as they arrive; nothing is
kept per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from tether.check import QuickCheck, check, quick_check
from tether.engine.client import Client
from tether.engine.connection import STRICT_HEADS
from tether.engine.options import ClientOptions
from tether.engine.request import Prepared
from tether.errors import InputError
from tether.metrics.groups import MAX_GROUPS, admitted, group_key
from tether.metrics.histogram import Histogram, await_numpy, preload_numpy
from tether.metrics.summary import Summary
from tether.metrics.timeline import Point, Sampler
from tether.model import Mismatch, Outcome, Record
from tether.records import FileSource
from tether.run.closed_model import Worker
from tether.run.feed import Cycles, Feed, Job, NoTarget, RecordSource, validate
from tether.run.flows import FlowArrivals, FlowRun, VirtualUser, find_flows, flows_of
from tether.run.open_model import Arrivals
from tether.run.options import RunOptions
from tether.run.signals import STOP_SIGNALS
from tether.secrets import placeholder_in
from tether.watch.sampler import Watcher, conclude

__all__ = [
    "LiveMetrics",
    "OutcomeSink",
    "ProgressView",
    "RecordSource",
    "RunOptions",
    "Session",
    "planner",
    "run",
    "run_async",
]

OutcomeSink = Callable[[Outcome, list[Mismatch]], None]


class ProgressView(Protocol):
    """Something showing a run's progress (see :mod:`tether.report.progress`)."""

    def start(self) -> None: ...
    def show(self, point: Point, summary: Summary) -> None: ...
    def stop(self) -> None: ...


class LiveMetrics(Protocol):
    """Something serving a run's figures while it goes on (see
    :mod:`tether.live.exporter`): started before the first request (``settle``: wait
    until it is up, for a schedule that its start would make late), stopped after the last
    fold."""

    def start(self, summary: Summary, settle: bool) -> None: ...
    def stop(self) -> None: ...


class Session:
    """One run's shared state: the feed, the send path, the summary, and the senders' end
    (the closed model's workers, or the open model's schedule)."""

    def __init__(
        self, feed: Feed, client: Client, summary: Summary, sink: OutcomeSink | None, n: int
    ) -> None:
        self.feed = feed
        self.flows: FlowRun | None = None  # a flow run's users' shared state
        self.client = client
        self.dispatch = client.dispatch
        self.summary = summary
        self.sink = sink
        self.loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self._running = n

    def deliver(self, job: Job, outcome: Outcome) -> bool:
        """Check an outcome and count it in its group: the one way a response the Python
        path answered reaches the summary (what the compiled path counted is folded in once
        a second). When its compiled check vouches for the response, it is not checked again.
        True when it met its expectation."""
        return self.deliver_as(job.group, job.quick, outcome)

    def deliver_as(
        self,
        group: str,
        quick: QuickCheck | None,
        outcome: Outcome,
        redact: Callable[[str], str] | None = None,
    ) -> bool:
        """:meth:`deliver` of an outcome of a request in ``group`` checked by ``quick``;
        ``redact`` hides what reports must not show in its URL and its mismatches (a flow's
        captured secrets)."""
        outcome.group = group
        if (
            quick is not None
            and outcome.error is None
            and quick.vouches(outcome.status, outcome.headers)
        ):
            mismatches: list[Mismatch] = []
        else:
            mismatches = check(outcome.record.expect, outcome)
        if redact is not None:
            outcome.url = redact(outcome.url)
            mismatches = [Mismatch(m.field, redact(m.expected), redact(m.got)) for m in mismatches]
        self.summary.add(outcome, mismatches)
        if self.sink is not None:
            self.sink(outcome, mismatches)
        return outcome.error is None and not mismatches

    @property
    def over(self) -> bool:
        """The run has ended (all done, interrupted, or failed)."""
        return self.finished.done()

    def fail(self, exc: BaseException) -> None:
        """End the run with an unexpected exception."""
        if not self.finished.done():
            self.finished.set_exception(exc)
        self.dispatch.stop()

    def stop_sending(self) -> None:
        """Send nothing more (the duration is up): what is in flight finishes."""
        self.feed.stopped = True
        if self.flows is not None:
            self.flows.stopped = True

    def worker_done(self) -> None:
        """A worker (or the open-model scheduler) has nothing more to send."""
        self._running -= 1
        if self._running == 0 and not self.finished.done():
            self.finished.set_result(None)

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """Ctrl-C (or another of :data:`~tether.run.signals.STOP_SIGNALS`): stop now;
        requests in flight are abandoned (their connections close)."""
        self.stop_sending()
        self.summary.facts.interrupted = True
        self.summary.facts.signal = signal.Signals(signum).name
        self.dispatch.stop()
        if not self.finished.done():
            self.finished.set_result(None)


def planner(
    client: Client, check_in_full: bool = False, counted: CountedAs | None = None
) -> Callable[[Record], Job]:
    """What the feed makes of each record, once: the client's plan of it, its group, and
    its expectation compiled for the hot path (unless every response is to be checked in
    full), which the client may count responses by itself, under the group's name
    (``counted``: when the run takes such counts). A path (a URL that is joined to the
    target) in a run without a target is :class:`~tether.run.feed.NoTarget`, the run's
    usage error."""

    def plan(record: Record) -> Job:
        if client.base is None and record.url.startswith("/"):
            raise NoTarget(record.source, record.line, record.url)
        if record.in_flow:
            raise InputError(
                "is a flow's step (it captures, uses {{variables}} or names its flow), but "
                "the run is not a flow: its records start with plain ones"
            )
        if (secret := placeholder_in(record.headers)) is not None:
            raise InputError(
                f"header {secret} holds the placeholder tether capture wrote for a secret: "
                f"give its value with -H '{secret}: VALUE' (or capture with --keep-secrets)"
            )
        quick = None if check_in_full else quick_check(record.expect, STRICT_HEADS)
        if quick is None or counted is None:
            prep = client.plan(record)
        else:
            prep = client.plan(record, vouch=quick.vouch, counted_as=counted.of_prepared)
        job = Job(prep, _group(prep), quick)
        prep.token = job
        return job

    return plan


def _group(prep: Prepared) -> str:
    """The group a record's results count under (see :func:`tether.metrics.groups.group_key`)."""
    record = prep.record
    return group_key(record.method, prep.url.target, record.tag)


class CountedAs:
    """The names the client counts vouched responses under: a group's own, or ``(other)``
    for groups past the limit, by the rule the summary's groups keep, so that the counts
    fold into the group each response would have been added to."""

    NAMES = MAX_GROUPS + 1
    """As many as there may be groups, and ``(other)``."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def of_prepared(self, prep: Prepared) -> str:
        """The name the responses to ``prep`` are counted under."""
        return self.of(_group(prep))

    def of(self, group: str) -> str:
        """The name ``group``'s responses are counted under."""
        if group in self._seen:
            return group
        counted_as = admitted(group, len(self._seen))
        if counted_as == group:
            self._seen.add(group)
        return counted_as


async def run_async(
    source: RecordSource,
    asked: RunOptions,
    options: ClientOptions | None = None,
    *,
    sink: OutcomeSink | None = None,
    summary: Summary | None = None,
    handle_sigint: bool = False,
    progress: ProgressView | None = None,
    metrics: LiveMetrics | None = None,
) -> Summary:
    """Send the records and return the closed summary. With ``handle_sigint`` a Ctrl-C (or a
    SIGTERM or SIGHUP: :mod:`tether.run.signals`) stops the run cleanly: requests in flight
    are abandoned and the summary says ``interrupted`` (and by which ``signal``).
    ``progress`` is shown once a second; ``metrics`` serve the summary from before the first
    request to its final figures."""
    preload_numpy()
    if asked.rate is not None:
        await_numpy()  # before the clock starts: an import under way would make it late
    if asked.strict:
        validate(source)
    options = options or ClientOptions()
    if options.max_idle_per_host is None:
        # Keep every connection a worker (or a request in flight) may need: anything less
        # closes one per response.
        keep = asked.max_inflight if asked.rate is not None else asked.concurrency
        options = dataclasses.replace(options, max_idle_per_host=keep)
    summary = summary if summary is not None else Summary()
    summary.facts.secret = asked.secret
    summary.facts.concurrency = asked.concurrency
    summary.facts.target = asked.target
    if asked.rate is not None:
        summary.service = Histogram()
        summary.facts.rate_target = asked.rate.mean_rate
    streamed = isinstance(source, FileSource) and source.streamed
    flow_records, source = find_flows(source, streamed=streamed)
    # The compiled path counts the responses that meet their expectations; a run that wants
    # each outcome (a sink, checks in full) is Python's.
    compiled = asked.compiled and sink is None and not asked.check_in_full
    client = Client(
        options,
        target=asked.target,
        ledger=summary.ledger,
        counter_slots=CountedAs.NAMES if compiled else 0,
    )
    summary.facts.engine = client.engine
    counted = CountedAs() if client.engine == "compiled" else None
    plan = planner(client, asked.check_in_full, counted)
    feed = Feed(
        source,
        plan,
        summary,
        asked.requests,
        asked.share,
        cycles=_cycles(client),
        repeat=asked.cycles,
    )
    workers = 1 if asked.rate is not None else asked.concurrency
    session = Session(feed, client, summary, sink, workers)
    if flow_records is not None:  # (before the watch and the metrics start: it may refuse)
        session.flows = _flow_run(session, flow_records, asked, counted)
        if not session.flows.compiled:
            summary.facts.engine = "python"  # no step of it can go on the compiled path
    fold = _folder(client, summary, session.flows)

    def requests_now() -> int:
        fold()
        return summary.requests

    watcher = (
        Watcher(asked.watch, asked.watch_interval, requests_now, summary.ledger)
        if asked.watch
        else None
    )
    if watcher is not None:
        await watcher.start()
    if metrics is not None:
        metrics.start(summary, settle=asked.rate is not None)
    started = time.perf_counter()
    ticking = _Ticker(summary, started, progress, fold)
    try:
        await _drive(session, asked, handle_sigint)
    finally:
        summary.facts.duration = time.perf_counter() - started
        ticking.cancel()
        ticking.sample(show=False)  # the run's last stretch (the summary follows it)
        if progress is not None:
            progress.stop()
        if watcher is not None:
            await _conclude_watch(watcher, summary, asked)
        await client.aclose()
        if metrics is not None:
            metrics.stop()  # after the last fold and the closes: these figures are final
    return summary


def _flow_run(
    session: Session, records: list[Record], asked: RunOptions, counted: CountedAs | None
) -> FlowRun:
    """The shared state of a flow run (InputError for flows that cannot run)."""
    client = session.client
    if client.base is None:
        relative = next((r for r in records if r.url.startswith("/")), None)
        if relative is not None:
            raise NoTarget(relative.source, relative.line, relative.url)
    settings = asked.flow_settings()
    budget = (asked.requests, asked.iterations)
    flows = flows_of(records, settings)
    names = None if counted is None else counted.of
    return FlowRun(session, client, flows, settings, budget, asked.share, names)


def _cycles(client: Client) -> Cycles:
    """The client's cycle of a feed's jobs (whose tokens are the jobs)."""

    def cycle(items: list[Job], remaining: int) -> Any:
        return client.cycle([job.prep for job in items], remaining)

    return cycle


def _folder(client: Client, summary: Summary, flows: FlowRun | None) -> Callable[[], None]:
    """What folds what the client counted itself into the summary (and the iterations
    its flows' cursors began again)."""

    def fold() -> None:
        counted = client.counted()
        if counted is not None:
            summary.add_counted(counted)
        if flows is not None:
            flows.fold()

    return fold


class _Ticker:
    """Once a second on the run's loop (off the per-request path): the compiled path's
    counts folded in, the timeline's next point, and the progress shown from it."""

    def __init__(
        self,
        summary: Summary,
        started: float,
        progress: ProgressView | None,
        fold: Callable[[], None],
    ) -> None:
        self._summary = summary
        self._fold = fold
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
        self._fold()
        point = self._sampler.sample(self._summary, time.perf_counter() - self._started)
        if show and self._progress is not None:
            self._progress.show(point, self._summary)

    def cancel(self) -> None:
        self._handle.cancel()


async def _conclude_watch(watcher: Watcher, summary: Summary, asked: RunOptions) -> None:
    """The last sample, taken before the run's pool closes what the run left open."""
    await watcher.stop()
    concurrency = summary.peak_inflight if asked.rate is not None else asked.concurrency
    led = summary.ledger
    summary.facts.watch = conclude(
        watcher, summary.requests, max(concurrency, 1), led.opened, led.connect_failed
    )


def _start_flows(run: FlowRun, asked: RunOptions) -> None:
    """Flows' users: one per worker of the closed model, one per arrival of the open one."""
    if asked.rate is not None:
        FlowArrivals(run, asked.rate, asked.max_inflight).start()
        return
    mine, every = asked.share
    # With no count and no duration, as each record is sent once, each user runs its flow once.
    once = not (asked.cycles or asked.iterations)
    for i in range(asked.concurrency):
        VirtualUser(run, mine + i * every, once=once).start()


async def _drive(session: Session, asked: RunOptions, handle_sigint: bool) -> None:
    loop = asyncio.get_running_loop()
    # An open model's schedule ends by itself at the duration; a timer could cut its last
    # requests short.
    timed = asked.duration if asked.rate is None else None
    stopper = loop.call_later(timed, session.stop_sending) if timed else None
    if handle_sigint:
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, session.interrupt, signum)
    try:
        if session.flows is not None:
            _start_flows(session.flows, asked)
        elif asked.rate is not None:
            Arrivals(session, asked.rate, asked.max_inflight).start()
        else:
            for _ in range(asked.concurrency):
                Worker(session).next()
        await session.finished
    finally:
        if stopper is not None:
            stopper.cancel()
        if handle_sigint:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
        session.dispatch.stop()


def run(
    source: RecordSource,
    asked: RunOptions,
    options: ClientOptions | None = None,
    *,
    sink: OutcomeSink | None = None,
    handle_sigint: bool = False,
    progress: ProgressView | None = None,
    metrics: LiveMetrics | None = None,
) -> Summary:
    """Blocking form of :func:`run_async`, on its own uvloop event loop."""
    import uvloop

    return uvloop.run(
        run_async(
            source,
            asked,
            options,
            sink=sink,
            handle_sigint=handle_sigint,
            progress=progress,
            metrics=metrics,
        )
    )
