"""A run spread over the workers of a Dask distributed cluster (``--cluster ADDRESS``).

Each worker runs the same engine as a single-host run on its share of the records and of the
connections or rate (the split ``--workers`` uses), starting at one agreed moment; their
summaries merge into one of the same shape. Workers report their progress once a second as
Dask events (``log_event``), which the caller subscribes to: the progress line sums them, and
if a worker dies mid-run the summary is marked partial, naming it and what it had reported.

The records file is read by each worker at the same path (a shared or copied file), and
tether must be installed on the workers and the scheduler alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tether.document import LostWorker, WorkerReport
from tether.engine.options import ClientOptions, default_of
from tether.errors import InputError
from tether.metrics.summary import Summary
from tether.metrics.timeline import Point
from tether.records import Reading, file_source
from tether.run import signals
from tether.run.options import RunOptions
from tether.run.processes import shares
from tether.run.session import run

__all__ = ["TOPIC", "Reports", "run_on_cluster"]

TOPIC = "tether-progress"
START_DELAY = 1.0
"""Seconds between handing out the shares and their agreed start: time for every worker to
receive its task and set up, so that none starts late."""


@dataclass(slots=True)
class Reports:
    """The latest progress each worker reported (for the live line, and for a worker lost)."""

    last: dict[str, WorkerReport] = field(default_factory=dict)

    def heard(self, event: tuple[float, WorkerReport]) -> None:
        """A worker's event (Dask hands subscribers ``(timestamp, message)``)."""
        _, message = event
        self.last[message["worker"]] = message

    def requests(self) -> int:
        """Requests all workers have reported done."""
        return sum(int(m["requests"]) for m in self.last.values())


class _WorkerProgress:
    """A worker's progress view: each second's figures go to the caller as a Dask event."""

    def start(self) -> None:
        pass

    def show(self, point: Point, summary: Summary) -> None:
        from distributed import get_worker

        worker = get_worker()
        report: WorkerReport = {
            "worker": worker.address,
            "t": point.t,
            "requests": summary.requests,
            "errors": summary.errors,
            "mismatches": summary.mismatches,
            "open": point.open,
        }
        worker.log_event(TOPIC, report)

    def stop(self) -> None:
        pass


def _run_share(
    path: str, reading: Reading, share: RunOptions, options: ClientOptions, start_at: float
) -> Summary:
    """One worker's part (runs on the worker): wait for the agreed moment, then run."""
    time.sleep(max(start_at - time.time(), 0.0))
    return run(file_source(path, reading), share, options, progress=_WorkerProgress())


def run_on_cluster(
    address: str,
    path: str,
    reading: Reading,
    run_options: RunOptions,
    options: ClientOptions,
    workers: int | None = None,
    on_progress: Callable[[Reports], None] | None = None,
) -> Summary:
    """Run over the cluster at ``address`` (all its workers, or ``workers`` of them) and
    return the merged summary; a worker lost mid-run leaves it marked partial."""
    from distributed import Client

    # --connect-timeout 0 (none) is for the requests; reaching the scheduler has a bound
    # whatever was asked, the default one.
    timeout = options.connect_timeout or default_of(ClientOptions, "connect_timeout")
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except OSError as exc:
        raise InputError(f"cannot reach the Dask cluster at {address}: {exc}") from None
    reports = Reports()
    with client:
        names = sorted(client.scheduler_info()["workers"])[:workers]
        if not names:
            raise InputError(f"the Dask cluster at {address} has no workers")
        parts = shares(
            path, reading, run_options, len(names), f"--cluster with {len(names)} workers"
        )

        def heard(event: tuple[float, WorkerReport]) -> None:
            reports.heard(event)
            if on_progress is not None:
                on_progress(reports)

        client.subscribe_topic(TOPIC, heard)
        start_at = time.time() + START_DELAY
        futures = {
            client.submit(
                _run_share, path, reading, share, options, start_at,
                workers=[name], allow_other_workers=False, pure=False, retries=0,
            ): name
            for name, share in zip(names, parts, strict=True)
        }  # fmt: skip
        return _gather(client, futures, reports)


def _gather(client: Any, futures: dict[Any, str], reports: Reports) -> Summary:
    """Merge the workers' summaries as they come. A share whose worker left the cluster (a
    task pinned to a worker would wait for it forever) or that failed is counted lost, with
    what its worker had reported; the summary is then partial."""
    parts: list[Summary] = []
    lost: list[LostWorker] = []
    pending = dict(futures)
    interrupted: str | None = None  # the signal that stopped the gathering, if one did
    try:
        with signals.raising():
            while pending:
                time.sleep(0.2)  # futures' states update in the background; a run lasts seconds
                _collect(client, pending, parts, lost, reports)
    except KeyboardInterrupt as exc:
        # Ctrl-C (or SIGTERM, SIGHUP): what has come back stands, and the shares still out
        # are named with what they had reported (their workers finish them; nobody waits).
        interrupted = signals.name_of(exc)
        for future, name in pending.items():
            future.cancel()
            lost.append(
                {"worker": name, "error": "interrupted", "reported": reports.last.get(name)}
            )
    total = parts[0] if parts else Summary()
    for part in parts[1:]:
        total.merge(part)
    total.facts.lost_workers.extend(lost)
    total.facts.interrupted = total.facts.interrupted or interrupted is not None
    total.facts.signal = total.facts.signal or interrupted
    return total


def _collect(
    client: Any,
    pending: dict[Any, str],
    parts: list[Summary],
    lost: list[LostWorker],
    reports: Reports,
) -> None:
    """Take in the shares that finished, and count lost those whose worker left the cluster
    or that failed (a task pinned to a gone worker would wait for it forever). A share that
    stopped at a usage error (a path with no --target: every share reads the same records)
    raises it: the run's error, said once, as it is in one process."""
    alive = set(client.scheduler_info()["workers"])
    for future, name in list(pending.items()):
        if future.status == "finished":
            parts.append(future.result())
        elif future.status == "pending" and name in alive:
            continue
        elif future.status == "error" and isinstance(error := future.exception(), InputError):
            raise error
        else:
            why = "left the cluster" if name not in alive else _why(future)
            future.cancel()
            lost.append({"worker": name, "error": why, "reported": reports.last.get(name)})
        del pending[future]


def _why(future: Any) -> str:
    if future.status == "error":
        return f"failed: {future.exception()}"
    return f"ended {future.status}"
