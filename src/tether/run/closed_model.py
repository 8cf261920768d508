"""The closed model: N workers, each sending its next record as soon as its last response is
in (N=1 is the plain sequential loop).

A worker is one :class:`~tether.engine.dispatch.Journey`, sent again and again: it writes its
next request from inside the callback that delivered the last response, on the connection
that response just freed, with no task switch in between.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tether.engine.dispatch import Journey
from tether.model import Outcome
from tether.run.feed import Job

if TYPE_CHECKING:
    from tether.run.session import Session


class Worker(Journey):
    """One closed-model worker: at most one request in flight. A closed-model request goes
    out when it starts: its service time is its latency."""

    __slots__ = ("_session",)

    repeats = True

    def __init__(self, session: Session) -> None:
        super().__init__(session.dispatch)
        self._session = session

    def next(self, job: Job | None = None) -> None:
        """Send the next record (``job``, or the feed's next), or tell the run this worker
        is done."""
        session = self._session
        job = job or session.feed.next()
        if job is None:
            session.worker_done()
            return
        self.job = job.prep
        self.started = self.sent = time.perf_counter()
        self.dispatch.send(self)

    def counted(self, token: Job | None) -> None:
        # The engine counted the last response; ``token`` is a Job of the feed's, or None.
        self.next(token)

    def answered(self, outcome: Outcome) -> None:
        assert self.job is not None
        self._session.deliver(self.job.token, outcome)  # (the token of its job: the feed's)
        self.next()

    def failed(self, exc: BaseException) -> None:
        self._session.fail(exc)
