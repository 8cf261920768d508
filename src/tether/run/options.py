"""What a run is asked to do: how much to send, how, and what to watch. Pure data."""

from __future__ import annotations

from dataclasses import dataclass

from tether.run.pacer import OriginalPace, Schedule
from tether.secrets import SECRET_HEADERS
from tether.watch import Source


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How much to send and how. ``requests`` beyond the number of records cycles them,
    and so does a ``duration`` (as wrk, hey -z and k6 run: until the time is up); with
    both, the run ends at whichever comes first; with neither each record is sent once
    (see :attr:`cycles`).

    Without ``rate`` the model is closed: ``concurrency`` workers, each sending when its last
    response is in. With ``rate`` it is open: requests start on the pacer's schedule whatever
    the responses do, at most ``max_inflight`` at once; the rest wait, counted as late.

    ``share`` = (k, n) sends only every n-th request from the k-th of those one process
    would send (:func:`tether.run.feed.dealt`): one process's part of a run split over n
    (see :mod:`tether.run.processes`), with its part of ``requests`` and ``concurrency``.

    ``check_in_full`` judges every response with :func:`tether.check.check`, never vouched
    for by its expectation compiled for the hot path (:class:`tether.check.QuickCheck`):
    slower, and counts alike; it is there to prove the fast path against the full one.
    ``compiled`` lets the closed model's common case run compiled when the extension is
    built (see :mod:`tether.engine.compiled`); False keeps every request on the Python path,
    which counts alike.
    """

    target: str | None = None
    concurrency: int = 1
    requests: int | None = None
    duration: float | None = None
    strict: bool = False
    rate: Schedule | None = None
    max_inflight: int = 1000
    share: tuple[int, int] = (0, 1)
    watch: tuple[Source, ...] = ()
    watch_interval: float = 0.5
    secret: frozenset[str] = SECRET_HEADERS  # header values reports do not show
    check_in_full: bool = False
    compiled: bool = True

    @property
    def cycles(self) -> bool:
        """Whether the records start over when a pass ends: for a count, or a duration.
        Not for a duration on the records' own schedule (``--pace``), whose times a second
        pass would repeat from its start: there the duration only cuts the schedule short."""
        timed = bool(self.duration) and not isinstance(self.rate, OriginalPace)
        return self.requests is not None or timed
