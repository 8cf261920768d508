"""The run's summary: its tally (:class:`~tether.metrics.tally.Tally`, what adds up across
processes, which outcomes stream into), its facts (:class:`RunFacts`, what is true of the run
as a whole), and ``to_dict``, the report document made of both (after bucketing the
latencies still buffered).

The document's keys are a contract (see the README), typed in :mod:`tether.document`: add
keys, never rename them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tether.document import Connections, H2Streams, LostWorker, SummaryDocument, Watch
from tether.ledger import Streams
from tether.merging import Merges, by
from tether.metrics.tally import FLUSH_EVERY, MAX_EXAMPLES, Tally
from tether.secrets import SECRET_HEADERS

__all__ = ["FLUSH_EVERY", "MAX_EXAMPLES", "RunFacts", "Summary"]


def _first(mine: str | None, theirs: str | None) -> str | None:
    return mine or theirs


def _mine(mine: Any, theirs: Any) -> Any:
    return mine


def _same_or_mixed(mine: str, theirs: str) -> str:
    return mine if mine == theirs else "mixed"


def _added_if_set(mine: float | None, theirs: float | None) -> float | None:
    return mine if theirs is None else (mine or 0.0) + theirs


def _latest_if_set(mine: float | None, theirs: float | None) -> float | None:
    return mine if theirs is None else max(mine or 0.0, theirs)


@dataclass(slots=True)
class RunFacts(Merges):
    """What is true of a run as a whole rather than counted per outcome: what was asked of
    it, how long it took, how it ended. Written by the run (its session, its open model, a
    cluster's gathering) and by ``tether report`` from a results file's closing line.

    Each fact names how two processes' shares of one run combine (:mod:`tether.merging`),
    whatever its type (a fact is no count, and an int fact need not add up); a fact without
    a rule makes every merge fail."""

    by_type: ClassVar[bool] = False

    target: str | None = field(default=None, metadata=by(_first))
    # Each share has its part of the connections and of the rate: the run's are their sums.
    concurrency: int = field(default=1, metadata=by(operator.add))
    rate_target: float | None = field(default=None, metadata=by(_added_if_set))
    # Open model: the most requests in flight at once. The shares' peaks may or may not
    # coincide, so the run's is taken as their sum, the upper bound (as the ledger's
    # peak_open is).
    peak_inflight: int = field(default=0, metadata=by(operator.add))
    # The shares run side by side: the run lasts as long as the longest of them.
    schedule_s: float | None = field(default=None, metadata=by(_latest_if_set))
    duration: float = field(default=0.0, metadata=by(max))
    interrupted: bool = field(default=False, metadata=by(operator.or_))
    signal: str | None = field(default=None, metadata=by(_first))  # what interrupted it
    # The server side, when watched; --watch runs in one process, so a share's is the run's.
    watch: Watch | None = field(default=None, metadata=by(_mine))
    # Headers whose values examples do not show: the same for every share.
    secret: frozenset[str] = field(default=SECRET_HEADERS, metadata=by(_mine))
    lost_workers: list[LostWorker] = field(default_factory=list, metadata=by(operator.add))
    # Which send path made the figures: "compiled" or "python" (shares that differ: "mixed").
    engine: str = field(default="python", metadata=by(_same_or_mixed))


@dataclass(slots=True)
class Summary(Tally):
    """A run's tally (what its outcomes add up to) and its facts, and the summary document
    (:meth:`to_dict`). Nothing in it grows with the number of requests.

    The facts are written as ``summary.facts.target``; the properties below read them as
    the summary always has."""

    facts: RunFacts = field(default_factory=RunFacts)

    @property
    def secret(self) -> frozenset[str]:
        """Headers whose values examples do not show (the run's: ``facts.secret``)."""
        return self.facts.secret

    @property
    def target(self) -> str | None:
        """The target URL records were sent to, if one was given."""
        return self.facts.target

    @property
    def concurrency(self) -> int:
        """Connections (the closed model's workers) the run was given."""
        return self.facts.concurrency

    @property
    def rate_target(self) -> float | None:
        """Open model: the schedule's mean rate, requests per second."""
        return self.facts.rate_target

    @property
    def peak_inflight(self) -> int:
        """Open model: the most requests in flight at once."""
        return self.facts.peak_inflight

    @property
    def schedule_s(self) -> float | None:
        """Open model: when the last request was due, in seconds from the start."""
        return self.facts.schedule_s

    @property
    def duration(self) -> float:
        """How long the run took, in seconds."""
        return self.facts.duration

    @property
    def interrupted(self) -> bool:
        """The run was stopped before the end (Ctrl-C, or a results file cut short)."""
        return self.facts.interrupted

    @property
    def watch(self) -> Watch | None:
        """The server side, when watched (:mod:`tether.watch`)."""
        return self.facts.watch

    @property
    def engine(self) -> str:
        """Which send path made the figures: ``"compiled"``, ``"python"`` or ``"mixed"``."""
        return self.facts.engine

    @property
    def lost_workers(self) -> list[LostWorker]:
        """Cluster runs: the workers whose shares are missing."""
        return self.facts.lost_workers

    def to_dict(self) -> SummaryDocument:
        """The summary document (what ``--json`` writes)."""
        self.flush()
        facts = self.facts
        return {
            "requests": self.requests,
            "ok": self.ok,
            "mismatches": self.mismatches,
            "errors": self.errors,
            "duration_s": round(facts.duration, 6),
            "rate": round(self.requests / facts.duration, 1) if facts.duration > 0 else 0.0,
            "status": {str(code): n for code, n in sorted(self.status.items())},
            "latency_ms": self.latency.percentiles_ms(),
            "latency_distribution": self.latency.distribution_ms(),
            "latency_histogram": self.latency.rows_ms(),
            "service_ms": (self.service or self.latency).percentiles_ms(),
            "late": self.late,
            "rate_target": facts.rate_target,
            "schedule_s": None if facts.schedule_s is None else round(facts.schedule_s, 6),
            "connections": self._connections(),
            "mismatch_examples": list(self.mismatch_examples),
            "mismatch_examples_omitted": self.mismatch_examples.omitted(),
            "error_kinds": dict(sorted(self.error_kinds.items())),
            "error_examples": list(self.error_examples),
            "error_examples_omitted": self.error_examples.omitted(),
            "input_errors": self.input_errors,
            "input_error_examples": self.input_error_examples,
            "redirects_followed": self.redirects,
            "undrained_responses": self.undrained_responses,
            "concurrency": facts.concurrency,
            "peak_inflight": facts.peak_inflight,
            "target": facts.target,
            "interrupted": facts.interrupted,
            "signal": facts.signal,
            "groups": self.groups.to_list(),
            "watch": facts.watch,
            "timeline": self.timeline.to_list(),
            "partial": bool(facts.lost_workers),
            "lost_workers": facts.lost_workers,
            "engine": facts.engine,
        }

    def _connections(self) -> Connections:
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
            "closed": {r.key: n for r, n in sorted(led.closed.items(), key=_by_name)},
            "protocol": dict(sorted(led.carried.items())),
            "h2": _h2(led.h2),
        }


def _h2(counts: Streams) -> H2Streams | None:
    """The HTTP/2 part of the ledger; None when no connection spoke it."""
    if not counts.connections:
        return None
    return {
        "connections": counts.connections,
        "streams": counts.streams,
        "streams_per_connection": round(counts.streams / counts.connections, 2),
        "peak_concurrent_streams": counts.peak,
        "goaway_received": counts.goaway,
        "retried_refused": counts.retried,
        "rst_received": dict(sorted(counts.reset_by_server.items())),
        "rst_sent": dict(sorted(counts.reset_by_us.items())),
        "flow_control_stalls": counts.flow_stalls,
        "flow_control_stall_s": round(counts.flow_stall_s, 6),
        "leaked_streams": counts.leaked,
        "stalled_streams": counts.stalled,
        "unread_bytes": counts.unread_bytes,
    }


def _by_name(item: tuple[Any, int]) -> str:
    return str(item[0].name)
