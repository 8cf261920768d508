"""The summary document's shape: what :meth:`Summary.to_dict` writes (``--json``), each of
its nested parts, and the two kinds of line in a results file (``--results``). The README
calls the document's keys a contract (keys are added, never renamed); these TypedDicts are
that contract in a form mypy checks, so a renderer reading a key no writer writes, or a key
renamed on one side only, is a type error. ``tests/test_document.py`` holds a real run's
document and results file to them, key for key.

Pure data, importing nothing of tether: the metrics (which write most of the document), the
watch (which writes its ``"watch"`` part) and the reports (which read it) all stand on it.
"""

# No ``from __future__ import annotations`` here: Python 3.11's TypedDict tells NotRequired
# keys apart only in evaluated annotations, and the keys test reads ``__required_keys__``.

from typing import NotRequired, TypedDict, final

__all__ = [
    "OUTCOME_DEFAULTS",
    "ClosingLine",
    "Connections",
    "Counts",
    "ErrorExample",
    "GroupRow",
    "H2Streams",
    "InputErrorExample",
    "LatencyMs",
    "LineMismatch",
    "LoadModel",
    "LostWorker",
    "MismatchExample",
    "Omitted",
    "OutcomeLine",
    "RunEnd",
    "SummaryDocument",
    "ThresholdResult",
    "TimelinePoint",
    "Watch",
    "WatchFigure",
    "WatchSource",
    "WorkerReport",
]


class LatencyMs(TypedDict):
    """Latency percentiles in milliseconds (``latency_ms``, ``service_ms``, a group's)."""

    min: float
    p50: float
    p90: float
    p99: float
    max: float
    mean: float


class H2Streams(TypedDict):
    """``connections.h2``: what the run's HTTP/2 connections carried (null without one)."""

    connections: int  # connections that spoke h2 (the rest of ``opened`` spoke HTTP/1.1)
    streams: int  # streams opened: requests sent, those the server refused included
    streams_per_connection: float
    peak_concurrent_streams: int  # the most open at once on one connection
    goaway_received: int
    retried_refused: int  # requests sent again: their stream was never processed
    rst_received: dict[str, int]  # RST_STREAM frames by error code (``refused_stream``, ...)
    rst_sent: dict[str, int]  # ``cancel``: a body past the drain limit, a timeout
    flow_control_stalls: int  # times a request body waited for WINDOW_UPDATE
    flow_control_stall_s: float  # the seconds they waited
    leaked_streams: int  # leak mode: answered at the headers, the body never read
    stalled_streams: int  # leak mode: still open at the end, the server unable to finish
    unread_bytes: int  # leak mode: body bytes received and never acknowledged


class Connections(TypedDict):
    """``connections``: the connection ledger, and reuse per request. ``protocol`` and
    ``h2`` came with HTTP/2 (results files written before have neither)."""

    opened: int
    reused: int
    closed_by_server: int
    closed_undrained: int
    retried_stale: int
    peak_open: int
    connect_failed: int
    requests_per_connection: float
    reuse_fraction: float
    closed: dict[str, int]  # closes by reason, the reason's name in lower case
    protocol: NotRequired[dict[str, int]]  # requests carried, by protocol (``http/1.1``, ``h2``)
    h2: NotRequired[H2Streams | None]


class MismatchExample(TypedDict):
    """One of ``mismatch_examples``: a response field that was not what its record expected
    (secret header values masked), listed once per record and field, with ``count``, how
    many responses it was (the first one's expected and got shown)."""

    line: int
    method: str
    url: str
    field: str
    expected: str
    got: str
    group: str
    count: int


class ErrorExample(TypedDict):
    """One of ``error_examples``: a request that failed, listed once per record and error
    kind, with ``count``, how many requests it was (the first one's error shown)."""

    line: int
    method: str
    url: str
    kind: str | None
    error: str | None
    group: str
    count: int


class Omitted(TypedDict):
    """``mismatch_examples_omitted``, ``error_examples_omitted``: the distinct examples past
    those listed. ``distinct`` is exact up to a bound (``exact`` false past it: a lower
    bound); ``count`` is how many times they happened, always exact."""

    distinct: int
    count: int
    exact: bool


class InputErrorExample(TypedDict):
    """One of ``input_error_examples``: a record that could not be sent."""

    source: str
    line: int
    error: str


class GroupRow(TypedDict):
    """One of ``groups``: a record group's counts and latency."""

    group: str
    requests: int
    ok: int
    mismatches: int
    errors: int
    latency_ms: LatencyMs


class FlowRow(TypedDict):
    """One of ``flows``: a flow's iterations, completed (every request met its expectation)
    or failed (one did not, or a capture found nothing), and of the failed, how many were
    cut short (the rest of the iteration not sent)."""

    completed: int
    failed: int
    cut: int
    steps: list[str]  # the groups of its records, in flow order


class TimelinePoint(TypedDict):
    """One of ``timeline``: a stretch of the run (about a second), ending at ``t``."""

    t: float
    requests: int
    rps: float
    errors: int
    mismatches: int
    status: dict[str, int]
    open: int
    p50_ms: float | None
    p99_ms: float | None


class WatchFigure(TypedDict):
    """A watched figure's first, peak and last sample."""

    first: float | None
    peak: float
    last: float


class WatchSource(TypedDict):
    """One of ``watch.sources``: what one server-side source showed."""

    source: str
    samples: int
    errors: int
    last_error: str | None
    metric_type: str | None
    figures: dict[str, WatchFigure]
    # "seconds", "requests", then one series per figure (None where a sample lacked it).
    series: dict[str, list[float | None]]


class Watch(TypedDict):
    """``watch``: the server side of the run (``--watch``)."""

    interval_s: float
    sources: list[WatchSource]
    leak_verdicts: list[str]
    cross_checks: list[str]


class WorkerReport(TypedDict):
    """A cluster worker's progress, as it reports it each second."""

    worker: str
    t: float
    requests: int
    errors: int
    mismatches: int
    open: int


class LostWorker(TypedDict):
    """One of ``lost_workers``: a cluster worker whose share is missing, and why."""

    worker: str
    error: str
    reported: WorkerReport | None  # what it had reported before it was lost


class ThresholdResult(TypedDict):
    """One of ``thresholds``: a ``--threshold``, the run's figure, and whether it held."""

    threshold: str
    value: float
    unit: str
    ok: bool


class LoadModel(TypedDict):
    """``model``: the load the run was asked for. ``kind`` is ``"concurrency"`` (the closed
    model, ``concurrency`` workers), ``"rate"`` (the open model at ``rate`` requests/s),
    ``"ramp"`` (from ``rate`` to ``rate_to`` requests/s over ``ramp_s`` seconds) or ``"pace"``
    (the records' own times, ``pace`` times faster); the open model's keep at most
    ``max_inflight`` requests in flight."""

    kind: str
    concurrency: NotRequired[int]
    rate: NotRequired[float]
    rate_to: NotRequired[float]
    ramp_s: NotRequired[float]
    pace: NotRequired[float]
    max_inflight: NotRequired[int]


class Counts(TypedDict):
    """The summary document's figures that a run's counters give at any moment, cheaply (no
    percentile, example or timeline is worked out): what the Prometheus exporter serves at
    each scrape of a live run. The document's keys of the same names, typed alike."""

    requests: int
    ok: int
    mismatches: int
    errors: int
    status: dict[str, int]
    late: int
    rate_target: float | None
    connections: Connections
    error_kinds: dict[str, int]
    input_errors: int
    redirects_followed: int
    undrained_responses: int
    concurrency: int
    peak_inflight: int
    engine: str


class SummaryDocument(TypedDict):
    """The summary document (``--json``): written by ``Summary.to_dict``, then judged by the
    run command, which adds ``thresholds``, ``gate_failures`` and ``unwritten``, and says
    what ran: ``started_at``, ``tether_version``, ``command`` and ``model`` (a summary
    rebuilt from results files, ``tether report``, has none of these four)."""

    requests: int
    ok: int
    mismatches: int
    errors: int
    duration_s: float
    rate: float
    status: dict[str, int]
    latency_ms: LatencyMs
    latency_distribution: list[list[float]]  # [percentile, ms] pairs
    latency_histogram: list[list[float]]  # [upper ms, count] pairs, about ten, min to max
    service_ms: LatencyMs
    late: int
    rate_target: float | None
    schedule_s: float | None
    connections: Connections
    mismatch_examples: list[MismatchExample]
    mismatch_examples_omitted: Omitted
    error_kinds: dict[str, int]
    error_examples: list[ErrorExample]
    error_examples_omitted: Omitted
    input_errors: int
    input_error_examples: list[InputErrorExample]
    redirects_followed: int
    undrained_responses: int
    concurrency: int
    peak_inflight: int
    target: str | None
    interrupted: bool
    signal: str | None  # the signal that interrupted the run ("SIGINT", "SIGTERM", ...)
    groups: list[GroupRow]
    flows: dict[str, FlowRow]  # by flow name; empty for a run of plain records
    watch: Watch | None
    timeline: list[TimelinePoint]
    partial: bool
    lost_workers: list[LostWorker]
    engine: str  # which send path made the figures: "compiled", "python" or "mixed"
    thresholds: NotRequired[list[ThresholdResult]]
    gate_failures: NotRequired[list[str]]
    unwritten: NotRequired[list[str]]  # outputs that could not be written, one sentence each
    started_at: NotRequired[str]  # ISO 8601, local time with its UTC offset, to the second
    tether_version: NotRequired[str]
    command: NotRequired[list[str]]  # the command line as argv, secrets masked
    model: NotRequired[LoadModel]


class LineMismatch(TypedDict):
    """One of an outcome line's ``mismatches`` (secret header values masked)."""

    field: str
    expected: str
    got: str


@final  # final: a results line is one of these or a ClosingLine, told apart by "end"
class OutcomeLine(TypedDict):
    """A results file's line for one outcome. A key in :data:`OUTCOME_DEFAULTS` is written
    only when it is not its default, as is ``service_ms`` when it is ``latency_ms``; files
    written before that have every key and read alike (and files older still have no ``t``,
    read as 0, and no ``group``, read as the method)."""

    t: NotRequired[float]
    line: int
    method: NotRequired[str]
    url: str
    group: NotRequired[str]
    status: int
    latency_ms: float
    service_ms: NotRequired[float]
    conn_id: int
    reused: NotRequired[bool]
    retried: NotRequired[bool]
    redirects: NotRequired[int]
    body_size: int
    body_truncated: NotRequired[bool]
    error: NotRequired[str | None]
    error_kind: NotRequired[str | None]
    protocol: NotRequired[str]  # what the response came over: ``http/1.1`` or ``h2``
    worker: NotRequired[int]  # a flow's: the virtual user that sent it
    iteration: NotRequired[int]  # and its iteration (both -1, and left out, for no flow)
    mismatches: NotRequired[list[LineMismatch]]


OUTCOME_DEFAULTS: dict[str, object] = {
    "method": "GET",  # as in a record
    "reused": False,
    "retried": False,
    "redirects": 0,
    "body_truncated": False,
    "error": None,
    "error_kind": None,
    "protocol": "http/1.1",
    "worker": -1,
    "iteration": -1,
    "mismatches": [],
}
"""What an outcome line's key means when it is absent: the writer leaves out a key whose
value is this (a plain response's line is half as long), and the reader fills it back."""


class RunEnd(TypedDict):
    """The closing line's figures: the run's that are not the sum of its outcomes (the
    summary document's keys of the same names)."""

    connections: Connections
    duration_s: float
    target: str | None
    concurrency: int
    interrupted: bool
    signal: NotRequired[str | None]  # (results files written before it have none)
    late: int
    rate_target: float | None
    schedule_s: float | None
    input_errors: int
    input_error_examples: list[InputErrorExample]
    watch: Watch | None
    flows: NotRequired[dict[str, FlowRow]]  # (results files written before it have none)


@final
class ClosingLine(TypedDict):
    """A results file's last line."""

    end: RunEnd
