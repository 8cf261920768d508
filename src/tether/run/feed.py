"""The records a run sends: read (streaming), planned once each, handed out in order, cycled
when a count or a duration asks for more, a bad one reported and skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from tether.check import QuickCheck
from tether.engine.cycle import Cycle
from tether.engine.request import Prepared
from tether.errors import InputError, RecordError
from tether.metrics.summary import Summary
from tether.model import Record

RecordSource = Callable[[], Iterable[Record | RecordError]]
"""Opens the records afresh each time it is called (a second call cycles them)."""

CACHE_RECORDS = 100_000
"""Records of a first pass kept ready to send again when they cycle; a larger set is read
again from its source on every cycle, so memory stays bounded."""

ENDLESS = 2**63 - 1
"""What a cycle with no count is given to count down from: the most the compiled cycle's
``long long`` holds, centuries of requests at any rate (the duration or a Ctrl-C ends it)."""


class NoTarget(RecordError):
    """A record whose URL is a path, in a run given no ``--target`` to join it to: one usage
    error for the run, not one bad record a line (every other path would fail alike)."""

    def __init__(self, source: str, line: int, url: str) -> None:
        super().__init__(
            source,
            line,
            f"relative URL {url!r} needs --target, the base URL paths are joined to "
            "(as in --target http://127.0.0.1:8080)",
        )
        self.url = url

    def __reduce__(self) -> tuple[type[NoTarget], tuple[str, int, str]]:
        # Rebuilt from what it was made of, not its message: it crosses from a --workers
        # process (or a cluster worker) to the one that reports it.
        return type(self), (self.source, self.line, self.url)


def dealt(share: tuple[int, int], position: int) -> bool:
    """Whether ``share`` = (k, n) sends the request at ``position`` of the stream one process
    would send (the records in order, cycled: the i-th record of pass q is at q * records +
    i; a bad one holds its position): every n-th, from the k-th. Pure. The rule that splits
    a run over ``--workers`` and ``--cluster``, written once.

    Without a count or a duration the stream is one pass, so each record goes out once,
    from one share. With either (the records cycle: an endless stream, for a duration) the
    shares together send what one process would, each in the file's order, whatever the
    number of records: with one record, every share sends it."""
    mine, every = share
    return position % every == mine


def counted(source: RecordSource, most: int) -> int | None:
    """How many records ``source`` holds (bad ones too: they hold a position), counted up to
    ``most``; None when it cannot be read that far (the run itself then says why)."""
    try:
        return sum(1 for _ in islice(source(), most))
    except InputError:
        return None


@dataclass(frozen=True, slots=True)
class Job:
    """A record ready to send (the engine's plan of it,
    :class:`~tether.engine.request.Prepared`, whose token is this job) with what the run
    knows of it: the group its results count under, and its expectation compiled for the hot
    path, when it can be."""

    prep: Prepared
    group: str
    quick: QuickCheck | None


class Cycles(Protocol):
    """Makes the cycle a feed repeats its records from, ``remaining`` more in all
    (:data:`ENDLESS` for no count): the client's (see
    :meth:`tether.engine.client.Client.cycle`), which hands out the jobs' tokens, the jobs
    themselves."""

    def __call__(self, items: list[Job], remaining: int) -> Any: ...


class Feed:
    """Hands prepared records to the workers: in order, skipping (and reporting) bad ones,
    cycling when ``repeat`` says to (:attr:`tether.run.options.RunOptions.cycles`) until the
    ``limit``, if there is one, stopping when told. A ``share`` of a split run hands out only
    its positions of the stream (:func:`dealt`).

    A record the plan refuses as :class:`NoTarget` is raised from :meth:`next` when it is the
    first this feed would hand out (nothing was sent: a usage error, before the run); later,
    it ends the feed there, reported once as the run's input error (what was sent stands).

    A first pass of up to ``cache_limit`` records is kept to cycle through again; a larger
    one is read again from ``source`` on every cycle (see :data:`CACHE_RECORDS`). A share's
    "first pass" is its first period: the passes until its positions come round to the
    first record again (one pass when its number divides the records'; one record over
    two shares: two), each record in it read and planned once, as it is sent."""

    def __init__(
        self,
        source: RecordSource,
        plan: Callable[[Record], Job],
        summary: Summary,
        limit: int | None,
        share: tuple[int, int] = (0, 1),
        cache_limit: int = CACHE_RECORDS,
        cycles: Cycles = Cycle,
        *,
        repeat: bool = False,
    ) -> None:
        self._source = source
        self._share = share
        self._plan = plan
        self._summary = summary
        self._limit = limit
        self._repeat = repeat
        self._given = 0
        self._position = 0  # in the stream: it runs on from one pass into the next
        self._first_pass = True
        self._cache_limit = cache_limit
        self._cache: list[Job] | None = [] if repeat else None
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
        prep = self._taken()
        if prep is None:
            self.stopped = True
            return None
        self._given += 1
        return prep

    def _taken(self) -> Job | None:
        """The stream's next job; None where it ends: at its end, where it cannot be read
        any further, or at a path with no target after something was sent (both reported;
        what was sent stands)."""
        try:
            return next(self._it, None) or self._next_cycle()
        except NoTarget as missing:
            if not self._given:
                raise  # nothing sent: the usage error, before the run
            problem = f"{missing.problem}; the run stopped here"
            self._summary.add_input_error(RecordError(missing.source, missing.line, problem))
        except InputError as fatal:
            # The records cannot be read any further (say, not UTF-8).
            if not isinstance(fatal, RecordError):
                fatal = RecordError("<records>", 0, str(fatal))
            self._summary.add_input_error(fatal)
        return None

    def _next_cycle(self) -> Job | None:
        """Start the records over, when the run repeats them: from the cycle of the first
        period's records when they were all kept (what every next one then comes from), else
        by reading them again. A pass may deal this share none (more shares than records,
        or only bad ones at its positions); n passes in a row cover every position it has,
        so after n with none the records are over."""
        if not self._repeat:
            return None
        every = self._share[1]
        for _ in range(every):
            self._first_pass = False
            # The passes so far hold a multiple of n positions: the next pass deals this
            # share what the first did, and so on; what it kept is all it will ever send.
            if self._cache is not None and self._position % every == 0:
                if not self._cache:
                    return None
                remaining = ENDLESS if self._limit is None else self._limit - self._given
                self._cycle = self._cycles(self._cache, remaining)
                job: Job | None = self._cycle.next()
                return job
            self._it = self._read()
            job = next(self._it, None)
            if job is not None:
                return job
        return None

    def _read(self) -> Iterator[Job]:
        for item in self._source():
            position = self._position
            self._position += 1
            if not dealt(self._share, position):
                continue
            prep = self._planned(item)
            if prep is None:
                continue
            if self._cache is not None:  # the first period (it is cycled from then on)
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
        except NoTarget:
            raise  # the run's, not this record's: see next()
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
