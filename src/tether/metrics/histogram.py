"""A log-linear latency histogram in HdrHistogram's layout, pure Python.

Values are integer microseconds from 0 to :data:`MAX_VALUE_US` (one hour), kept at three
significant decimal digits: every value is stored in a bucket whose width is at most 1/1024 of
the bucket's lowest value, so any value read back is within 1/1024 (relative) of a recorded one.

Layout (2048 sub-buckets)::

    index(v) = v                                              for v < 2048
    index(v) = 2048 + (shift - 1) * 1024 + ((v >> shift) - 1024)
             = 1024 * shift + (v >> shift)                    for v >= 2048,
                                                              shift = v.bit_length() - 11

so values below 2048 each have their own bucket, and above that the bucket width doubles every
1024 buckets. Memory is constant (:data:`BUCKET_COUNT` counters, about 23 000), recording is
O(1) integer arithmetic, and two histograms merge by adding their counters.
"""

from __future__ import annotations

import importlib
import math
import operator
import threading
from collections.abc import Mapping, Sequence
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
        _numpy_loader = threading.Thread(target=importlib.import_module, args=("numpy",))
        _numpy_loader.daemon = True
        _numpy_loader.start()


def _numpy() -> ModuleType:
    return importlib.import_module("numpy")  # waits for a background import in progress


SUB_BUCKETS = 2048
"""Values below this each get their own bucket; above, 1024 buckets per power of two."""

_HALF = SUB_BUCKETS // 2  # 1024
_LOG_SUB = SUB_BUCKETS.bit_length() - 1  # 11

MAX_VALUE_US = 3_600_000_000
"""Largest value kept as is (one hour in microseconds); larger values are clamped to it."""


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


class Histogram:
    """Counts of integer microsecond values in log-linear buckets; mergeable and serialisable.

    ``count``, ``total`` (the exact sum) and ``clamped`` (how many values were above
    :data:`MAX_VALUE_US`) are plain attributes. Values are first clamped to
    ``[0, MAX_VALUE_US]``: negative values count as 0, larger ones as ``MAX_VALUE_US``, and
    ``min``, ``max``, ``total`` and ``mean`` are those of the clamped values (exact). An empty
    histogram reports 0 for ``min``, ``max``, ``mean`` and every percentile.
    """

    __slots__ = ("_counts", "_max", "_min", "clamped", "count", "total")

    def __init__(self) -> None:
        """Create an empty histogram."""
        self._counts: list[int] = [0] * BUCKET_COUNT
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
        seen = 0
        for index, n in enumerate(self._counts):
            if n:
                seen += n
                if seen >= rank:
                    return min(max(bucket_bounds(index)[1], self._min), self._max)
        return self._max  # not reached: the counts add up to count >= rank

    def record_many(self, values_us: Sequence[int] | np.ndarray[Any, Any]) -> None:
        """Count a batch of values at once: numpy buckets them (a few ns each), and only the
        buckets the batch touched are updated. Same result as :meth:`record` on each."""
        np = _numpy()
        raw = np.asarray(values_us, dtype=np.int64)
        if not raw.size:
            return
        v = np.clip(raw, 0, MAX_VALUE_US)
        # frexp's exponent is the bit length for integers (exact below 2**53).
        shift = np.frexp(v.astype(np.float64))[1].astype(np.int64) - _LOG_SUB
        index = np.where(v < SUB_BUCKETS, v, (shift << 10) + (v >> np.maximum(shift, 0)))
        buckets, counts = np.unique(index, return_counts=True)
        for i, n in zip(buckets.tolist(), counts.tolist(), strict=True):
            self._counts[i] += n
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

    def merge(self, other: Histogram) -> None:
        """Add every value counted in ``other`` to this histogram, in place."""
        if not other.count:
            return
        self._counts[:] = map(operator.add, self._counts, other._counts)
        self.count += other.count
        self.total += other.total
        self.clamped += other.clamped
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

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
        return {
            "layout": {"sub_buckets": SUB_BUCKETS, "max_value_us": MAX_VALUE_US},
            "count": self.count,
            "total": self.total,
            "clamped": self.clamped,
            "min": self.min,
            "max": self.max,
            "buckets": [[i, n] for i, n in enumerate(self._counts) if n],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """Rebuild a histogram from :meth:`to_dict`'s output; ``ValueError`` if inconsistent."""
        layout = data.get("layout", {})
        if layout.get("sub_buckets") != SUB_BUCKETS or layout.get("max_value_us") != MAX_VALUE_US:
            raise ValueError(f"histogram layout {layout!r} is not this one")
        hist = cls()
        try:
            for index, n in data["buckets"]:
                if not (0 <= index < BUCKET_COUNT) or n <= 0:
                    raise ValueError(f"bad histogram bucket [{index!r}, {n!r}]")
                hist._counts[index] += int(n)
            hist.count = int(data["count"])
            hist.total = int(data["total"])
            hist.clamped = int(data["clamped"])
            lo, hi = int(data["min"]), int(data["max"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a histogram dict: {exc}") from exc
        if sum(hist._counts) != hist.count:
            raise ValueError("histogram bucket counts do not add up to its count")
        if hist.count:
            if not (0 <= lo <= hi <= MAX_VALUE_US):
                raise ValueError(f"bad histogram min/max {lo}, {hi}")
            if not (hist._counts[bucket_index(lo)] and hist._counts[bucket_index(hi)]):
                raise ValueError(f"histogram min/max {lo}, {hi} fall in empty buckets")
            hist._min, hist._max = lo, hi
        return hist
