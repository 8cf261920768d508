"""``--workers N``: one run split over N processes on this host, each with its own event loop
and its share of the records, the connections and the rate; their summaries merge into one.

The merge is :meth:`Summary.merge`, the same one a run spread over hosts uses. Each process
sends every N-th record (so each record still goes out once), so it reads the records file
itself: nothing crosses the process boundary but the finished summary.
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
from tether.run.options import RunOptions
from tether.run.session import run
from tether.run.signals import STOP_SIGNALS


def split(run_options: RunOptions, workers: int) -> list[RunOptions]:
    """Each process's share of a run. Pure. Counts split as evenly as whole numbers allow."""
    if run_options.rate is None and run_options.concurrency < workers:
        raise InputError(
            f"--workers {workers} needs at least one connection each: --concurrency "
            f"{run_options.concurrency} is fewer"
        )
    return [_share(run_options, k, workers) for k in range(workers)]


def _share(run_options: RunOptions, k: int, n: int) -> RunOptions:
    def part(total: int) -> int:
        return total // n + (1 if k < total % n else 0)

    rate = run_options.rate
    return dataclasses.replace(
        run_options,
        concurrency=max(part(run_options.concurrency), 1),
        requests=None if run_options.requests is None else part(run_options.requests),
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
    for share in split(run_options, workers):
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
