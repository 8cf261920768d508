"""A run's tally: what adds up across the processes of one run (counts, the latency
histograms, the connection ledger, the groups, the timeline, each distinct problem with its
count, a bounded few of them listed). Outcomes stream in through :meth:`Tally.add` (O(1),
constant memory), and :meth:`Tally.merge` adds another process's share field by field, each
by its rule (:mod:`tether.merging`: its declared type's, or one its field names), so that a
new field either merges or makes every merge fail loudly: none can be left out of a
``--workers`` or ``--cluster`` run unnoticed.

What is true of the run as a whole rather than counted (its target, its length, how it
ended) is kept apart: :class:`tether.metrics.summary.RunFacts`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from tether.document import ErrorExample, FlowRow, InputErrorExample, MismatchExample, Omitted
from tether.errors import RecordError
from tether.ledger import Ledger
from tether.merging import LIVE, Merges, by
from tether.metrics.groups import Groups
from tether.metrics.histogram import Histogram
from tether.metrics.timeline import Timeline
from tether.model import Counted, Mismatch, Outcome
from tether.secrets import SECRET_HEADERS, masked

__all__ = ["FLUSH_EVERY", "MAX_EXAMPLES", "OTHERS_TOLD_APART", "Examples", "Tally"]

MAX_EXAMPLES = 20
OTHERS_TOLD_APART = 10_000
"""Distinct examples past the listed ones are told apart (by a digest of what makes them
one) up to this many per share: "how many more" is exact short of that, and the memory it
takes stays bounded past it (a few hundred KiB), however many records the run has."""
FLUSH_EVERY = 4096
"""Latencies are buffered and bucketed in batches of this many: a list append per request
instead of a Python call."""

E = TypeVar("E", MismatchExample, ErrorExample)
Key = tuple[Any, ...]


class Examples(Generic[E]):
    """The distinct examples of one kind of problem, each with how many times it happened:
    the first :data:`MAX_EXAMPLES` listed, the others told apart by a digest of their key
    (what makes two the same, such as a record's line and a response field), each with its
    count, up to :data:`OTHERS_TOLD_APART`. A merge adds the counts of an example that two
    shares both saw, whether each listed it or not: a run over several processes counts each
    listed example as one process would (while no share saw more distinct ones than that)."""

    __slots__ = ("_listed", "_others", "_untold")

    def __init__(self) -> None:
        self._listed: dict[Key, E] = {}
        self._others: dict[int, int] = {}  # digest of a key -> its count
        self._untold = 0  # times others happened past the bound: which ones, nobody knows

    def add(self, key: Key, make: Callable[[], E]) -> None:
        """Count one time of the example ``key`` names; ``make`` builds it (``count`` 1) the
        first time, when it is listed."""
        listed = self._listed.get(key)
        if listed is not None:
            listed["count"] += 1
        elif self._room():
            self._listed[key] = make()
        else:
            self._other(_digest(key), 1)

    def merge(self, other: Examples[E]) -> None:
        """Add another share's examples to these, counts of the same key added."""
        for key, theirs in other._listed.items():
            mine = self._listed.get(key)
            if mine is not None:
                mine["count"] += theirs["count"]
            elif self._room():
                self._listed[key] = theirs.copy()  # never the other share's own dict
            else:
                self._other(_digest(key), theirs["count"])
        if other._others:
            listed = {_digest(key): example for key, example in self._listed.items()}
            for digest, n in other._others.items():
                example = listed.get(digest)
                if example is not None:
                    example["count"] += n
                else:
                    self._other(digest, n)
        self._untold += other._untold

    def omitted(self) -> Omitted:
        """The examples not listed: how many distinct ones, and how many times in all."""
        return {
            "distinct": len(self._others),
            "count": sum(self._others.values()) + self._untold,
            "exact": not self._untold,
        }

    def _room(self) -> bool:
        # Once one has gone unlisted, none is listed after it: a key told apart by its
        # digest alone can never be listed, and must not be listed twice over.
        return len(self._listed) < MAX_EXAMPLES and not self._others

    def _other(self, digest: int, n: int) -> None:
        others = self._others
        if digest in others:
            others[digest] += n
        elif len(others) < OTHERS_TOLD_APART:
            others[digest] = n
        else:
            self._untold += n

    def __iter__(self) -> Iterator[E]:
        return iter(self._listed.values())

    def __len__(self) -> int:
        return len(self._listed)

    def __getitem__(self, i: int) -> E:
        return list(self._listed.values())[i]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Examples):
            return NotImplemented
        mine = (self._listed, self._others, self._untold)
        return mine == (other._listed, other._others, other._untold)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Examples({list(self)!r}, omitted={self.omitted()!r})"


def _digest(key: Key) -> int:
    """A key's digest, the same in every process and on every host (``hash`` of a string
    is not): 64 bits, so that 10,000 of them collide with odds of about one in 10**11."""
    data = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(data, "big")


def _either(mine: dict[str, list[str]], theirs: dict[str, list[str]]) -> dict[str, list[str]]:
    # Every share of a flow run plans the same flows: the steps are a fact, not a count.
    return {**theirs, **mine}


def _up_to_bound(
    mine: list[InputErrorExample], theirs: list[InputErrorExample]
) -> list[InputErrorExample]:
    # The first shares' examples stand; the others fill what room is left.
    mine.extend(theirs[: max(MAX_EXAMPLES - len(mine), 0)])
    return mine


@dataclass(slots=True)
class Tally(Merges):
    """Counts, latency histograms, the connection ledger and a few examples of each problem.
    Nothing in it grows with the number of requests. Another process's share of the run
    merges field by field (:mod:`tether.merging`): counts add; histograms, groups, the
    ledger, the timeline and the examples merge themselves; input error examples fill up
    to their bound; :data:`LIVE` fields are working state, flushed first."""

    ledger: Ledger = field(default_factory=Ledger)
    latency: Histogram = field(default_factory=Histogram)
    requests: int = 0
    ok: int = 0
    mismatches: int = 0
    errors: int = 0
    reused: int = 0
    retried: int = 0
    redirects: int = 0
    undrained_responses: int = 0
    late: int = 0  # open model: requests sent after they were due (counted by the schedule)
    status: Counter[int] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    mismatch_examples: Examples[MismatchExample] = field(default_factory=Examples)
    error_examples: Examples[ErrorExample] = field(default_factory=Examples)
    input_errors: int = 0
    input_error_examples: list[InputErrorExample] = field(
        default_factory=list, metadata=by(_up_to_bound)
    )
    service: Histogram | None = None  # open model only: latency from the actual send
    groups: Groups = field(default_factory=Groups)
    # Flows: iterations by flow name, completed (every request met its expectation) or
    # failed (one did not, or a capture missed), and of those failed, cut short.
    iterations_completed: Counter[str] = field(default_factory=Counter)
    iterations_failed: Counter[str] = field(default_factory=Counter)
    iterations_cut: Counter[str] = field(default_factory=Counter)
    flow_steps: dict[str, list[str]] = field(default_factory=dict, metadata=by(_either))
    timeline: Timeline = field(default_factory=Timeline)
    pending: list[float] = field(default_factory=list, metadata=LIVE)  # not yet in `latency`
    pending_service: list[float] = field(default_factory=list, metadata=LIVE)
    window: Histogram | None = field(default=None, metadata=LIVE)  # since the last point

    @property
    def flows(self) -> dict[str, FlowRow]:
        """Each flow's iterations, as the document has them (none for plain records)."""
        return {
            name: {
                "completed": self.iterations_completed[name],
                "failed": self.iterations_failed[name],
                "cut": self.iterations_cut[name],
                "steps": steps,
            }
            for name, steps in self.flow_steps.items()
        }

    @flows.setter
    def flows(self, rows: dict[str, FlowRow] | None) -> None:
        # A closing line's (None from a results file written before flows).
        for name, row in (rows or {}).items():
            self.iterations_completed[name] = row["completed"]
            self.iterations_failed[name] = row["failed"]
            self.iterations_cut[name] = row["cut"]
            self.flow_steps[name] = row["steps"]

    @property
    def secret(self) -> frozenset[str]:
        """Headers whose values examples do not show (a summary's are its run's)."""
        return SECRET_HEADERS

    def add(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        """Count one outcome and its check result: every rule of counting a response is
        here (:meth:`add_counted` counts in bulk what a compiled send path counted)."""
        self.requests += 1
        self.reused += outcome.reused
        self.retried += outcome.retried
        self.redirects += outcome.redirects
        group = self.groups.get(outcome.group)
        group.requests += 1
        if outcome.error is not None:
            group.errors += 1
            self._add_error(outcome)
            return
        group.pending.append(outcome.latency)
        self.status[outcome.status] += 1
        pending = self.pending
        pending.append(outcome.latency)
        if self.service is not None:
            self.pending_service.append(outcome.service)
        if len(pending) >= FLUSH_EVERY:
            self.flush()
        self.undrained_responses += outcome.body_truncated
        if mismatches:
            group.mismatches += 1
            self._add_mismatches(outcome, mismatches)
        else:
            group.ok += 1
            self.ok += 1

    def add_counted(self, counted: Counted) -> None:
        """Count what the compiled send path counted itself since it was last asked: each
        response met its expectation, so this is :meth:`add` of an outcome with no error,
        no mismatch, no retry and no redirect, for each, in bulk (each counter slot's
        latencies are those of the group it is named after)."""
        n = counted["requests"]
        self.requests += n
        self.ok += n
        self.reused += counted["reused"]
        self.status.update(counted["status"])
        for name, latencies in counted["slots"].items():
            group = self.groups.get(name)
            group.requests += latencies["count"]
            group.ok += latencies["count"]
            group.latency.absorb(latencies)
            self.latency.absorb(latencies)
            if self.window is not None:
                self.window.absorb(latencies)
        service = counted["service"]
        if service is not None and self.service is not None:
            self.service.absorb(service)

    def add_input_error(self, error: RecordError) -> None:
        """Count a record that could not be sent (it is skipped, never guessed at)."""
        self.input_errors += 1
        if len(self.input_error_examples) < MAX_EXAMPLES:
            self.input_error_examples.append(
                {"source": error.source, "line": error.line, "error": error.problem}
            )

    def flush(self) -> None:
        """Move buffered latencies into the histograms, in one numpy batch each."""
        if self.window is not None and self.pending:
            self.window.record_seconds(list(self.pending))  # a copy: the next line empties it
        self.latency.record_seconds(self.pending)
        if self.service is not None:
            self.service.record_seconds(self.pending_service)
        self.groups.flush()

    def _settle(self) -> None:
        # A merge reads the histograms: the latencies still buffered belong in them.
        self.flush()

    def _add_error(self, outcome: Outcome) -> None:
        self.errors += 1
        self.error_kinds[outcome.error_kind or "request"] += 1
        rec = outcome.record
        # One example per record and kind of error: the same failure again is counted.
        key = (rec.line, rec.method, outcome.url, outcome.error_kind)
        self.error_examples.add(key, partial(_error_example, outcome))

    def _add_mismatches(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        self.mismatches += 1
        rec = outcome.record
        for m in mismatches:
            # One example per record and field: the same field of the same record again is
            # counted (a value that changes, such as a date, is shown as it first was).
            key = (rec.line, rec.method, outcome.url, m.field)
            self.mismatch_examples.add(key, partial(_mismatch_example, outcome, m, self.secret))


def _error_example(outcome: Outcome) -> ErrorExample:
    rec = outcome.record
    return {
        "line": rec.line,
        "method": rec.method,
        "url": outcome.url,
        "kind": outcome.error_kind,
        "error": outcome.error,
        "group": outcome.group,
        "count": 1,
    }


def _mismatch_example(outcome: Outcome, m: Mismatch, secret: frozenset[str]) -> MismatchExample:
    rec = outcome.record
    return {
        "line": rec.line,
        "method": rec.method,
        "url": outcome.url,
        "field": m.field,
        "expected": masked(m.field, m.expected, secret),
        "got": masked(m.field, m.got, secret),
        "group": outcome.group,
        "count": 1,
    }
