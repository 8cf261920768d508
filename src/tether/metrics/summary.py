"""The run's summary: outcomes stream in through ``add`` (O(1), constant memory), and
``to_dict`` computes the report document (after bucketing the latencies still buffered).

The document's keys are a contract (see the README): add keys, never rename them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tether.engine.ledger import Ledger
from tether.errors import RecordError
from tether.metrics.groups import Groups
from tether.metrics.histogram import Histogram
from tether.metrics.timeline import Timeline
from tether.model import Mismatch, Outcome
from tether.secrets import SECRET_HEADERS, masked

MAX_EXAMPLES = 20
FLUSH_EVERY = 4096
"""Latencies are buffered and bucketed in batches of this many: a list append per request
instead of a Python call."""


@dataclass(slots=True)
class Summary:
    """Counts, a latency histogram, the connection ledger and a few examples of each
    problem. Nothing in it grows with the number of requests."""

    ledger: Ledger = field(default_factory=Ledger)
    latency: Histogram = field(default_factory=Histogram)
    requests: int = 0
    ok: int = 0
    mismatched: int = 0
    errors: int = 0
    reused: int = 0
    retried: int = 0
    redirects: int = 0
    undrained_responses: int = 0
    status: Counter[int] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    mismatch_examples: list[dict[str, Any]] = field(default_factory=list)
    error_examples: list[dict[str, Any]] = field(default_factory=list)
    input_errors: int = 0
    input_error_examples: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    pending: list[float] = field(default_factory=list)  # latencies not yet in the histogram
    service: Histogram | None = None  # open model only: latency from the actual send
    pending_service: list[float] = field(default_factory=list)
    late: int = 0
    rate_target: float | None = None
    schedule_s: float | None = None  # open model: when the last request was due
    groups: Groups = field(default_factory=Groups)
    interrupted: bool = False
    concurrency: int = 1
    peak_inflight: int = 0  # open model: the most requests in flight at once
    target: str | None = None
    watch: dict[str, Any] | None = None  # the server side, when watched (tether.watch)
    secret: frozenset[str] = SECRET_HEADERS  # headers whose values examples do not show
    window: Histogram | None = None  # latencies since the timeline's last point
    timeline: Timeline = field(default_factory=Timeline)
    lost_workers: list[dict[str, Any]] = field(default_factory=list)  # cluster runs only

    def add(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        """Count one outcome and its check result."""
        self.requests += 1
        self.reused += outcome.reused
        self.retried += outcome.retried
        self.redirects += outcome.redirects
        group = self.groups.get(outcome.group)
        group.requests += 1
        if outcome.error is not None:
            group.errors += 1
            self._add_error(outcome)
            return
        group.pending.append(outcome.latency)
        self.status[outcome.status] += 1
        pending = self.pending
        pending.append(outcome.latency)
        if self.service is not None:
            self.pending_service.append(outcome.service)
        if len(pending) >= FLUSH_EVERY:
            self.flush()
        self.undrained_responses += outcome.body_truncated
        if mismatches:
            group.mismatches += 1
            self._add_mismatches(outcome, mismatches)
        else:
            group.ok += 1
            self.ok += 1

    def add_ok(
        self,
        group_key: str,
        status: int,
        latency: float,
        service: float,
        reused: bool,
        truncated: bool,
    ) -> None:
        """Count a response that met its expectation, with no outcome built: what
        :meth:`add` does for one, in fewer steps (this is most requests of a run)."""
        self.requests += 1
        self.ok += 1
        self.reused += reused
        self.undrained_responses += truncated
        self.status[status] += 1
        group = self.groups.get(group_key)
        group.requests += 1
        group.ok += 1
        group.pending.append(latency)
        pending = self.pending
        pending.append(latency)
        if self.service is not None:
            self.pending_service.append(service)
        if len(pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Move buffered latencies into the histogram, in one numpy batch."""
        if self.window is not None and self.pending:
            self.window.record_seconds(list(self.pending))  # a copy: the next line empties it
        self.latency.record_seconds(self.pending)
        if self.service is not None:
            self.service.record_seconds(self.pending_service)
        self.groups.flush()

    def merge(self, other: Summary) -> None:
        """Add another summary of the same run (another process's share): counts add,
        histograms merge, examples fill up to their bound, time is the longest."""
        self.flush()
        other.flush()
        self.ledger.merge(other.ledger)
        self.latency.merge(other.latency)
        self.groups.merge(other.groups)
        if other.service is not None:
            self.service = self.service or Histogram()
            self.service.merge(other.service)
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.status.update(other.status)
        self.error_kinds.update(other.error_kinds)
        for name in _EXAMPLES:
            mine: list[dict[str, Any]] = getattr(self, name)
            mine.extend(getattr(other, name)[: max(MAX_EXAMPLES - len(mine), 0)])
        self.duration = max(self.duration, other.duration)
        self.interrupted = self.interrupted or other.interrupted
        self.target = self.target or other.target
        if other.rate_target is not None:
            self.rate_target = (self.rate_target or 0.0) + other.rate_target
        self.timeline.merge(other.timeline)
        self.lost_workers.extend(other.lost_workers)
        if other.schedule_s is not None:
            self.schedule_s = max(self.schedule_s or 0.0, other.schedule_s)

    def add_input_error(self, error: RecordError) -> None:
        """Count a record that could not be sent (it is skipped, never guessed at)."""
        self.input_errors += 1
        if len(self.input_error_examples) < MAX_EXAMPLES:
            self.input_error_examples.append(
                {"source": error.source, "line": error.line, "error": error.problem}
            )

    def _add_error(self, outcome: Outcome) -> None:
        self.errors += 1
        self.error_kinds[outcome.error_kind or "request"] += 1
        if len(self.error_examples) < MAX_EXAMPLES:
            rec = outcome.record
            self.error_examples.append(
                {
                    "line": rec.line,
                    "method": rec.method,
                    "url": outcome.url,
                    "kind": outcome.error_kind,
                    "error": outcome.error,
                    "group": outcome.group,
                }
            )

    def _add_mismatches(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        self.mismatched += 1
        room = MAX_EXAMPLES - len(self.mismatch_examples)
        rec = outcome.record
        for m in mismatches[: max(room, 0)]:
            self.mismatch_examples.append(
                {
                    "line": rec.line,
                    "method": rec.method,
                    "url": outcome.url,
                    "field": m.field,
                    "expected": masked(m.field, m.expected, self.secret),
                    "got": masked(m.field, m.got, self.secret),
                    "group": outcome.group,
                }
            )

    def to_dict(self) -> dict[str, Any]:
        """The summary document (what ``--json`` writes)."""
        self.flush()
        return {
            "requests": self.requests,
            "ok": self.ok,
            "mismatches": self.mismatched,
            "errors": self.errors,
            "duration_s": round(self.duration, 6),
            "rate": round(self.requests / self.duration, 1) if self.duration > 0 else 0.0,
            "status": {str(code): n for code, n in sorted(self.status.items())},
            "latency_ms": self.latency.percentiles_ms(),
            "latency_distribution": self.latency.distribution_ms(),
            "service_ms": (self.service or self.latency).percentiles_ms(),
            "late": self.late,
            "rate_target": self.rate_target,
            "schedule_s": None if self.schedule_s is None else round(self.schedule_s, 6),
            "connections": self._connections(),
            "mismatch_examples": self.mismatch_examples,
            "error_kinds": dict(sorted(self.error_kinds.items())),
            "error_examples": self.error_examples,
            "input_errors": self.input_errors,
            "input_error_examples": self.input_error_examples,
            "redirects_followed": self.redirects,
            "undrained_responses": self.undrained_responses,
            "concurrency": self.concurrency,
            "peak_inflight": self.peak_inflight,
            "target": self.target,
            "interrupted": self.interrupted,
            "groups": self.groups.to_list(),
            "watch": self.watch,
            "timeline": self.timeline.to_list(),
            "partial": bool(self.lost_workers),
            "lost_workers": self.lost_workers,
        }

    def _connections(self) -> dict[str, Any]:
        led = self.ledger
        return {
            "opened": led.opened,
            "reused": self.reused,
            "closed_by_server": led.closed_by_server,
            "closed_undrained": led.closed_undrained,
            "retried_stale": led.retried_stale,
            "peak_open": led.peak_open,
            "connect_failed": led.connect_failed,
            "requests_per_connection": round(self.requests / led.opened, 2) if led.opened else 0,
            "reuse_fraction": round(self.reused / self.requests, 4) if self.requests else 0.0,
            "closed": {r.name.lower(): n for r, n in sorted(led.closed.items(), key=_by_name)},
        }


_COUNTS = (
    "requests",
    "ok",
    "mismatched",
    "errors",
    "reused",
    "retried",
    "redirects",
    "undrained_responses",
    "input_errors",
    "late",
    "concurrency",
    "peak_inflight",
)
_EXAMPLES = ("mismatch_examples", "error_examples", "input_error_examples")


def _by_name(item: tuple[Any, int]) -> str:
    return str(item[0].name)
