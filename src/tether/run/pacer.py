"""When each request of an open-model run is due. Pure: no clock, no I/O.

A pacer answers one question, ``due(i)``: how many seconds after the start request ``i``
(0-based) should go out, or None once the schedule is over. A constant rate R gives
``i / R``; a ramp from R1 to R2 over D seconds raises the rate linearly, so the count sent by
time t is ``R1 t + (R2 - R1) t^2 / 2D``, and ``due`` inverts that.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tether.errors import InputError


@dataclass(frozen=True, slots=True)
class Pacer:
    """A constant rate (``start == end``) or a linear ramp, optionally bounded in time."""

    start: float
    end: float
    duration: float | None = None

    def due(self, i: int, offset: float = 0.0) -> float | None:
        """Seconds after the start at which request ``i`` is due; None past the duration.
        (``offset``, the record's recorded time, is for :class:`OriginalPace`.)"""
        # Request i is due when the area under the rate reaches i: start*t + slope*t^2/2 = i.
        # Its root is written as 2i / (start + sqrt(disc)), not (sqrt(disc) - start) / slope:
        # the same number, without the cancellation that loses every digit of a ramp as
        # nearly flat as 5000 -> 4999.999999999999 (and it is i / start when flat).
        slope = (self.end - self.start) / self.duration if self.duration else 0.0
        disc = self.start * self.start + 2.0 * slope * i
        if disc < 0:
            return None  # a falling ramp that never reaches request i
        at = 2.0 * i / (self.start + math.sqrt(disc)) if i else 0.0
        if self.duration is not None and at >= self.duration:
            return None
        return at

    @property
    def mean_rate(self) -> float | None:
        """The schedule's average rate, requests per second."""
        return (self.start + self.end) / 2.0

    @property
    def follows_records(self) -> bool:
        """Whether :meth:`due` needs the records' own times: no."""
        return False

    def share(self, n: int) -> Pacer:
        """One of ``n`` processes' part of the schedule: 1/n of the rate."""
        return Pacer(self.start / n, self.end / n, self.duration)


@dataclass(frozen=True, slots=True)
class OriginalPace:
    """The records' own schedule: each is due when it was recorded (its ``offset`` from the
    first record's time), sped up ``factor`` times, optionally bounded in time."""

    factor: float = 1.0
    duration: float | None = None

    def due(self, i: int, offset: float = 0.0) -> float | None:
        """Seconds after the start at which the record ``offset`` seconds after the first
        one is due; None past the duration."""
        at = max(offset, 0.0) / self.factor
        if self.duration is not None and at >= self.duration:
            return None
        return at

    @property
    def mean_rate(self) -> float | None:
        """Not known before the records are read."""
        return None

    @property
    def follows_records(self) -> bool:
        """Whether :meth:`due` needs the records' own times: yes."""
        return True

    def share(self, n: int) -> OriginalPace:
        """Each process sends its share of the records at their own times: unchanged."""
        return self


Schedule = Pacer | OriginalPace
"""What the open model follows."""


def parse_pace(text: str, duration: float | None) -> OriginalPace:
    """``"original"`` or ``"originalxF"`` (F times faster: ``originalx2``, ``originalx0.5``)."""
    found = re.fullmatch(r"original(?:x(\d+(?:\.\d+)?))?", text)
    factor = float(found.group(1)) if found and found.group(1) else 1.0
    if found is None or factor <= 0:
        raise InputError(f"--pace {text!r}: give original, or originalxF such as originalx2")
    return OriginalPace(factor, duration)


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
