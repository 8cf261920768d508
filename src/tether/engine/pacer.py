"""When each request of an open-model run is due. Pure: no clock, no I/O.

A pacer answers one question, ``due(i)``: how many seconds after the start request ``i``
(0-based) should go out, or None once the schedule is over. A constant rate R gives
``i / R``; a ramp from R1 to R2 over D seconds raises the rate linearly, so the count sent by
time t is ``R1 t + (R2 - R1) t^2 / 2D``, and ``due`` inverts that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tether.errors import InputError


@dataclass(frozen=True, slots=True)
class Pacer:
    """A constant rate (``start == end``) or a linear ramp, optionally bounded in time."""

    start: float
    end: float
    duration: float | None = None

    def due(self, i: int) -> float | None:
        """Seconds after the start at which request ``i`` is due; None past the duration."""
        slope = (self.end - self.start) / self.duration if self.duration else 0.0
        if slope == 0.0:
            at = i / self.start
        else:
            disc = self.start * self.start + 2.0 * slope * i
            if disc < 0:
                return None  # a falling ramp that never reaches request i
            at = (math.sqrt(disc) - self.start) / slope
        if self.duration is not None and at >= self.duration:
            return None
        return at

    @property
    def mean_rate(self) -> float:
        """The schedule's average rate, requests per second."""
        return (self.start + self.end) / 2.0


def parse_rate(text: str, duration: float | None) -> Pacer:
    """``"2000"`` or a ramp ``"1000:20000"`` (which needs a duration to ramp over)."""
    parts = text.split(":")
    try:
        rates = [float(p) for p in parts]
    except ValueError:
        raise InputError(
            f"--rate {text!r}: give requests per second, like 2000 or 1000:20000"
        ) from None
    if len(rates) not in (1, 2) or min(rates) <= 0 or not all(map(math.isfinite, rates)):
        raise InputError(f"--rate {text!r}: give one or two positive rates, like 1000:20000")
    if len(rates) == 2 and not duration:
        raise InputError(f"--rate {text!r}: a ramp needs --duration to ramp over")
    return Pacer(rates[0], rates[-1], duration)
