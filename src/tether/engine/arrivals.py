"""The open model: requests start when the pacer says, whatever the responses do.

Latency is measured from when each request was due (wrk2's correction for coordinated
omission); the time from when it actually went out is kept as its service time. The hot path
is the same as the closed model's: a request goes out on an idle connection straight from the
scheduler's tick, and its outcome is recorded from the connection's callback.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from tether.engine.connection import Exchange
from tether.engine.pacer import OriginalPace, Schedule
from tether.engine.request import Prepared
from tether.errors import RequestError
from tether.model import Outcome

if TYPE_CHECKING:
    from tether.engine.runner import Run

LATE_SLACK = 0.001
"""An open-model request sent more than this after it was due counts as late."""


class Flight:
    """One open-model request in flight: when it was due and when it actually went out."""

    __slots__ = ("arrivals", "deadline", "due", "prep", "sent")

    def __init__(
        self, arrivals: Arrivals, prep: Prepared, due: float, sent: float, deadline: float
    ) -> None:
        self.arrivals = arrivals
        self.prep = prep
        self.due = due
        self.sent = sent
        self.deadline = deadline  # covers a retry or redirects too

    def done(self, response: Exchange, error: RequestError | None) -> None:
        """The connection's callback."""
        self.arrivals.landed(self, response, error)


class Arrivals:
    """The open model: requests start when the pacer says, not when responses come back,
    and latency is measured from when each was due (wrk2's correction for coordinated
    omission). A request that cannot start on time (the in-flight cap is reached, or the
    loop fell behind) is sent as soon as it can and counted as late, never dropped."""

    def __init__(self, run: Run, pacer: Schedule, max_inflight: int) -> None:
        self._run = run
        self._pacer = pacer
        self._cap = max_inflight
        self._index = 0
        self._inflight = 0
        self._waiting: deque[tuple[Prepared, float]] = deque()
        self._scheduling = True
        self._t0 = 0.0
        self._ahead: Prepared | None = None  # the record whose turn is next, read ahead
        self._follows_records = isinstance(pacer, OriginalPace)  # else times are not read
        self._first_at: float | None = None  # the first record's recorded time
        self._offset = 0.0  # the last recorded time, from the first one

    def start(self) -> None:
        """Start the schedule now."""
        self._t0 = time.perf_counter()
        self._tick()

    def _tick(self) -> None:
        """Send everything due by now, then sleep until the next one is due."""
        run = self._run
        if run.over:
            return
        now = time.perf_counter() - self._t0
        while self._scheduling:
            if self._ahead is None:
                self._ahead = run.feed.next()  # read ahead: its recorded time may set its turn
            prep = self._ahead
            if prep is None:
                self._scheduling = False
                break
            offset = self._recorded(prep) if self._follows_records else 0.0
            at = self._pacer.due(self._index, offset)
            if at is None:
                self._scheduling = False
                break
            if at > now:
                run.loop.call_later(at - now, self._tick)
                return
            self._ahead = None
            self._index += 1
            run.summary.schedule_s = at
            if self._inflight < self._cap:
                self._send(prep, self._t0 + at)
            else:
                run.summary.late += 1
                self._waiting.append((prep, self._t0 + at))
        self._maybe_done()

    def _recorded(self, prep: Prepared) -> float:
        """Seconds from the first record's recorded time to this one's (a record without a
        time keeps the last one's: it follows it at once)."""
        at = prep.record.at
        if at is not None:
            if self._first_at is None:
                self._first_at = at
            self._offset = at - self._first_at
        return self._offset

    def _send(self, prep: Prepared, due: float, *, counted: bool = False) -> None:
        run = self._run
        sent = time.perf_counter()
        if sent - due > LATE_SLACK and not counted:
            run.summary.late += 1
        self._inflight += 1
        if self._inflight > run.summary.peak_inflight:
            run.summary.peak_inflight = self._inflight
        flight = Flight(self, prep, due, sent, run.client.deadline())
        conn = run.pool.take_idle(prep.key)
        if conn is None:
            run.spawn(self._slow(flight))
        else:
            conn.send(prep.head, prep.record.method, prep.need, flight.deadline, flight.done)

    def landed(self, flight: Flight, response: Exchange, error: RequestError | None) -> None:
        """A response (or error) came back for ``flight``."""
        run = self._run
        if run.over:
            return
        if run.hands_over(response, error):
            run.spawn(self._resume(flight, None if error else response, error))
            return
        try:
            now = time.perf_counter()
            run.finish(flight.prep, response, now - flight.due, now - flight.sent)
            self._next()
        except BaseException as exc:
            run.fail(exc)

    async def _slow(self, flight: Flight) -> None:
        outcome = await self._run.client.fetch_prepared(flight.prep)
        outcome.service = outcome.latency
        outcome.latency = time.perf_counter() - flight.due
        self._deliver(outcome)

    async def _resume(
        self, flight: Flight, response: Exchange | None, error: RequestError | None
    ) -> None:
        client = self._run.client
        outcome = await client.complete(flight.prep, flight.due, flight.deadline, response, error)
        outcome.service = time.perf_counter() - flight.sent
        self._deliver(outcome)

    def _deliver(self, outcome: Outcome) -> None:
        self._run.deliver(outcome)
        self._next()

    def _next(self) -> None:
        """One request is done: send the longest-waiting one, if any."""
        self._inflight -= 1
        if self._waiting and not self._run.over:
            prep, due = self._waiting.popleft()
            self._send(prep, due, counted=True)  # counted as late when it had to wait
        self._maybe_done()

    def _maybe_done(self) -> None:
        if not self._scheduling and not self._inflight and not self._waiting:
            self._run.worker_done()
