"""What a run is asked to do: how much to send, how, and what to watch. Pure data."""

from __future__ import annotations

from dataclasses import dataclass

from tether.run.pacer import Schedule
from tether.secrets import SECRET_HEADERS
from tether.watch import Source


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How much to send and how. ``requests`` beyond the number of records cycles them;
    with neither ``requests`` nor ``duration`` each record is sent once.

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
