"""Pure data passed between the stages of a run. No I/O here.

A :class:`Record` says what to send and what to expect; the engine turns it into an
:class:`Outcome`; :mod:`tether.check` compares the two into :class:`Mismatch` items.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, NamedTuple, TypedDict

HeaderRule = Literal["equals", "regex", "absent"]
BodyRule = Literal["equals", "contains", "sha256", "json"]


class BodyNeed(Enum):
    """How much of a response body the engine must keep for the checks.

    The engine always reads a body to the end (that is what lets a connection be reused);
    this only says what it does with the bytes on the way.
    """

    DISCARD = 0
    HASH = 1
    KEEP = 2


@dataclass(frozen=True, slots=True)
class HeaderExpect:
    """One expected response header. ``name`` is lower-case."""

    name: str
    rule: HeaderRule
    value: str = ""


@dataclass(frozen=True, slots=True)
class BodyExpect:
    """One expectation on the response body.

    ``equals`` and ``contains`` hold text, ``sha256`` a hex digest, ``json`` any JSON value
    matched as a subset (objects may have more keys than expected).
    """

    rule: BodyRule
    value: Any


@dataclass(frozen=True, slots=True)
class Expect:
    """What a record expects of its response. Empty means anything goes."""

    status: tuple[int, ...] = ()
    headers: tuple[HeaderExpect, ...] = ()
    body: tuple[BodyExpect, ...] = ()

    @property
    def body_need(self) -> BodyNeed:
        """The least the engine must keep of the body for these checks."""
        rules = {b.rule for b in self.body}
        if rules - {"sha256"}:
            return BodyNeed.KEEP
        return BodyNeed.HASH if rules else BodyNeed.DISCARD


NO_EXPECT = Expect()

SUCCESS = tuple(range(200, 400))
"""The statuses a run of one URL expects when ``--expect-status`` does not say (2xx and 3xx,
as hey and k6 count failures)."""
SUCCESS_TEXT = "2xx or 3xx"
"""How a mismatch names :data:`SUCCESS` as the status expected."""

KEEP_BODY = Expect(body=(BodyExpect("contains", ""),))
"""Expects nothing but has the body kept: the engine keeps a body only when a check needs
it, and an empty "contains" holds for any body (for commands that read bodies themselves)."""


CaptureSource = Literal["json", "header", "cookie", "regex", "status"]


@dataclass(frozen=True, slots=True)
class CaptureRule:
    """One variable a flow's record takes from its response: ``name``, and where from:
    ``json`` (``what`` a JSONPath), ``header`` (a lower-case name), ``cookie`` (a cookie
    name, from the response's Set-Cookie), ``regex`` (its first group, over the body) or
    ``status``."""

    name: str
    source: CaptureSource
    what: str = ""

    @property
    def needs_body(self) -> bool:
        """Whether the body must be kept to take it."""
        return self.source in ("json", "regex")

    def describe(self) -> str:
        """What was looked for, for a message: ``json $.token``, ``header Location``."""
        return self.source if self.source == "status" else f"{self.source} {self.what}"


@dataclass(frozen=True, slots=True)
class Record:
    """One request to send and what its response should be.

    ``url`` is absolute or a path to be joined to the run's target. ``line`` is where the
    record stands in ``source`` (1-based), so every message can point back at it. ``tag``
    names the group the record is reported in (else its method and path template).
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    expect: Expect = NO_EXPECT
    line: int = 0
    source: str = ""
    tag: str = ""
    at: float | None = None  # when it was first sent (seconds since the epoch), if recorded
    capture: tuple[CaptureRule, ...] = ()  # variables a flow takes from the response
    flow: str = ""  # the flow it is a step of, when a file holds several
    uses: tuple[str, ...] = ()  # the {{variables}} it uses, in order, built-ins included

    @property
    def in_flow(self) -> bool:
        """Whether the record is a step of a flow (it captures, uses variables, or names
        its flow), rather than a request of its own."""
        return bool(self.capture or self.uses or self.flow)

    @property
    def where(self) -> str:
        """``source:line`` for messages."""
        return f"{self.source or '<records>'}:{self.line}"


@dataclass(slots=True)
class Outcome:
    """What happened to one record: the response, or the error, and the connection that
    carried it.

    ``headers`` has lower-case names; repeated headers are joined with ``", "`` (a plain
    dict will do when building outcomes by hand).
    ``latency`` is seconds from the request's start to the end of its body; in an open-model
    run the start is when the request was due (so queueing counts), and ``service`` is from
    when it actually went out.
    ``conn_id`` is 0 when no connection was had. ``reused`` is true when the request went out
    on a connection that had carried an earlier request (an HTTP/2 stream too, on a
    connection that had carried another). ``protocol`` is what the response came over:
    ``http/1.1`` or ``h2``.
    """

    record: Record
    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    body_sha256: str | None = None
    body_size: int = 0
    body_truncated: bool = False
    latency: float = 0.0
    conn_id: int = 0
    reused: bool = False
    retried: bool = False
    redirects: int = 0
    url: str = ""
    error: str | None = None
    error_kind: str | None = None
    service: float = 0.0
    group: str = ""
    protocol: str = "http/1.1"
    worker: int = -1  # a flow's: the virtual user that sent it (-1: no flow)
    iteration: int = -1  # and the iteration it was part of


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One way a response differs from its record's expectation."""

    field: str
    expected: str
    got: str


class SlotCounts(TypedDict):
    """One counter slot's latencies, in :meth:`tether.metrics.histogram.Histogram.to_dict`'s
    shape (microseconds)."""

    count: int
    total: int
    clamped: int
    min: int
    max: int
    buckets: list[list[int]]


class Counted(TypedDict):
    """What the compiled path counted since it was last asked: responses (each met its
    expectation), how many went on a reused connection, statuses, latencies per counter
    slot, and (open model) service times."""

    requests: int
    reused: int
    status: dict[int, int]
    slots: dict[str, SlotCounts]  # by the name each was counted as
    service: SlotCounts | None  # the time from each actual send, when it is not the latency


class Vouch(NamedTuple):
    """What a response must show to be counted as meeting its expectation without a check
    (a compiled send path counts such responses itself): one of ``statuses`` (empty: any),
    each of ``equals`` ((lower-case name, value) as bytes) exactly once, none of ``absent``
    (lower-case names). Made by :meth:`tether.check.QuickCheck.vouch`."""

    statuses: tuple[int, ...]
    equals: tuple[tuple[bytes, bytes], ...]
    absent: tuple[bytes, ...]
