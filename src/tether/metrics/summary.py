"""The run's summary: its tally (:class:`~tether.metrics.tally.Tally`, what adds up across
processes, which outcomes stream into), its facts (:class:`RunFacts`, what is true of the run
as a whole), and ``to_dict``, the report document made of both (after bucketing the
latencies still buffered), with its reader beside it: ``restore`` takes back the document's
part that is not the sum of outcomes (a results file's closing line).

The document's keys are a contract (see the README), typed in :mod:`tether.document`: add
keys, never rename them.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar, cast

from tether.document import (
    Connections,
    Counts,
    H2Streams,
    LostWorker,
    RunEnd,
    SummaryDocument,
    Watch,
)
from tether.ledger import CloseReason, Ledger, Streams
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
        # The counts (a part of their own, which a live scrape takes alone), then the rest, in
        # the document's order. mypy checks no literal with a ** in it: tests/test_document.py
        # holds a real run's document to the TypedDict, key for key.
        doc = {
            **self._counts(),
            "duration_s": round(facts.duration, 6),
            "rate": round(self.requests / facts.duration, 1) if facts.duration > 0 else 0.0,
            "latency_ms": self.latency.percentiles_ms(),
            "latency_distribution": self.latency.distribution_ms(),
            "latency_histogram": self.latency.rows_ms(),
            "service_ms": (self.service or self.latency).percentiles_ms(),
            "schedule_s": None if facts.schedule_s is None else round(facts.schedule_s, 6),
            "mismatch_examples": list(self.mismatch_examples),
            "mismatch_examples_omitted": self.mismatch_examples.omitted(),
            "error_examples": list(self.error_examples),
            "error_examples_omitted": self.error_examples.omitted(),
            "input_error_examples": self.input_error_examples,
            "target": facts.target,
            "interrupted": facts.interrupted,
            "signal": facts.signal,
            "groups": self.groups.to_list(),
            "flows": self.flows,
            "watch": facts.watch,
            "timeline": self.timeline.to_list(),
            "partial": bool(facts.lost_workers),
            "lost_workers": facts.lost_workers,
        }
        return _in_order(SummaryDocument, doc)

    def counts(self) -> Counts:
        """The document's counts now (:class:`~tether.document.Counts`), cheap enough to take
        on the run's loop at every scrape: the buffered latencies are bucketed first, so that
        the histograms a scrape reads beside them hold every response counted."""
        self.flush()
        return self._counts()

    def _counts(self) -> Counts:
        facts = self.facts
        return {
            "requests": self.requests,
            "ok": self.ok,
            "mismatches": self.mismatches,
            "errors": self.errors,
            "status": {str(code): n for code, n in sorted(self.status.items())},
            "late": self.late,
            "rate_target": facts.rate_target,
            "connections": self._connections(),
            "error_kinds": dict(sorted(self.error_kinds.items())),
            "input_errors": self.input_errors,
            "redirects_followed": self.redirects,
            "undrained_responses": self.undrained_responses,
            "concurrency": facts.concurrency,
            "peak_inflight": facts.peak_inflight,
            "engine": facts.engine,
        }

    def restore(self, end: RunEnd) -> None:
        """Take back what a document says of the run that its outcomes do not add up to (a
        results file's closing line): the inverse of :meth:`to_dict` for those keys. Each is
        the fact or count of the same name, but ``connections`` (the ledger) and
        ``duration_s`` (the run's length)."""
        _restore_ledger(self.ledger, end["connections"])
        self.facts.duration = end["duration_s"]
        given = cast("Mapping[str, Any]", end)
        for key in _SAME_NAMED_END:
            # A key the line may lack (files written before it) is None; another, a KeyError.
            value = given[key] if key in RunEnd.__required_keys__ else given.get(key)
            setattr(self.facts if key in _FACTS else self, key, value)

    def _connections(self) -> Connections:
        led = self.ledger
        worked_out = {
            "reused": self.reused,
            "requests_per_connection": round(self.requests / led.opened, 2) if led.opened else 0,
            "reuse_fraction": round(self.reused / self.requests, 4) if self.requests else 0.0,
            "closed": {r.key: n for r, n in sorted(led.closed.items(), key=_by_name)},
            "protocol": dict(sorted(led.carried.items())),
            "h2": _h2(led.h2),
        }
        return _in_order(Connections, {**_ledger_counts(led), **worked_out})


_FACTS = frozenset(f.name for f in fields(RunFacts))

# A closing line's keys that name a fact or a count of the summary as they are (RunEnd's are
# the document's keys of the same names): read back by name, so that a key added to RunEnd
# and the document is read with no line here.
_SAME_NAMED_END = tuple(
    key for key in RunEnd.__annotations__ if key not in ("connections", "duration_s")
)

# The ledger's counts and properties that the document's connections have by the same name
# (``opened``, ``closed_by_server``, ...): written as the ledger has them, and its counts
# read back. ``closed`` and ``h2`` are the ledger's too, but shaped for the document (the
# writer's worked-out values take their place).
_LEDGER_NAMES = {f.name for f in fields(Ledger)} | {
    name for name, value in vars(Ledger).items() if isinstance(value, property)
}
_LEDGER_KEYS = tuple(key for key in Connections.__annotations__ if key in _LEDGER_NAMES)
_LEDGER_COUNTS = tuple(
    f.name for f in fields(Ledger) if f.type in ("int", int) and f.name in _LEDGER_KEYS
)


def _ledger_counts(led: Ledger) -> dict[str, Any]:
    return {key: getattr(led, key) for key in _LEDGER_KEYS}


def _restore_ledger(led: Ledger, c: Connections) -> None:
    """The ledger a document's ``connections`` describes (the inverse of its writing)."""
    given = cast("Mapping[str, int]", c)
    for key in _LEDGER_COUNTS:
        setattr(led, key, given[key])
    for name, n in c["closed"].items():
        reason = CloseReason.of_key(name)
        if reason is not None:  # a reason this version does not know is left out
            led.closed[reason] += n
    led.carried.update(c.get("protocol", {}))
    _restore_h2(led.h2, c.get("h2"))


_Shape = TypeVar("_Shape")


def _in_order(shape: type[_Shape], values: Mapping[str, Any]) -> _Shape:
    """``values`` as the TypedDict ``shape``, its keys in the order ``shape`` declares them:
    the order the JSON document has always had them in."""
    return cast("_Shape", {key: values[key] for key in shape.__annotations__ if key in values})


# Each H2Streams count and the Streams count it is (the document's names say more).
_H2_COUNTS = {
    "connections": "connections",
    "streams": "streams",
    "peak_concurrent_streams": "peak",
    "goaway_received": "goaway",
    "retried_refused": "retried",
    "flow_control_stalls": "flow_stalls",
    "leaked_streams": "leaked",
    "stalled_streams": "stalled",
    "unread_bytes": "unread_bytes",
}


def _h2(counts: Streams) -> H2Streams | None:
    """The HTTP/2 part of the ledger; None when no connection spoke it."""
    if not counts.connections:
        return None
    worked_out = {
        "streams_per_connection": round(counts.streams / counts.connections, 2),
        "rst_received": dict(sorted(counts.reset_by_server.items())),
        "rst_sent": dict(sorted(counts.reset_by_us.items())),
        "flow_control_stall_s": round(counts.flow_stall_s, 6),
    }
    named = {key: getattr(counts, name) for key, name in _H2_COUNTS.items()}
    return _in_order(H2Streams, {**named, **worked_out})


def _restore_h2(counts: Streams, h2: H2Streams | None) -> None:
    """The HTTP/2 part of a document's ledger (absent from results files written before it)."""
    if not h2:
        return
    given = cast("Mapping[str, int]", h2)
    for key, name in _H2_COUNTS.items():
        setattr(counts, name, given[key])
    counts.reset_by_server.update(h2["rst_received"])
    counts.reset_by_us.update(h2["rst_sent"])
    counts.flow_stall_s = h2["flow_control_stall_s"]


def _by_name(item: tuple[Any, int]) -> str:
    return str(item[0].name)
