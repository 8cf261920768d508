"""Whether the send path's common case runs compiled, and the plain data it hands over.

The compiled extension (:mod:`tether.engine._compiled`, built from Cython by ``pip
install``) is used when it was built and ``TETHER_PURE_PYTHON`` is not set; otherwise every
request takes the pure-Python path, the reference, which gives the same counts. What the
compiled path counted crosses into the run as :class:`Counted`, plain data.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TypedDict

__all__ = ["ENGINE", "Counted", "SlotCounts", "native"]


def _load() -> ModuleType | None:
    if os.environ.get("TETHER_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from tether.engine import _compiled
    except ImportError:  # not built (no compiler where it was installed)
        return None
    return _compiled


native = _load()
"""The compiled module, or None: the pure-Python path only."""

ENGINE = "compiled" if native is not None else "python"
"""What a run's figures come from when it can use the compiled path."""


class SlotCounts(TypedDict):
    """One counter slot's latencies, in :meth:`tether.metrics.histogram.Histogram.to_dict`'s
    shape (microseconds)."""

    count: int
    total: int
    clamped: int
    min: int
    max: int
    buckets: list[list[int]]


class Counted(TypedDict):
    """What the compiled path counted since it was last asked: responses (each met its
    expectation), how many went on a reused connection, statuses, latencies per counter
    slot, and (open model) service times."""

    requests: int
    reused: int
    status: dict[int, int]
    slots: dict[int, SlotCounts]
    service: SlotCounts | None  # the time from each actual send, when it is not the latency
