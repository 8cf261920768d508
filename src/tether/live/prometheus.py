"""The run's figures as Prometheus metrics: a custom collector, whose families are built at
scrape time from the figures the live summary has then (:mod:`tether.live.exporter`
reads them), and prometheus_client's own WSGI server to serve them.

Nothing here is updated per request: the run counts as it always does (the compiled path in
C, folded into the summary once a second), and a scrape reads what the summary holds. This
module imports prometheus_client, so it is imported only by the exporter's thread.

Every name starts with ``tether_``. Requests are counted by status (``error`` for those that
got no response) in ``tether_requests_total``, and by record group and how they ended (``ok``,
``mismatch``, ``error``) in ``tether_group_requests_total``: the run counts statuses for the
run and results per group, not statuses per group, so no metric pretends to. Either sums to
the run's requests.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from tether.document import Connections, Counts
from tether.ledger import CloseReason
from tether.live.exporter import LATENCY_BOUNDS_S, Exporter, Figures, Latency

__all__ = ["RunCollector", "families", "server"]

BUCKET_NAMES = tuple(repr(float(bound)) for bound in LATENCY_BOUNDS_S)
"""The ``le`` of each bound, as prometheus_client writes its own histograms' (``1.0``)."""


class RunCollector(Collector):
    """The run's metrics, from the figures ``read`` returns at each scrape."""

    def __init__(self, read: Callable[[], Figures]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        """Every family, from one reading of the run's figures."""
        return families(self._read())


def families(f: Figures) -> Iterator[Metric]:
    """The metric families of one moment of a run (pure): each count read from the summary
    document's keys (``f.counts``), under the metric name it has always had."""
    c = f.counts
    # Every request by its status, and "error" for those that got no response: the counts
    # add up to the requests.
    status = {**c["status"], "error": c["errors"]}
    yield _labelled(
        "tether_requests_total",
        "Requests done, by the status code of their response (error: none came).",
        ["status"],
        {(code,): n for code, n in status.items()},
    )
    yield _labelled(
        "tether_group_requests_total",
        "Requests done, by record group and result (ok, mismatch, error).",
        ["group", "result"],
        _group_results(f),
    )
    yield _counter("tether_mismatches_total", "Responses that did not match.", c["mismatches"])
    yield _labelled(
        "tether_errors_total",
        "Requests that got no response, by kind of error.",
        ["kind"],
        {(kind,): n for kind, n in c["error_kinds"].items()},
    )
    yield _histogram("tether_latency_seconds", "Latency of the responses.", f.latency)
    yield _group_latency(f)
    if f.service is not None:
        yield _histogram(
            "tether_service_seconds",
            "Open model: time of the responses from their actual send, not their due time.",
            f.service,
        )
    yield from _connections(c["connections"], f.open_now)
    yield from _run(c, f.finished)


def _group_results(f: Figures) -> dict[tuple[str, ...], int]:
    results: dict[tuple[str, ...], int] = {}
    for g in f.groups:
        for result, n in (("ok", g.ok), ("mismatch", g.mismatches), ("error", g.errors)):
            results[(g.group, result)] = n
    return results


def _group_latency(f: Figures) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "tether_group_latency_seconds",
        "Latency of the responses, by record group.",
        labels=["group"],
    )
    for g in f.groups:
        family.add_metric([g.group], _buckets(g.latency), g.latency.sum_s)
    return family


def _connections(c: Connections, open_now: int) -> Iterator[Metric]:
    yield _counter("tether_connections_opened_total", "Connections opened.", c["opened"])
    yield _counter(
        "tether_connections_reused_total",
        "Requests sent on a connection that had carried one before.",
        c["reused"],
    )
    yield _gauge("tether_connections_open", "Connections open now.", open_now)
    yield _gauge("tether_connections_peak_open", "Most connections open at once.", c["peak_open"])
    # Every close reason, 0 or not, so that a dashboard's series exist from the first scrape.
    closed = {reason.key: 0 for reason in CloseReason} | c["closed"]
    yield _labelled(
        "tether_connections_closed_total",
        "Connections closed, by reason.",
        ["reason"],
        {(reason,): n for reason, n in closed.items()},
    )
    yield _counter(
        "tether_connections_connect_failed_total",
        "Connections that could not be opened.",
        c["connect_failed"],
    )
    yield _counter(
        "tether_connections_retried_stale_total",
        "Requests retried on a new connection after a reused one turned out closed.",
        c["retried_stale"],
    )


def _run(c: Counts, finished: bool) -> Iterator[Metric]:
    yield _counter("tether_late_total", "Open model: requests sent after they were due.", c["late"])
    yield _gauge(
        "tether_inflight_peak", "Open model: most requests in flight at once.", c["peak_inflight"]
    )
    yield _gauge("tether_concurrency", "Connections (workers) the run was given.", c["concurrency"])
    rate_target = c["rate_target"]
    if rate_target is not None:
        yield _gauge(
            "tether_rate_target",
            "Open model: the schedule's mean rate, requests/s.",
            rate_target,
        )
    yield _counter(
        "tether_redirects_followed_total", "Redirects followed.", c["redirects_followed"]
    )
    yield _counter(
        "tether_undrained_responses_total",
        "Responses whose body was not read to its end (over the drain limit or deadline).",
        c["undrained_responses"],
    )
    yield _counter(
        "tether_input_errors_total", "Records that could not be sent.", c["input_errors"]
    )
    yield _gauge(
        "tether_run_finished",
        "1 once the run is over: these are its final figures.",
        int(finished),
    )
    yield InfoMetricFamily(
        "tether_run", "The run: which send path made its figures.", {"engine": c["engine"]}
    )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _labelled(
    name: str, doc: str, labels: Sequence[str], values: Mapping[tuple[str, ...], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, n in values.items():
        family.add_metric(key, n)
    return family


def _histogram(name: str, doc: str, latency: Latency) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=_buckets(latency), sum_value=latency.sum_s)


def _buckets(latency: Latency) -> list[tuple[str, float]]:
    return [*zip(BUCKET_NAMES, latency.cumulative, strict=True), ("+Inf", latency.count)]


def server(sock: socket.socket, exporter: Exporter) -> ThreadingWSGIServer:
    """prometheus_client's threaded WSGI server and app on ``sock`` (bound and listening),
    serving the run's collector and the process's own (``tether_process_cpu_seconds_total``,
    memory, open files: is the client itself saturated?)."""
    registry = CollectorRegistry()
    registry.register(RunCollector(exporter.read))
    ProcessCollector(namespace="tether", registry=registry)
    httpd = _Served(sock)
    httpd.set_app(_noting_final(cast(WSGIApplication, make_wsgi_app(registry)), exporter))
    return httpd


MOST_SCRAPERS = 16
"""Connections served at once (a thread each): Prometheus scrapes on one at a time, and
connections past these are closed as they come, so that idle ones cannot grow the run's
threads without bound."""

REQUEST_TIMEOUT_S = 5.0
"""What a connection may take to send its request: one that sends nothing (or half a
head) is closed then, not held by a thread for the rest of the run."""


class _Served(ThreadingWSGIServer):
    """The server on a socket bound already: bound before the first request, while
    prometheus_client was still being imported; at most :data:`MOST_SCRAPERS` connections
    at once."""

    def __init__(self, sock: socket.socket) -> None:
        self._room = threading.BoundedSemaphore(MOST_SCRAPERS)
        self.address_family = sock.family
        host, port = sock.getsockname()[:2]
        super().__init__((host, port), _Quiet, bind_and_activate=False)
        self.socket.close()  # the one the base class made, never bound
        self.socket = sock
        self.server_address = sock.getsockname()
        # What server_bind would set; its getfqdn could wait on DNS.
        self.server_name, self.server_port = host, port
        self.setup_environ()

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection while there is room; else it is closed at once."""
        if not self._room.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._room.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that timed out or went away is no error of the run's: nothing on
        stderr (the base class prints a traceback for each)."""
        if not isinstance(sys.exc_info()[1], OSError):  # TimeoutError is one
            super().handle_error(request, client_address)


class _Quiet(WSGIRequestHandler):
    """A scrape is not worth a line on stderr; one that does not send its request within
    :data:`REQUEST_TIMEOUT_S` is closed."""

    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: object) -> None:  # the base's names
        pass


def _noting_final(app: WSGIApplication, exporter: Exporter) -> WSGIApplication:
    """``app``, telling ``exporter`` when a scrape of the final figures has been written."""

    def noted(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        final = exporter.finished  # before the figures are read: they are final then too
        body = list(app(environ, start_response))
        scrape = environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"] != "/favicon.ico"
        return _Sent(body, exporter.final_sent) if final and scrape else body

    return noted


class _Sent:
    """A response body that calls ``sent`` once the server has written all of it: the server
    asks for the next chunk only after writing the last, and closes the body after (PEP 3333)."""

    def __init__(self, body: list[bytes], sent: Callable[[], None]) -> None:
        self._body = body
        self._sent = sent
        self._written = False

    def __len__(self) -> int:
        return len(self._body)  # one block: the server sends its Content-Length

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        self._written = True

    def close(self) -> None:
        if self._written:
            self._sent()
