"""The records a run sends: read (streaming), planned once each, handed out in order, cycled
when a count asks for more, a bad one reported and skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tether.check import QuickCheck
from tether.engine.cycle import Cycle
from tether.engine.request import Prepared
from tether.errors import InputError, RecordError
from tether.metrics.summary import Summary
from tether.model import Record

if TYPE_CHECKING:
    from tether.engine._compiled import Job as CompiledJob

RecordSource = Callable[[], Iterable[Record | RecordError]]
"""Opens the records afresh each time it is called (a second call cycles them)."""

CACHE_RECORDS = 100_000
"""Records of a first pass kept ready to send again when they cycle; a larger set is read
again from its source on every cycle, so memory stays bounded."""


@dataclass(frozen=True, slots=True)
class Job:
    """A record ready to send (the engine's :class:`~tether.engine.request.Prepared`) with
    what the run knows of it: the group its results count under, and its expectation compiled
    for the hot path, when it can be."""

    prep: Prepared
    group: str
    quick: QuickCheck | None
    compiled: CompiledJob | None = None  # for the send path's compiled common case


class Cycles(Protocol):
    """Makes the cycle a feed repeats its records from, ``remaining`` more in all (the
    client's, which a compiled send path reads too: see :func:`tether.run.session.run_async`)."""

    def __call__(self, items: list[Job], remaining: int) -> Any: ...


class Feed:
    """Hands prepared records to the workers: in order, skipping (and reporting) bad ones,
    cycling when asked for more requests than there are records, stopping when told.

    A first pass of up to ``cache_limit`` records is kept to cycle through again; a larger
    one is read again from ``source`` on every cycle (see :data:`CACHE_RECORDS`)."""

    def __init__(
        self,
        source: RecordSource,
        plan: Callable[[Record], Job],
        summary: Summary,
        limit: int | None,
        share: tuple[int, int] = (0, 1),
        cache_limit: int = CACHE_RECORDS,
        cycles: Cycles = Cycle,
    ) -> None:
        self._source = source
        self._share = share
        self._plan = plan
        self._summary = summary
        self._limit = limit
        self._given = 0
        self._in_pass = 0
        self._first_pass = True
        self._cache_limit = cache_limit
        self._cache: list[Job] | None = [] if limit is not None else None
        self._it: Iterator[Job] = self._read()
        self._cycles = cycles
        self._cycle: Any = None  # once the first pass is cached: where every next one is
        self._stopped = False

    @property
    def stopped(self) -> bool:
        """Whether the feed was stopped (the duration is up, Ctrl-C) or ran out."""
        return self._stopped

    @stopped.setter
    def stopped(self, value: bool) -> None:
        self._stopped = value
        if self._cycle is not None:
            self._cycle.stopped = value

    def next(self) -> Job | None:
        """The next record to send, or None when the run is over."""
        if self._cycle is not None:
            job: Job | None = self._cycle.next()
            return job
        if self._stopped or (self._limit is not None and self._given >= self._limit):
            return None
        try:
            prep = next(self._it, None) or self._next_cycle()
        except InputError as fatal:
            # The records cannot be read any further (say, not UTF-8): what was sent stands.
            if not isinstance(fatal, RecordError):
                fatal = RecordError("<records>", 0, str(fatal))
            self._summary.add_input_error(fatal)
            prep = None
        if prep is None:
            self.stopped = True
            return None
        self._given += 1
        self._in_pass += 1
        return prep

    def _next_cycle(self) -> Job | None:
        """Start the records over, when a count asks for more and the last pass had any:
        from the cycle of the first pass's records when they were all kept (what every next
        one then comes from), else by reading them again."""
        if self._limit is None or not self._in_pass:
            return None
        self._first_pass = False
        self._in_pass = 0
        if self._cache is None:
            self._it = self._read()
            return next(self._it, None)
        cache = self._cache
        self._cycle = self._cycles(cache, self._limit - self._given)
        job: Job | None = self._cycle.next()
        return job

    def _read(self) -> Iterator[Job]:
        mine, every = self._share
        for position, item in enumerate(self._source()):
            if position % every != mine:
                continue
            prep = self._planned(item)
            if prep is None:
                continue
            if self._cache is not None and self._first_pass:
                self._cache.append(prep)
                if len(self._cache) > self._cache_limit:
                    self._cache = None
            yield prep

    def _planned(self, item: Record | RecordError) -> Job | None:
        """A prepared record, or None for a bad one (reported on the first pass only)."""
        if isinstance(item, RecordError):
            if self._first_pass:
                self._summary.add_input_error(item)
            return None
        try:
            return self._plan(item)
        except InputError as exc:
            if self._first_pass:
                self._summary.add_input_error(RecordError(item.source, item.line, str(exc)))
            return None


def validate(source: RecordSource) -> None:
    """Strict mode: read every record before sending any; raise on the first bad ones."""
    bad: list[RecordError] = []
    try:
        bad.extend(item for item in source() if isinstance(item, RecordError))
    except RecordError as fatal:
        bad.append(fatal)
    if bad:
        shown = "\n".join(str(e) for e in bad[:10])
        more = f"\n... and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise InputError(f"{len(bad)} bad record(s); nothing was sent:\n{shown}{more}")
