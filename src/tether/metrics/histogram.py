"""A log-linear latency histogram in HdrHistogram's layout.

Values are integer microseconds from 0 to :data:`MAX_VALUE_US` (one hour), kept at three
significant decimal digits: every value is stored in a bucket whose width is at most 1/1024 of
the bucket's lowest value, so any value read back is within 1/1024 (relative) of a recorded one.

Layout (2048 sub-buckets)::

    index(v) = v                                              for v < 2048
    index(v) = 2048 + (shift - 1) * 1024 + ((v >> shift) - 1024)
             = 1024 * shift + (v >> shift)                    for v >= 2048,
                                                              shift = v.bit_length() - 11

so values below 2048 each have their own bucket, and above that the bucket width doubles every
1024 buckets. Memory is constant (:data:`BUCKET_COUNT` 64-bit counters, about 23 000, in one
flat ``array.array``), recording is O(1) integer arithmetic, and two histograms merge by adding
their counters. numpy (a zero-copy view of the same counters) does everything that touches
many of them at once: batches, merges, serialisation and percentiles.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tether.document import LatencyMs

if TYPE_CHECKING:
    import numpy as np

_numpy_loader: threading.Thread | None = None


def preload_numpy() -> None:
    """Import numpy in the background: it takes longer to import than a run takes to send
    its first request, and it is needed only when the first batch of latencies is bucketed."""
    global _numpy_loader
    if _numpy_loader is None:
        _one_blas_thread()
        _numpy_loader = threading.Thread(target=importlib.import_module, args=("numpy",))
        _numpy_loader.daemon = True
        _numpy_loader.start()


def await_numpy() -> None:
    """Wait until numpy is imported (by :func:`preload_numpy`'s thread, or now): an import
    under way holds the interpreter for tens of milliseconds at a time, which a schedule
    started meanwhile would see as its first requests going out late."""
    _numpy()


def _numpy() -> ModuleType:
    _one_blas_thread()
    return importlib.import_module("numpy")  # waits for a background import in progress


def _one_blas_thread() -> None:
    """numpy's BLAS starts a thread per core that spins after each use (3% of a run's CPU
    at one connection, in perf); bucketing needs none of them. Set before numpy loads."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


SUB_BUCKETS = 2048
"""Values below this each get their own bucket; above, 1024 buckets per power of two."""

_HALF = SUB_BUCKETS // 2  # 1024
_LOG_SUB = SUB_BUCKETS.bit_length() - 1  # 11

MAX_VALUE_US = 3_600_000_000
"""Largest value kept as is (one hour in microseconds); larger values are clamped to it."""

HISTOGRAM_ROWS = 10
"""Rows of :meth:`Histogram.rows_ms` (the text summary's latency histogram), as hey's."""


def bucket_index(value_us: int) -> int:
    """The index of the bucket holding ``value_us`` (which must be in [0, MAX_VALUE_US])."""
    if value_us < SUB_BUCKETS:
        return value_us
    shift = value_us.bit_length() - _LOG_SUB
    return (shift << 10) + (value_us >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest and highest value (inclusive) that fall into bucket ``index``."""
    if index < SUB_BUCKETS:
        return index, index
    shift, sub = divmod(index - SUB_BUCKETS, _HALF)
    shift += 1
    lowest = (sub + _HALF) << shift
    return lowest, lowest + (1 << shift) - 1


BUCKET_COUNT = bucket_index(MAX_VALUE_US) + 1
"""Number of counters a histogram holds (the top bucket holds MAX_VALUE_US)."""


def percentile_rank(q: float, count: int) -> int:
    """The 1-based rank of the ``q``-th percentile among ``count`` sorted values.

    This is ``ceil(q / 100 * count)``, at least 1 and at most ``count``, with floating-point
    noise forgiven (``q=57, count=100`` gives 57, not 58). With ``count`` values sorted
    ascending, the q-th percentile is ``values[percentile_rank(q, count) - 1]``.
    """
    if count <= 0:
        return 0
    x = min(max(q, 0.0), 100.0) / 100.0 * count
    nearest = round(x)
    rank = nearest if abs(x - nearest) <= 1e-9 * max(1.0, x) else math.ceil(x)
    return min(max(rank, 1), count)


def _ms(micros: float) -> float:
    return round(micros / 1000, 3)


_ZERO = array("q", [0])
"""One 64-bit counter; repeated, a histogram's counters (made without numpy)."""

_LAYOUT: Mapping[str, int] = {"sub_buckets": SUB_BUCKETS, "max_value_us": MAX_VALUE_US}
"""This module's layout, as :meth:`Histogram.to_dict` names it (read, never written)."""


@dataclass(frozen=True, slots=True, eq=False)
class _Parts:
    """The contents of a histogram dict, checked: what ``from_dict`` builds a histogram of
    and ``absorb`` adds to one, so that the two cannot disagree."""

    index: np.ndarray[Any, Any]  # bucket indices, int64 (may repeat: repeats add up)
    counts: np.ndarray[Any, Any]  # each index's count, int64, positive
    count: int
    total: int
    clamped: int
    min: int
    max: int


def _parts(data: Mapping[str, Any], *, layout_required: bool) -> _Parts:
    """Read and check a mapping shaped like :meth:`Histogram.to_dict`'s output, in numpy:
    O(number of buckets given), none of the 23 000 counters touched. ``ValueError`` if it is
    not one or it is inconsistent (counts not adding up to ``count``, ``min`` or ``max`` in
    an empty bucket, another layout)."""
    layout = data.get("layout", {} if layout_required else _LAYOUT)
    if layout.get("sub_buckets") != SUB_BUCKETS or layout.get("max_value_us") != MAX_VALUE_US:
        raise ValueError(f"histogram layout {layout!r} is not this one")
    np = _numpy()
    try:
        pairs = np.asarray(data["buckets"])
        count, total, clamped = int(data["count"]), int(data["total"]), int(data["clamped"])
        lo, hi = int(data["min"]), int(data["max"])
    except (KeyError, TypeError, ValueError) as exc:  # ValueError: ragged buckets
        raise ValueError(f"not a histogram dict: {exc}") from exc
    if pairs.shape == (0,):  # [] has no second axis, and numpy reads it as floats
        pairs = pairs.reshape(0, 2).astype(np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "iu":
        raise ValueError("histogram buckets are not [index, count] pairs of integers")
    pairs = pairs.astype(np.int64, copy=False)
    index, counts = pairs[:, 0], pairs[:, 1]
    bad = (index < 0) | (index >= BUCKET_COUNT) | (counts <= 0)
    if bad.any():
        i, n = pairs[int(bad.argmax())].tolist()
        raise ValueError(f"bad histogram bucket [{i!r}, {n!r}]")
    if int(counts.sum()) != count:
        raise ValueError("histogram bucket counts do not add up to its count")
    if count:
        if not (0 <= lo <= hi <= MAX_VALUE_US):
            raise ValueError(f"bad histogram min/max {lo}, {hi}")
        # every count given is positive, so a bucket is non-empty when it is listed
        if not ((index == bucket_index(lo)).any() and (index == bucket_index(hi)).any()):
            raise ValueError(f"histogram min/max {lo}, {hi} fall in empty buckets")
    return _Parts(index, counts, count, total, clamped, lo, hi)


class Histogram:
    """Counts of integer microsecond values in log-linear buckets; mergeable and serialisable.

    ``count``, ``total`` (the exact sum) and ``clamped`` (how many values were above
    :data:`MAX_VALUE_US`) are plain attributes. Values are first clamped to
    ``[0, MAX_VALUE_US]``: negative values count as 0, larger ones as ``MAX_VALUE_US``, and
    ``min``, ``max``, ``total`` and ``mean`` are those of the clamped values (exact). An empty
    histogram reports 0 for ``min``, ``max``, ``mean`` and every percentile.
    """

    __slots__ = ("_counts", "_max", "_min", "_ranked", "clamped", "count", "total")

    def __init__(self) -> None:
        """Create an empty histogram."""
        # An array of C int64 rather than a list: numpy works on it in place (frombuffer), so
        # merges, batches and percentiles never convert 23 000 Python ints, and making one
        # needs no numpy (a run makes its histograms before numpy's background import ends).
        self._counts = _ZERO * BUCKET_COUNT
        # The non-zero buckets and their running totals, once asked for; None when stale.
        # Every change to the counters sets it back to None.
        self._ranked: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None = None
        self.count = 0
        self.total = 0
        self.clamped = 0
        self._min = MAX_VALUE_US + 1
        self._max = -1

    def record(self, value_us: int) -> None:
        """Count one value in microseconds; O(1), only integer arithmetic."""
        v = value_us
        if v < SUB_BUCKETS:
            if v < 0:
                v = 0
            self._counts[v] += 1
        else:
            if v > MAX_VALUE_US:
                v = MAX_VALUE_US
                self.clamped += 1
            shift = v.bit_length() - _LOG_SUB
            self._counts[(shift << 10) + (v >> shift)] += 1
        self._ranked = None
        self.count += 1
        self.total += v
        if v < self._min:
            self._min = v
        if v > self._max:
            self._max = v

    @property
    def min(self) -> int:
        """The smallest recorded value (0 when empty)."""
        return self._min if self.count else 0

    @property
    def max(self) -> int:
        """The largest recorded value (0 when empty)."""
        return self._max if self.count else 0

    @property
    def mean(self) -> float:
        """The exact mean of the recorded values (0.0 when empty)."""
        return self.total / self.count if self.count else 0.0

    def _view(self) -> np.ndarray[Any, Any]:
        """The counters as an int64 numpy array sharing their memory: writing to it counts."""
        numpy = _numpy()  # not `np`: that name is the annotation's
        view: np.ndarray[Any, Any] = numpy.frombuffer(self._counts, dtype=numpy.int64)
        return view

    def _ranks(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The indices of the non-zero buckets, ascending, and the running total of their
        counts: worked out once per state of the counters, then every percentile asked of
        that state is a binary search in them (a summary asks some 170)."""
        ranked = self._ranked
        if ranked is None:
            np = _numpy()
            counts = self._view()
            # nonzero() of a bool array is numpy's fast path: ~7x faster than of the int64s
            index = np.flatnonzero(counts != 0)
            ranked = self._ranked = (index, np.cumsum(counts[index]))
        return ranked

    def percentile(self, q: float) -> int:
        """The value at percentile ``q`` (0..100, clamped into that range).

        Finds the bucket holding the value of rank :func:`percentile_rank` and returns the
        highest value in that bucket, clamped to ``[min, max]``: so ``percentile(0) == min``
        and ``percentile(100) == max`` exactly, and otherwise the result is at least the exact
        value and above it by less than 1/1024 of it.
        """
        if not self.count:
            return 0
        if q <= 0:
            return self._min
        rank = percentile_rank(q, self.count)
        index, running = self._ranks()
        # The first bucket whose running total reaches the rank (what walking the counts in
        # order finds): searchsorted's left side is the first position with running >= rank.
        at = int(running.searchsorted(rank))
        if at == len(index):
            return self._max  # not reached: the counts add up to count >= rank
        return min(max(bucket_bounds(int(index[at]))[1], self._min), self._max)

    def record_many(self, values_us: Sequence[int] | np.ndarray[Any, Any]) -> None:
        """Count a batch of values at once: numpy buckets them (a few ns each) and adds them
        to the counters in place. Same result as :meth:`record` on each."""
        np = _numpy()
        raw = np.asarray(values_us, dtype=np.int64)
        if not raw.size:
            return
        v = np.clip(raw, 0, MAX_VALUE_US)
        # frexp's exponent is the bit length for integers (exact below 2**53).
        shift = np.frexp(v.astype(np.float64))[1].astype(np.int64) - _LOG_SUB
        index = np.where(v < SUB_BUCKETS, v, (shift << 10) + (v >> np.maximum(shift, 0)))
        np.add.at(self._view(), index, 1)  # unbuffered: an index repeated counts each time
        self._ranked = None
        self.count += int(raw.size)
        self.total += int(v.sum())
        self.clamped += int(np.count_nonzero(raw > MAX_VALUE_US))
        self._min = min(self._min, int(v.min()))
        self._max = max(self._max, int(v.max()))

    def record_seconds(self, pending: list[float]) -> None:
        """Count a buffer of latencies in seconds, then empty the buffer."""
        if pending:
            np = _numpy()
            self.record_many((np.asarray(pending) * 1e6).astype(np.int64))
            pending.clear()

    def percentiles_ms(self) -> LatencyMs:
        """The summary document's latency keys, in milliseconds."""
        if not self.count:
            return {"min": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
        return {
            "min": _ms(self.min),
            "p50": _ms(self.percentile(50)),
            "p90": _ms(self.percentile(90)),
            "p99": _ms(self.percentile(99)),
            "max": _ms(self.max),
            "mean": _ms(self.mean),
        }

    def distribution_ms(self) -> list[list[float]]:
        """[percentile, milliseconds] from the median to the maximum, as HdrHistogram plots
        them (the tail spread out: 90, 99, 99.9, ...)."""
        if not self.count:
            return []
        qs = (0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0)
        return [[q, round(self.percentile(q) / 1000, 3)] for q in qs]

    def rows_ms(self, rows: int = HISTOGRAM_ROWS) -> list[list[float]]:
        """[upper milliseconds, count] for at most ``rows`` rows from the minimum to the
        maximum, what hey and oha print: each row counts the values above the row before's
        upper bound, up to and including its own. The bounds are spaced evenly on a log
        scale (a tail ten times the median gets rows of its own, which on a linear scale it
        would share with everything) and moved to this histogram's own bucket bounds, so
        every count is exact: no bucket is split between two rows."""
        if not self.count:
            return []
        np = _numpy()
        lo, hi = max(self.min, 1), self.max
        wanted = np.geomspace(lo, hi, rows + 1)[1:] if hi > lo else np.array([hi])
        edges = np.unique([bucket_index(min(int(v), hi)) for v in wanted])
        index, running = self._ranks()
        at = index.searchsorted(edges, side="right")  # buckets up to each edge's, inclusive
        below = np.where(at > 0, running[np.maximum(at - 1, 0)], 0)
        counts = np.diff(below, prepend=0)
        uppers = [min(bucket_bounds(int(i))[1], hi) for i in edges]
        return [[_ms(upper), int(n)] for upper, n in zip(uppers, counts, strict=True)]

    def merge(self, other: Histogram) -> None:
        """Add every value counted in ``other`` to this histogram, in place."""
        if not other.count:
            return
        counts = self._view()
        counts += other._view()
        self._ranked = None
        self.count += other.count
        self.total += other.total
        self.clamped += other.clamped
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def absorb(self, parts: Mapping[str, Any]) -> None:
        """Add the values a mapping shaped like :meth:`to_dict`'s output describes (``count``,
        ``total``, ``clamped``, ``min``, ``max``, ``buckets`` as ``[[index, count], ...]`` or
        an (n, 2) integer array; ``layout`` optional, and checked when given).

        The same as ``self.merge(Histogram.from_dict(parts))``, the same checks included
        (``ValueError``, and this histogram left as it was), without building a second
        histogram: O(number of buckets given), so a compiled engine's per-second counts are
        cheap to hand over.
        """
        self._add(_parts(parts, layout_required=False))

    def _add(self, parts: _Parts) -> None:
        """Add checked parts (what ``absorb`` and ``from_dict`` share)."""
        if not parts.count:
            return  # as merge: an empty share adds nothing, whatever its total says
        _numpy().add.at(self._view(), parts.index, parts.counts)  # repeated indices add up
        self._ranked = None
        self.count += parts.count
        self.total += parts.total
        self.clamped += parts.clamped
        self._min = min(self._min, parts.min)
        self._max = max(self._max, parts.max)

    def copy(self) -> Histogram:
        """An independent histogram with the same contents."""
        new = Histogram()
        new.merge(self)
        return new

    def __eq__(self, other: object) -> bool:
        """Equal when both hold the same bucket counts and the same exact statistics."""
        if not isinstance(other, Histogram):
            return NotImplemented
        return (
            self.count == other.count
            and self.total == other.total
            and self.clamped == other.clamped
            and self.min == other.min
            and self.max == other.max
            and self._counts == other._counts
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        """A short summary, not the buckets."""
        return (
            f"Histogram(count={self.count}, min={self.min}, max={self.max}, "
            f"mean={self.mean:.1f}, clamped={self.clamped})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict holding only the non-zero buckets, as ``[index, count]`` pairs.

        :meth:`from_dict` reads it back into an equal histogram.
        """
        buckets: list[list[int]] = []
        if self.count:
            index = self._ranks()[0]  # the non-zero buckets, which percentiles reuse
            buckets = _numpy().column_stack((index, self._view()[index])).tolist()
        return {
            "layout": dict(_LAYOUT),
            "count": self.count,
            "total": self.total,
            "clamped": self.clamped,
            "min": self.min,
            "max": self.max,
            "buckets": buckets,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """Rebuild a histogram from :meth:`to_dict`'s output; ``ValueError`` if inconsistent."""
        parts = _parts(data, layout_required=True)
        hist = cls()
        hist._add(parts)
        hist.total, hist.clamped = parts.total, parts.clamped  # as given, even when empty
        return hist
