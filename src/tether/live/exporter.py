"""``--prometheus-listen HOST:PORT``: the run's figures served to Prometheus while it goes on,
an output surface like the progress line.

The address is bound before the first request (a port in use is a usage error before anything
is sent); prometheus_client is imported and the server started in a thread of its own, so the
first request never waits for its import (a scrape that comes meanwhile waits in the listen
backlog). Each scrape reads the live summary on the run's own event loop, the one thread that
writes it, so its figures agree with each other (every status adds up to the requests, a
histogram's buckets to its count); nothing is done per request, and nothing per second when
nobody scrapes. When the run ends, after its last fold and its connections closed, the final
figures are frozen, and the endpoint may stay up until Prometheus has scraped them once
(:meth:`Exporter.linger`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether.document import Counts
from tether.errors import InputError
from tether.http.urls import host_port
from tether.metrics.histogram import Histogram, bucket_index
from tether.metrics.summary import Summary

if TYPE_CHECKING:
    from socketserver import BaseServer

__all__ = ["LATENCY_BOUNDS_S", "Exporter", "Figures", "Latency", "figures", "listen_address"]

LATENCY_BOUNDS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
)  # fmt: skip
"""The latency histogram's bucket bounds (``le``), in seconds: fixed, so that every scrape and
every run can be summed and compared (a bound that moved with the data could not be). They
start at 100 us: a keep-alive request on loopback takes less than a millisecond."""

BOUND_BUCKETS = [bucket_index(round(bound * 1_000_000)) for bound in LATENCY_BOUNDS_S]
"""The histogram bucket each bound falls in."""

READ_WAIT_S = 10.0
"""How long a scrape waits for the run's loop to read the summary before it fails: the loop
answers within a callback's time unless something holds it, which a failed scrape then
shows (Prometheus marks the target down) instead of hanging."""


def listen_address(text: str) -> tuple[str, int]:
    """``127.0.0.1:9464`` or ``[::1]:9464`` as (host, port) (pure); InputError naming the
    flag otherwise. The host is required: an exporter on every interface is a choice to make
    (``0.0.0.0:9464``), never a default."""
    found = host_port(text)
    if found is None or found[1] == 0:
        raise InputError(
            f"--prometheus-listen {text!r}: give HOST:PORT, such as 127.0.0.1:9464 "
            "(this machine only) or 0.0.0.0:9464 (every interface)"
        )
    return found


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency histogram as Prometheus has one: at each of :data:`LATENCY_BOUNDS_S` the
    number of values at or below it (``cumulative``), the number of values and their sum."""

    cumulative: tuple[int, ...]
    count: int
    sum_s: float


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One record group's requests by how they ended, and its latencies (the names its row
    of the document has)."""

    group: str
    ok: int
    mismatches: int
    errors: int
    latency: Latency


@dataclass(frozen=True, slots=True)
class Figures:
    """What one scrape shows, as plain data (read on the run's loop, turned into metric
    families in the server's thread): the run's counts at one moment as the summary document
    has them (``counts``, its keys and its writer), and what only a live run has: the
    connections open now, the latency histograms at :data:`LATENCY_BOUNDS_S` (the run's, the
    open model's service times, each group's), and whether the run is over."""

    counts: Counts
    open_now: int
    latency: Latency
    service: Latency | None  # open model: from the actual send, not from when it was due
    groups: tuple[GroupFigures, ...]
    finished: bool


def figures(summary: Summary, finished: bool) -> Figures:
    """The summary's figures now (on the run's loop: it writes the summary). Buffered
    latencies are bucketed first, as a timeline point does, so the histograms hold every
    response counted."""
    counts = summary.counts()  # flushes the buffered latencies
    groups = tuple(
        GroupFigures(key, g.ok, g.mismatches, g.errors, latency(g.latency))
        for key, g in summary.groups.by_key.items()
    )
    return Figures(
        counts=counts,
        open_now=summary.ledger.open_now,
        latency=latency(summary.latency),
        service=None if summary.service is None else latency(summary.service),
        groups=groups,
        finished=finished,
    )


def latency(histogram: Histogram) -> Latency:
    """A histogram's counts at :data:`LATENCY_BOUNDS_S`, its count and its sum in seconds.

    A bound counts the values whose bucket lies wholly below it. A latency is kept as whole
    microseconds, rounded down, so a value below a bound is a latency below it, and a bound
    that starts a bucket counts exactly. Every bound up to 10 ms does (values below 2048 us
    have a bucket each; 2500, 5000 and 10000 are multiples of their buckets' widths); a
    larger one may fall inside a bucket, whose values below the bound (within 1/1024 of it)
    are then counted at the next bound up: 25 ms counts those below 24.992 ms, 1 s those
    below 999.936 ms."""
    # The non-zero buckets and their running totals, which the histogram's percentiles are
    # found in (worked out once per state of its counters): a search per bound takes
    # microseconds on the run's loop, where to_dict takes a millisecond for a long run's
    # thousands of buckets, for every group at every scrape.
    index, running = histogram._ranks()
    at = index.searchsorted(BOUND_BUCKETS)  # the buckets wholly below each bound
    cumulative = tuple(int(running[i - 1]) if i else 0 for i in at.tolist())
    return Latency(cumulative, histogram.count, histogram.total / 1e6)


class Exporter:
    """The endpoint Prometheus scrapes during a run: bound when made (before anything is
    sent), serving from :meth:`start` (on the run's loop) to :meth:`close`."""

    def __init__(self, listen: str) -> None:
        host, port = listen_address(listen)
        if importlib.util.find_spec("prometheus_client") is None:
            raise InputError("--prometheus-listen needs prometheus-client: pip install it")
        try:
            family, _, _, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            self._socket = socket.create_server(address, family=family)
        except OSError as exc:
            # errno's own words: create_server adds the address, which the flag already says
            # (a host that does not resolve has a negative one, and words of its own)
            code = exc.errno or 0
            why = os.strerror(code) if code > 0 else exc.strerror or str(exc)
            raise InputError(f"--prometheus-listen {listen}: cannot listen there: {why}") from None
        self.url = f"http://{listen}/metrics"
        self._lock = threading.Lock()
        self._server: BaseServer | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._summary: Summary | None = None
        self._final: Figures | None = None
        self._final_sent = threading.Event()
        self._serving = threading.Event()

    def start(self, summary: Summary, settle: bool = False) -> None:
        """Serve ``summary`` from now on (called on the run's loop, before the first request).
        With ``settle`` (an open model's schedule, which an import under way would make
        late) wait until the server is up."""
        self._loop, self._summary = asyncio.get_running_loop(), summary
        self._thread = threading.Thread(target=self._serve, name="tether-prometheus", daemon=True)
        self._thread.start()
        if settle:
            self._serving.wait(READ_WAIT_S)

    def stop(self) -> None:
        """The run is over (on its loop, after the last fold and its connections closed):
        every later scrape shows these final figures."""
        if self._summary is not None:
            self._final = figures(self._summary, finished=True)

    @property
    def finished(self) -> bool:
        """The run is over: what a scrape shows from now on is final."""
        return self._final is not None

    def read(self) -> Figures:
        """The figures for a scrape (in the server's thread): the final ones, or the live
        summary's, read on the run's loop."""
        final, loop = self._final, self._loop
        if final is not None:
            return final
        assert loop is not None  # the server starts once the run's loop is known
        asked: concurrent.futures.Future[Figures] = concurrent.futures.Future()
        with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
            loop.call_soon_threadsafe(self._answer, asked)
        deadline = time.monotonic() + READ_WAIT_S
        while True:
            try:
                return asked.result(timeout=0.05)
            except TimeoutError:
                # The run may have ended with this question still queued on its loop.
                if self._final is not None:
                    return self._final
                if time.monotonic() > deadline:
                    raise

    def _answer(self, asked: concurrent.futures.Future[Figures]) -> None:
        assert self._summary is not None
        if asked.set_running_or_notify_cancel():
            try:
                asked.set_result(figures(self._summary, finished=False))
            except Exception as exc:  # the scrape fails with it, the run goes on
                asked.set_exception(exc)

    def final_sent(self) -> None:
        """A scrape's response with the final figures has been written to its socket."""
        self._final_sent.set()

    @property
    def scraped(self) -> bool:
        """The final figures have been scraped."""
        return self._final_sent.is_set()

    def linger(self, seconds: float) -> bool:
        """Keep serving the final figures until they have been scraped once, for at most
        ``seconds``; whether they were. Ctrl-C ends the wait."""
        try:
            return self._final_sent.wait(seconds)
        except KeyboardInterrupt:
            return self.scraped

    def close(self) -> None:
        """Stop serving and free the address."""
        with self._lock:
            self._closed = True
            server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
        else:
            self._socket.close()
        if self._thread is not None:
            self._thread.join(READ_WAIT_S)

    def _serve(self) -> None:
        try:
            # Imported here, in this thread: the client library takes tens of milliseconds.
            from tether.live import prometheus

            with self._lock:
                if self._closed:
                    self._socket.close()
                    return
                server = self._server = prometheus.server(self._socket, self)
        finally:
            self._serving.set()  # up, or never to be: nobody waits for it in vain
        server.serve_forever(poll_interval=0.1)
