"""``--workers N``: one run split over N processes on this host, each with its own event loop
and its share of the records, the connections and the rate; their summaries merge into one.

The merge is :meth:`Summary.merge`, the same one a run spread over hosts uses. Each process
sends every N-th request of the run one process would send (:func:`tether.run.feed.dealt`):
without ``--requests`` or ``--duration`` each record goes out once, from one of them; with
either they send together what one process would (that many, or for that long), the records
in order, cycled, however few there are. Each reads the records file itself: nothing
crosses the process boundary but the finished summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from types import FrameType

from tether.engine.options import ClientOptions
from tether.errors import InputError
from tether.metrics.summary import Summary
from tether.records import PLAIN_READING, Reading, file_source
from tether.run.feed import counted
from tether.run.options import RunOptions
from tether.run.session import run
from tether.run.signals import STOP_SIGNALS


def shares(
    path: str, reading: Reading, run_options: RunOptions, workers: int, who: str | None = None
) -> list[RunOptions]:
    """:func:`split`, with the records at ``path`` counted as far as it needs (a run whose
    records do not cycle sends each once: each share needs one)."""
    records = None
    if not run_options.cycles:
        records = counted(file_source(path, reading), workers)
    return split(run_options, workers, records, who)


def split(
    run_options: RunOptions, workers: int, records: int | None = None, who: str | None = None
) -> list[RunOptions]:
    """Each share of a run over ``workers`` (processes, or a cluster's workers): its part of
    the requests, the connections and the rate, as evenly as whole numbers allow, so that
    together they are what was asked, and its positions in the stream of records
    (:func:`tether.run.feed.dealt`). Pure. ``records``: how many the file holds, counted up to
    ``workers`` (None: not counted). InputError, before anything is sent, when a share would
    have nothing to send or to send it with; ``who`` names the split in it."""
    why = _short(run_options, workers, records)
    if why is not None:
        raise InputError(f"{who or f'--workers {workers}'} {why}")
    return [_share(run_options, k, workers) for k in range(workers)]


def _short(run_options: RunOptions, workers: int, records: int | None) -> str | None:
    """Why some share of ``workers`` would have nothing to do, or None."""
    if run_options.rate is None and run_options.concurrency < workers:
        return (
            f"needs at least one connection each: --concurrency {run_options.concurrency} is fewer"
        )
    if run_options.rate is not None and run_options.max_inflight < workers:
        return (
            f"needs at least one request in flight each: --max-inflight "
            f"{run_options.max_inflight} is fewer"
        )
    if run_options.requests is not None and run_options.requests < workers:
        return f"needs at least one request each: --requests {run_options.requests} is fewer"
    if run_options.iterations is not None and run_options.iterations < workers:
        return f"needs at least one iteration each: --iterations {run_options.iterations} is fewer"
    # No records at all is the run's own error (nothing to send), said the same way alone.
    if not run_options.cycles and records is not None and 0 < records < workers:
        return (
            f"sends each record once without --requests or --duration, and the file holds "
            f"only {records} record(s): give either (records cycle) or fewer workers"
        )
    return None


def _share(run_options: RunOptions, k: int, n: int) -> RunOptions:
    def part(total: int) -> int:
        return total // n + (1 if k < total % n else 0)

    rate = run_options.rate
    return dataclasses.replace(
        run_options,
        # Exact parts: the checks above leave each share one where it needs one. The open
        # model has no workers to count, so a part of 0 there is fine (the summary's
        # concurrency is the parts' sum).
        concurrency=part(run_options.concurrency),
        requests=None if run_options.requests is None else part(run_options.requests),
        iterations=None if run_options.iterations is None else part(run_options.iterations),
        rate=None if rate is None else rate.share(n),
        max_inflight=max(part(run_options.max_inflight), 1),
        share=(k, n),
    )


def run_processes(
    path: str,
    run_options: RunOptions,
    options: ClientOptions,
    workers: int,
    reading: Reading = PLAIN_READING,
) -> Summary:
    """Run the records at ``path`` over ``workers`` processes and merge their summaries.

    A Ctrl-C reaches the parent only (each child has its own process group); the parent
    passes it on once (a SIGTERM or SIGHUP too), and every child stops and reports what it
    did.
    """
    if path == "-":
        raise InputError("--workers reads the records file in each process: give a file, not -")
    context = multiprocessing.get_context("fork")
    children = []
    for share in shares(path, reading, run_options, workers):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=_child, args=(path, reading, share, options, send), daemon=True
        )
        child.start()
        send.close()
        children.append((child, receive))
    pids = [child.pid for child, _ in children if child.pid is not None]
    previous = {signum: signal.signal(signum, _forward(pids)) for signum in STOP_SIGNALS}
    try:
        results = [_result(receive) for _, receive in children]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for child, _ in children:
            child.join(10)
    merged = results[0]
    for other in results[1:]:
        merged.merge(other)
    return merged


def _forward(pids: list[int]) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        for pid in pids:  # the same signal: each child stops and says which it was
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    return handler


def _result(receive: Pipe) -> Summary:
    try:
        result = receive.recv()
    except EOFError:
        raise RuntimeError("a worker process died before reporting its summary") from None
    if isinstance(result, BaseException):
        raise result
    assert isinstance(result, Summary)
    return result


def _child(
    path: str, reading: Reading, share: RunOptions, options: ClientOptions, send: Pipe
) -> None:
    os.setpgrp()  # the terminal's Ctrl-C goes to the parent, which passes it on once
    try:
        summary = run(file_source(path, reading), share, options, handle_sigint=True)
        for signum in STOP_SIGNALS:  # nothing may cut the report short
            signal.signal(signum, signal.SIG_IGN)
        summary.flush()
        send.send(summary)
    except Exception as exc:
        send.send(exc)
    finally:
        send.close()
