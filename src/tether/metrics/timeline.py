"""The run over time: one point a second (requests, rate, latency percentiles of that second,
errors, mismatches, statuses, connections open), thinned so that a run of any length keeps
at most :data:`MAX_POINTS`. Taken live from the summary's counters (once a second, off the
per-request path) or rebuilt from a results file (:mod:`tether.results.rebuild`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tether.document import TimelinePoint
from tether.merging import Merges, by
from tether.metrics.histogram import Histogram

if TYPE_CHECKING:
    from tether.metrics.tally import Tally

__all__ = ["MAX_POINTS", "Point", "Sampler", "Timeline"]

MAX_POINTS = 600
"""Points kept: past this, neighbours are merged in pairs (the resolution halves)."""


@dataclass(slots=True)
class Point:
    """One stretch of the run, ending at ``t`` seconds after its start."""

    t: float
    seconds: float  # how long the stretch is
    requests: int = 0
    errors: int = 0
    mismatches: int = 0
    status: Counter[int] = field(default_factory=Counter)
    open: int = 0  # connections open at its end
    p50_ms: float | None = None  # of the responses in the stretch
    p99_ms: float | None = None

    @classmethod
    def of(cls, t: float, seconds: float, latency: Histogram, **counts: Any) -> Point:
        """A point whose percentiles come from ``latency`` (a histogram is not kept: it is
        far bigger than a point)."""
        p50 = round(latency.percentile(50) / 1000, 3) if latency.count else None
        p99 = round(latency.percentile(99) / 1000, 3) if latency.count else None
        return cls(t, seconds, p50_ms=p50, p99_ms=p99, **counts)

    def to_dict(self) -> TimelinePoint:
        """The point as the report document has it."""
        return {
            "t": round(self.t, 3),
            "requests": self.requests,
            "rps": round(self.requests / self.seconds, 1) if self.seconds > 0 else 0.0,
            "errors": self.errors,
            "mismatches": self.mismatches,
            "status": {str(code): n for code, n in sorted(self.status.items())},
            "open": self.open,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        }


SLIVER = 0.1
"""Seconds: a timeline stretch shorter than this is no point of its own."""


def _merged(a: Point, b: Point, *, side_by_side: bool = False) -> Point:
    # Two stretches become one: counts add; the median is the busier one's, the p99 the
    # worse one's (the exact figures would need their histograms).
    busier = a if a.requests >= b.requests else b
    p99s = [p for p in (a.p99_ms, b.p99_ms) if p is not None]
    return Point(
        max(a.t, b.t),
        max(a.seconds, b.seconds) if side_by_side else a.seconds + b.seconds,
        a.requests + b.requests,
        a.errors + b.errors,
        a.mismatches + b.mismatches,
        a.status + b.status,
        a.open + b.open if side_by_side else b.open,
        busier.p50_ms,
        max(p99s) if p99s else None,
    )


def _side_by_side(mine: list[Point], theirs: list[Point]) -> list[Point]:
    # Another process's timeline of the same run, point by point: the same second of the
    # run, near enough, since the processes start together.
    both = [_merged(a, b, side_by_side=True) for a, b in zip(mine, theirs, strict=False)]
    return both + mine[len(both) :] + theirs[len(both) :]


@dataclass(slots=True)
class Timeline(Merges):
    """The points so far, oldest first. Another process's timeline of the same run merges
    point by point (:mod:`tether.merging`)."""

    points: list[Point] = field(default_factory=list, metadata=by(_side_by_side))

    def add(self, point: Point) -> None:
        """Append a point, halving the resolution when there are too many. A stretch shorter
        than :data:`SLIVER` is folded into the one before: the run's last sample comes a
        moment after its last tick, and alone its rate would be that of a sliver (a drop to
        0 req/s drawn at the end of every run)."""
        if self.points and point.seconds < SLIVER:
            self.points[-1] = _merged(self.points[-1], point)
            return
        self.points.append(point)
        if len(self.points) > MAX_POINTS:
            pairs = zip(self.points[0::2], self.points[1::2], strict=False)
            merged = [_merged(a, b) for a, b in pairs]
            if len(self.points) % 2:
                merged.append(self.points[-1])
            self.points = merged

    def to_list(self) -> list[TimelinePoint]:
        """The points as the report document has them."""
        return [p.to_dict() for p in self.points]


class Sampler:
    """Takes a run's points from the summary's counters: what changed since the last one, and
    the percentiles of the latencies recorded since (the summary's window). A live run samples
    once a second; a summary rebuilt from a results file as each second of its outcomes ends
    (:mod:`tether.results.rebuild`), so that both timelines are made alike. ``start``: when
    the first point begins, in seconds from the run's start."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start
        self._requests = self._errors = self._mismatches = 0
        self._status: Counter[int] = Counter()

    def sample(self, summary: Tally, elapsed: float, open_now: int | None = None) -> Point:
        """The point from the last sample to ``elapsed``, added to the summary's timeline;
        ``open_now`` the connections open at its end (the ledger's, unless given: a rebuilt
        summary has no live connections, only the ones its outcomes show)."""
        summary.flush()  # the buffered latencies reach the window too
        window = summary.window or Histogram()
        summary.window = Histogram()
        point = Point.of(
            elapsed,
            elapsed - self._t,
            window,
            requests=summary.requests - self._requests,
            errors=summary.errors - self._errors,
            mismatches=summary.mismatches - self._mismatches,
            status=summary.status - self._status,
            open=summary.ledger.open_now if open_now is None else open_now,
        )
        self._t, self._requests = elapsed, summary.requests
        self._errors, self._mismatches = summary.errors, summary.mismatches
        self._status = summary.status.copy()
        summary.timeline.add(point)
        return point
