"""The open model: requests start when the pacer says, whatever the responses do.

Latency is measured from when each request was due (wrk2's correction for coordinated
omission); the time from when it actually went out is kept as its service time. The hot path
is the same as the closed model's (the one send path, :mod:`tether.engine.dispatch`): a
request goes out on an idle connection straight from the scheduler's tick, and its outcome
is recorded from the connection's callback.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

from tether.engine.dispatch import Journey
from tether.errors import Unsent
from tether.model import Outcome
from tether.run.feed import Job
from tether.run.pacer import Schedule

if TYPE_CHECKING:
    from tether.run.session import Session

LATE_SLACK = 0.001
"""An open-model request sent more than this after it was due counts as late."""


def unsent(job: Job, waited: float, timeout: float) -> Outcome:
    """The outcome of a request that was due ``waited`` seconds ago and never found room:
    it could not have been answered within ``--timeout`` of when it was due, so it is
    counted as failed then, not sent later (a server that answers nothing would otherwise
    hold a run for a timeout per in-flight cap's worth of requests)."""
    prep = job.prep
    error = Unsent(f"not sent: no room for it within --timeout ({timeout:g}s) of when it was due")
    return Outcome(
        prep.record, url=prep.url_text, error=str(error), error_kind=error.kind, latency=waited
    )


class Flight(Journey):
    """One open-model request: its latency is measured from when it was due, its service
    time from when it actually went out."""

    __slots__ = ("run_job", "schedule")

    def __init__(self, schedule: Arrivals, job: Job, due: float, sent: float) -> None:
        super().__init__(schedule.dispatch, job.prep, due)
        self.sent = sent
        self.schedule = schedule
        self.run_job = job

    def counted(self, token: object) -> None:
        # The engine counted the response, latency and service time included.
        self.schedule.request_done()

    def answered(self, outcome: Outcome) -> None:
        self.schedule.session.deliver(self.run_job, outcome)
        self.schedule.request_done()

    def failed(self, exc: BaseException) -> None:
        self.schedule.session.fail(exc)


class Arrivals:
    """The open model: requests start when the pacer says, not when responses come back,
    and latency is measured from when each was due (wrk2's correction for coordinated
    omission). A request that cannot start on time (the in-flight cap is reached, or the
    loop fell behind) is sent as soon as it can and counted as late, never dropped."""

    def __init__(self, session: Session, pacer: Schedule, max_inflight: int) -> None:
        self.session = session
        self.dispatch = session.dispatch
        self._pacer = pacer
        self._cap = max_inflight
        self._index = 0
        self._inflight = 0
        self._waiting: deque[tuple[Job, float]] = deque()
        self._scheduling = True
        self._t0 = 0.0
        self._ahead: Job | None = None  # the record whose turn is next, read ahead
        self._follows_records = pacer.follows_records  # else the records' times are not read
        self._first_at: float | None = None  # the first record's recorded time
        self._offset = 0.0  # the last recorded time, from the first one
        self._timeout = session.client.options.timeout  # what a request may wait for room
        self._expiry: asyncio.TimerHandle | None = None  # for the longest-waiting request

    def start(self) -> None:
        """Start the schedule now."""
        self._t0 = time.perf_counter()
        self.dispatch.room = self._send_waiting
        self._tick()

    def _tick(self) -> None:
        """Send everything due by now, then sleep until the next one is due."""
        session = self.session
        if session.over:
            return
        now = time.perf_counter() - self._t0
        while self._scheduling:
            if self._ahead is None:
                self._ahead = session.feed.next()  # read ahead: its recorded time may set its turn
            job = self._ahead
            if job is None:
                self._scheduling = False
                break
            offset = self._recorded(job) if self._follows_records else 0.0
            at = self._pacer.due(self._index, offset)
            if at is None:
                self._scheduling = False
                break
            if at > now:
                session.loop.call_later(at - now, self._tick)
                return
            self._ahead = None
            self._index += 1
            session.summary.facts.schedule_s = at
            if not self._waiting and self._may_send(job):
                self._send(job, self._t0 + at)
            else:
                session.summary.late += 1
                self._waiting.append((job, self._t0 + at))
                self._expire_later()
        self._maybe_done()

    def _may_send(self, job: Job) -> bool:
        """Below the in-flight cap, and a connection to send on now (or one being found for
        few enough): else the request waits here for the next response to free one, which
        costs nothing, where a request sent into the pool's queue would cost a task."""
        return self._inflight < self._cap and self.dispatch.ready(job.prep)

    def _recorded(self, job: Job) -> float:
        """Seconds from the first record's recorded time to this one's (a record without a
        time keeps the last one's: it follows it at once)."""
        at = job.prep.record.at
        if at is not None:
            if self._first_at is None:
                self._first_at = at
            self._offset = at - self._first_at
        return self._offset

    def _send(self, job: Job, due: float, *, counted: bool = False) -> None:
        summary = self.session.summary
        sent = time.perf_counter()
        if sent - due > LATE_SLACK and not counted:
            summary.late += 1
        self._inflight += 1
        if self._inflight > summary.facts.peak_inflight:
            summary.facts.peak_inflight = self._inflight
        self.dispatch.send(Flight(self, job, due, sent))

    def request_done(self) -> None:
        """One request is done: send the longest-waiting ones that may go now."""
        self._inflight -= 1
        self._send_waiting()
        self._maybe_done()

    def _send_waiting(self) -> None:
        """Send the longest-waiting requests that may go now (also when the async path has
        room again: :attr:`tether.engine.dispatch.Dispatch.room`)."""
        waiting = self._waiting
        while waiting and not self.session.over and self._may_send(waiting[0][0]):
            job, due = waiting.popleft()
            self._send(job, due, counted=True)  # counted as late when it had to wait

    def _expire_later(self) -> None:
        """One timer, for when the longest-waiting request has waited too long."""
        if self._expiry is None and self._waiting and self._timeout:
            wait = self._waiting[0][1] + self._timeout - time.perf_counter()
            self._expiry = self.session.loop.call_later(max(wait, 0.0), self._expire)

    def _expire(self) -> None:
        """Count the requests that waited past ``--timeout`` from their due time as failed,
        unsent (see :func:`unsent`)."""
        self._expiry = None
        if self.session.over:
            return
        now = time.perf_counter()
        waiting = self._waiting
        while waiting and now - waiting[0][1] >= self._timeout:
            job, due = waiting.popleft()
            self.session.deliver(job, unsent(job, now - due, self._timeout))
        self._expire_later()
        self._maybe_done()

    def _maybe_done(self) -> None:
        if not self._scheduling and not self._inflight and not self._waiting:
            self.session.worker_done()
