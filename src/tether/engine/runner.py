"""The closed-model runner: N workers, each sending its next record when its last response is
in (N=1 is the plain sequential loop). Outcomes are checked and added to the summary as they
arrive; nothing is kept per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from tether.check import check
from tether.engine.client import Client
from tether.engine.options import ClientOptions
from tether.errors import InputError, RecordError
from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome, Record

RecordSource = Callable[[], Iterable[Record | RecordError]]
"""Opens the records afresh each time it is called (a second call cycles them)."""

OutcomeSink = Callable[[Outcome, list[Mismatch]], None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How much to send and how. ``requests`` beyond the number of records cycles them;
    with neither ``requests`` nor ``duration`` each record is sent once."""

    target: str | None = None
    concurrency: int = 1
    requests: int | None = None
    duration: float | None = None
    strict: bool = False


class Feed:
    """Hands records to the workers: in order, skipping (and reporting) bad ones, cycling
    when asked for more requests than there are records, stopping when told."""

    def __init__(self, source: RecordSource, summary: Summary, limit: int | None) -> None:
        self._source = source
        self._summary = summary
        self._limit = limit
        self._given = 0
        self._cycle = 0
        self._good_in_cycle = 0
        self._it: Iterator[Record | RecordError] = iter(source())
        self.stopped = False

    def next(self) -> Record | None:
        """The next record to send, or None when the run is over."""
        if self.stopped or (self._limit is not None and self._given >= self._limit):
            return None
        record = self._next_good()
        if record is not None:
            self._given += 1
        return record

    def _next_good(self) -> Record | None:
        try:
            return self._next_good_or_raise()
        except InputError as fatal:
            # The records cannot be read any further (say, not UTF-8): what was sent stands.
            if not isinstance(fatal, RecordError):
                fatal = RecordError("<records>", 0, str(fatal))
            self._summary.add_input_error(fatal)
            self.stopped = True
            return None

    def _next_good_or_raise(self) -> Record | None:
        for item in self._it:
            if isinstance(item, RecordError):
                if self._cycle == 0:  # report each bad line once, not once per cycle
                    self._summary.add_input_error(item)
                continue
            self._good_in_cycle += 1
            return item
        if self._limit is None or self._good_in_cycle == 0:
            return None
        self._cycle += 1
        self._good_in_cycle = 0
        self._it = iter(self._source())
        return self._next_good_or_raise()


def validate(source: RecordSource) -> None:
    """Strict mode: read every record before sending any; raise on the first bad ones."""
    bad: list[RecordError] = []
    try:
        bad.extend(_errors_only(source()))
    except RecordError as fatal:
        bad.append(fatal)
    if bad:
        shown = "\n".join(str(e) for e in bad[:10])
        more = f"\n... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise InputError(f"{len(bad)} bad record(s); nothing was sent:\n{shown}{more}")


def _errors_only(items: Iterable[Record | RecordError]) -> Iterator[RecordError]:
    # Keeps only errors so the pre-pass holds nothing but them in memory.
    return (item for item in items if isinstance(item, RecordError))


async def run_async(
    source: RecordSource,
    run: RunOptions,
    options: ClientOptions | None = None,
    *,
    sink: OutcomeSink | None = None,
    summary: Summary | None = None,
    handle_sigint: bool = False,
) -> Summary:
    """Send the records and return the closed summary. With ``handle_sigint`` a Ctrl-C stops
    the run cleanly: requests in flight are abandoned and the summary says ``interrupted``."""
    if run.strict:
        validate(source)
    options = options or ClientOptions()
    if options.max_idle_per_host is None:
        # Keep every worker's connection: anything less closes one per response.
        options = dataclasses.replace(options, max_idle_per_host=run.concurrency)
    summary = summary if summary is not None else Summary()
    summary.concurrency = run.concurrency
    summary.target = run.target
    feed = Feed(source, summary, run.requests)
    client = Client(options, target=run.target, ledger=summary.ledger)
    started = time.perf_counter()
    try:
        await _drive(client, feed, run, summary, sink, handle_sigint)
    finally:
        summary.duration = time.perf_counter() - started
        await client.aclose()
    return summary


async def _drive(
    client: Client,
    feed: Feed,
    run: RunOptions,
    summary: Summary,
    sink: OutcomeSink | None,
    handle_sigint: bool,
) -> None:
    loop = asyncio.get_running_loop()
    workers = [
        asyncio.create_task(_worker(client, feed, summary, sink)) for _ in range(run.concurrency)
    ]
    stopper = loop.call_later(run.duration, _stop, feed) if run.duration else None
    if handle_sigint:
        loop.add_signal_handler(signal.SIGINT, _interrupt, feed, summary, workers)
    try:
        await asyncio.gather(*workers, return_exceptions=False)
    except asyncio.CancelledError:
        if not summary.interrupted:
            raise
    finally:
        if stopper is not None:
            stopper.cancel()
        if handle_sigint:
            loop.remove_signal_handler(signal.SIGINT)
        for task in workers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*workers, return_exceptions=True)


async def _worker(client: Client, feed: Feed, summary: Summary, sink: OutcomeSink | None) -> None:
    while (record := feed.next()) is not None:
        try:
            outcome = await client.fetch(record)
        except InputError as exc:
            summary.add_input_error(RecordError(record.source, record.line, str(exc)))
            continue
        mismatches = check(record.expect, outcome)
        summary.add(outcome, mismatches)
        if sink is not None:
            sink(outcome, mismatches)


def _stop(feed: Feed) -> None:
    feed.stopped = True


def _interrupt(feed: Feed, summary: Summary, workers: list[asyncio.Task[None]]) -> None:
    feed.stopped = True
    summary.interrupted = True
    for task in workers:
        task.cancel()


def run(
    source: RecordSource,
    run_options: RunOptions,
    options: ClientOptions | None = None,
    *,
    sink: OutcomeSink | None = None,
    handle_sigint: bool = False,
) -> Summary:
    """Blocking form of :func:`run_async`, on its own uvloop event loop."""
    import uvloop

    return uvloop.run(
        run_async(source, run_options, options, sink=sink, handle_sigint=handle_sigint)
    )
