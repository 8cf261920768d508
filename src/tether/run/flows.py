"""Flows: records that capture and use variables, run by virtual users.

A records file whose records capture or use ``{{variables}}`` (or name a ``flow``) is a flow
(several, by their ``flow`` keys). Each virtual user runs a flow's records in file order
with its own variables and cookie jar; when the flow ends, the user starts it again with
fresh ones (one iteration). In the closed model each of ``-c`` is one user; in the open
model an arrival starts one iteration. ``-n`` counts requests (an iteration takes the
requests it needs when it starts, so a multiple of the flow's length runs whole ones),
``--iterations`` counts iterations, ``-d`` a duration.

What a user owns (:class:`VirtualUser`) is apart from what the run shares
(:class:`FlowRun`: the flows, the budget, the data rows); the engine sees filled records.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import chain, islice
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tether.check import QuickCheck, quick_check
from tether.engine.compiled import native
from tether.engine.connection import STRICT_HEADS
from tether.engine.dispatch import Journey
from tether.engine.request import Prepared, Url, resolve
from tether.engine.splice import Splice, Where, splice
from tether.errors import InputError, RecordError
from tether.flow import data as data_rows
from tether.flow.captures import json_path, set_cookie_values, take
from tether.flow.cookies import CookieJar, default_path
from tether.flow.data import DataRows
from tether.flow.template import PER_ITERATION, Hole, Template, parse, uses
from tether.http.heads import NOT_IN_A_VALUE, Headers
from tether.http.urls import VISIBLE
from tether.metrics.groups import group_key
from tether.model import BodyExpect, BodyNeed, CaptureRule, Expect, Outcome, Record
from tether.run.feed import Job
from tether.run.pacer import Schedule
from tether.secrets import HIDDEN

if TYPE_CHECKING:
    from tether.engine._compiled import Job as NativeJob
    from tether.engine.client import Client
    from tether.run.session import Session

__all__ = [
    "FLOW_MOST",
    "Flow",
    "FlowRun",
    "FlowSettings",
    "Step",
    "VirtualUser",
    "find_flows",
    "parse_weights",
]

FLOW_MOST = 10_000
"""Records a flow file may hold: all of them are read and planned before the run."""

# A captured value is a secret when its name says so, as a URL's credential query is one.
_SECRET_NAME = re.compile(r"(?i)token|passw(?:or)?d|secret|session|sid|auth|key|cookie|pwd")


class Refused(Exception):
    """A step that cannot be sent as its variables fill it (the request fails)."""


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """How flows run: what a capture miss does, whether users keep cookies, the flows'
    weights, the data rows and whether each is used once."""

    skip_on_miss: bool = True
    cookies: bool = True
    weights: tuple[tuple[str, int], ...] = ()
    data: DataRows | None = None
    unique: bool = False
    mask: bool = True  # reports hide captured values whose names look secret


class Slots:
    """What a flow's compiled jobs are filled from, by index: each variable encoded for
    where a hole takes it (percent-encoded in a target; a header's refused when it holds a
    control character), and each request target's Cookie line; made afresh for a user when
    its values or its jar change (:meth:`fill`)."""

    def __init__(self) -> None:
        self.count = 0
        self._values: dict[tuple[str, Where], int] = {}
        self._cookies: dict[tuple[str, str, str], int] = {}

    def of_value(self, name: str, where: Where) -> int:
        """The slot of ``name``'s value as a hole at ``where`` takes it."""
        return self._slot(self._values, (name, where))

    def of_cookie(self, url: Url) -> int:
        """The slot of the Cookie line for requests to ``url``."""
        return self._slot(self._cookies, (url.scheme, url.host, url.target))

    def places(self, name: str) -> list[tuple[int, int]]:
        """(slot, where) of each hole ``name``'s value fills."""
        return [(at, where) for (held, where), at in self._values.items() if held == name]

    def cookie_slots(self) -> Iterable[int]:
        """The slots of the Cookie lines."""
        return self._cookies.values()

    def cookie_hosts(self) -> set[tuple[str, str]]:
        """(scheme, host) of every Cookie line's slot."""
        return {(scheme, host.lower()) for scheme, host, _ in self._cookies}

    def _slot(self, known: dict[Any, int], key: Any) -> int:
        if key not in known:
            known[key] = self.count
            self.count += 1
        return known[key]

    def fill(
        self,
        values: dict[str, str],
        jar: CookieJar | None,
        before: list[bytes | None] | None = None,
    ) -> list[bytes | None]:
        """Every slot for a user with these ``values`` and ``jar`` (None: cannot be sent);
        the Cookie lines as ``before`` has them, when given (the jar has not changed)."""
        filled: list[bytes | None] = [b""] * self.count  # b"": no cookies
        for (name, where), at in self._values.items():
            filled[at] = _encoded(values.get(name), where)
        if before is not None:
            for at in self._cookies.values():
                filled[at] = before[at]
        elif jar is not None and len(jar):
            now = time.time()
            for (scheme, host, target), at in self._cookies.items():
                header = jar.header(scheme, host, target, now)
                if header is not None:
                    filled[at] = b"Cookie: %s\r\n" % header.encode("latin-1")
        return filled


def _encoded(text: str | None, where: Where) -> bytes | None:
    if text is None:
        return None
    if where is Where.TARGET:
        return quote(text, safe=VISIBLE).encode("ascii")
    if where is Where.HEADER:
        return None if NOT_IN_A_VALUE.search(text) else text.encode("utf-8")
    return text.encode("utf-8", "surrogateescape")


class _Cursor:
    """Where a user is in its flow, on the Python path (the compiled path's Cursor is the
    same, read and moved on by the connection too: see its docstring)."""

    __slots__ = (
        "broken",
        "budget",
        "cookie_slots",
        "generation",
        "iteration",
        "jar",
        "jar_allowed",
        "jar_on",
        "jobs",
        "pos",
        "reserved",
        "slots",
        "start",
        "taken",
        "took",
    )

    def __init__(self) -> None:
        self.jobs: list[Any] = []
        self.slots: list[bytes | None] = []
        self.pos = 0
        self.reserved = 0
        self.taken: list[bytes | None] = []
        self.jar: list[tuple[bytes, bytes]] = []
        self.jar_on = self.jar_allowed = self.took = self.broken = False
        self.cookie_slots: list[int] = []
        self.budget: Any = None
        self.start: list[bytes | None] | None = None
        self.generation = self.iteration = 0


class _Budget:
    """What a flow run may still start, on the Python path (the compiled path's Budget is
    the same, shared with its cursors): -1 for no count."""

    __slots__ = (
        "completed",
        "every",
        "failed",
        "first",
        "iterations",
        "requests",
        "started",
        "stopped",
    )

    def __init__(self, requests: int, iterations: int, first: int, every: int) -> None:
        self.requests, self.iterations = requests, iterations
        self.first, self.every = first, every
        self.started = self.completed = self.failed = 0
        self.stopped = False


@dataclass(slots=True)
class Step:
    """One record of a flow, read for filling: its templates, its group, and its
    expectation compiled when no variable is in it; once the run's client has it
    (:meth:`compile`), its plan with its holes in it (``template``) and, on a compiled send
    path, its compiled job and how to fill its bytes (:meth:`fast`)."""

    record: Record
    group: str
    quick: QuickCheck | None
    url: Template
    headers: tuple[tuple[str, Template], ...]
    body: Template | None
    dynamic_expect: bool
    keeps_body: bool = False
    captures: tuple[bytes, ...] = ()  # the header fields the compiled job reads
    template: Prepared | None = None
    native: NativeJob | None = None
    splice: Splice | None = None
    holes: tuple[tuple[str, Where, Hole | None], ...] = ()  # name, where, a dynamic built-in
    cookie_slot: int = -1  # the slot of its jar's Cookie line

    @classmethod
    def of(cls, record: Record, group: str) -> Step:
        """The step ``record`` is (its templates were read when it was; a record that uses
        no variable, recorded traffic among them, is text throughout)."""
        if not record.uses:
            quick = quick_check(record.expect, STRICT_HEADS)
            plain = tuple((name, Template((value,))) for name, value in record.headers)
            return cls(record, group, quick, Template((record.url,)), plain, None, False)
        body = record.body.decode("utf-8", "surrogateescape") if record.body else ""
        dynamic = any("{{" in h.value for h in record.expect.headers) or any(
            isinstance(b.value, str) and "{{" in b.value for b in record.expect.body
        )
        quick = None if dynamic else quick_check(record.expect, STRICT_HEADS)
        return cls(
            record,
            group,
            quick,
            parse(record.url),
            tuple((name, parse(value)) for name, value in record.headers),
            parse(body) if "{{" in body else None,
            dynamic,
        )

    def compile(
        self,
        client: Client,
        counted: Callable[[str], str] | None,
        jar: bool,
        slots: Slots | None = None,
    ) -> None:
        """Plan the step with its holes in it, once; on a compiled send path, with its
        compiled job when its bytes can be spliced (a path that starts with "/", no variable
        in Host, no Cookie header of its own beside the jar's), which the path fills from
        ``slots`` itself when no hole of its is in the body or a built-in of new values."""
        record = self.record
        self.keeps_body = any(rule.needs_body for rule in record.capture)
        names = [rule.what.encode("latin-1") for rule in record.capture if rule.source == "header"]
        if jar or any(rule.source == "cookie" for rule in record.capture):
            names.append(b"set-cookie")
        self.captures = tuple(dict.fromkeys(names))
        vouch = self.quick.vouch if self.quick is not None and self._splices(jar) else None
        try:
            self.template = client.plan_step(
                record,
                vouch=vouch if counted is not None else None,
                counted_as=counted(self.group) if counted is not None else self.group,
                captures=self.captures,
                keep_body=self.keeps_body,
                takes=bool(record.capture),
            )
        except InputError:
            return  # a URL that is whole only once filled: each send is planned in full
        self.native = self.template.native
        if self.native is not None:
            self.native.stores = jar
            self.native.root_path = default_path(self.template.url.target) == "/"
            if b"set-cookie" in self.captures:
                self.native.cookie_field = self.captures.index(b"set-cookie")
            request = self.template.request
            self.splice = splice(request.http11, len(request.body), holes=bool(record.uses))
            made = [(parse(m.decode()).holes[0], where) for m, where in self.splice.holes]
            self.holes = tuple((h.name, w, h if h.dynamic else None) for h, w in made)
            if slots is not None:
                self.cookie_slot = slots.of_cookie(self.template.url)
                self.native.parts = self._parts(slots)

    def _parts(self, slots: Slots) -> list[bytes | int] | None:
        """The compiled job's bytes as parts and slots, or None when only :meth:`fast`
        can fill them."""
        assert self.splice is not None and self.template is not None
        if self.splice.body is not None or any(dynamic for _, _, dynamic in self.holes):
            return None
        parts: list[bytes | int] = [
            part if isinstance(part, bytes) else slots.of_value(*self.holes[part][:2])
            for part in self.splice.head
        ]
        parts.insert(-1, self.cookie_slot)  # before the blank line
        return parts

    def _splices(self, jar: bool) -> bool:
        record = self.record
        if "{{" in record.url and not record.url.startswith("/"):
            return False  # a host or a scheme that only a fill can tell
        names = {name.lower() for name, template in self.headers if not template.plain}
        own = {name.lower() for name, _ in self.headers}
        return "host" not in names and not (jar and "cookie" in own)

    def fast(self, user: VirtualUser) -> bytes:
        """The step's bytes as ``user``'s values fill them (and its jar's Cookie line, from
        its slots), spliced into the compiled job's: :class:`Refused` as :meth:`fill`
        refuses."""
        assert self.splice is not None
        values = user.values
        pieces = []
        for name, where, dynamic in self.holes:
            piece = _encoded(values.get(name) if dynamic is None else dynamic.value(), where)
            if piece is None:
                raise Refused(f"{{{{{name}}}}} has no value, or one that cannot be sent")
            pieces.append(piece)
        cookie = user.cursor.slots[self.cookie_slot] if self.cookie_slot >= 0 else b""
        return self.splice.fill(pieces, cookie or b"")

    def fill(self, values: dict[str, str]) -> Record:
        """The record as ``values`` fill it (the jar's cookies are :func:`filled`'s);
        :class:`Refused` when a variable has no value or holds what cannot be sent."""
        record = self.record
        try:
            url = self.url.fill(_quoted(values, self.url)) if record.uses else record.url
            headers = tuple((name, _header(name, t, values)) for name, t in self.headers)
            body = record.body
            if self.body is not None:
                body = self.body.fill(values).encode("utf-8", "surrogateescape")
        except KeyError as missing:
            raise Refused(
                f"{{{{{missing.args[0]}}}}} has no value: the capture that sets it found nothing "
                "earlier in this iteration"
            ) from None
        return replace(record, url=url, headers=headers, body=body)

    def expected(self, record: Record, values: dict[str, str]) -> Record:
        """``record`` with its expectation as ``values`` fill it, once the response's own
        captures are among them; a variable without a value is left as written (the
        check then says what it was)."""
        if not self.dynamic_expect:
            return record
        return replace(record, expect=_expect(self.record.expect, _Known(values)))


def quick_takes(step: Step, slots: Slots, variables: dict[str, int]) -> list[Any] | None:
    """What compiled code takes from ``step``'s responses itself (see the compiled
    Cursor's ``take``), or None when a capture of it is only its sender's: a regular
    expression, a JSON path beyond one member of the top-level object."""
    assert native is not None
    program: list[Any] = []
    for rule in step.record.capture:
        key, at = b"", -1
        if rule.source == "json":
            path = json_path(rule.what)
            if len(path) != 1 or not isinstance(path[0], str) or not path[0].isascii():
                return None
            key = path[0].encode("ascii")
        elif rule.source == "header":
            at = step.captures.index(rule.what.encode("latin-1"))
        elif rule.source == "cookie":
            key = rule.what.encode("utf-8")
        elif rule.source != "status":
            return None
        places = slots.places(rule.name)
        if any(where is Where.BODY for _, where in places):
            return None
        kind = native.TAKES.index(rule.source)
        holes = tuple((slot, int(where)) for slot, where in places)
        program.append((kind, key, at, variables[rule.name], holes))
    return program


def _quoted(values: dict[str, str], template: Template) -> dict[str, str]:
    # A value goes into a URL percent-encoded where it is not visible ASCII (a space, UTF-8).
    return {h.name: quote(values[h.name], safe=VISIBLE) for h in template.holes if not h.dynamic}


def _header(name: str, template: Template, values: dict[str, str]) -> str:
    if template.plain:
        return template.parts[0] if template.parts else ""  # type: ignore[return-value]
    value = template.fill(values)
    bad = NOT_IN_A_VALUE.search(value)
    if bad:
        used = ", ".join(f"{{{{{h.name}}}}}" for h in template.holes)
        raise Refused(
            f"header {name} as {used} fill it holds {bad.group()!r}: refused, a header "
            "value cannot hold CR, LF or other control characters"
        )
    return value


def _with_cookie(headers: tuple[tuple[str, str], ...], cookie: str) -> tuple[tuple[str, str], ...]:
    # The record's own Cookie header goes first, and the jar's cookies after it.
    for i, (name, value) in enumerate(headers):
        if name.lower() == "cookie":
            return (*headers[:i], (name, f"{value}; {cookie}"), *headers[i + 1 :])
    return (*headers, ("Cookie", cookie))


class _Known(dict[str, str]):
    """Values that fill a variable without one as it was written."""

    def __missing__(self, name: str) -> str:
        return f"{{{{{name}}}}}"


def _expect(expect: Expect, values: dict[str, str]) -> Expect:
    headers = tuple(
        replace(h, value=parse(h.value).fill(values)) if h.rule == "equals" else h
        for h in expect.headers
    )
    body = tuple(
        BodyExpect(b.rule, parse(b.value).fill(values)) if b.rule in ("equals", "contains") else b
        for b in expect.body
    )
    return replace(expect, headers=headers, body=body)


@dataclass(slots=True)
class Flow:
    """One flow: its name, its steps in file order, its weight in the mix."""

    name: str
    steps: list[Step]
    weight: int = 1
    current: int = 0  # smooth weighted round-robin's running score

    jobs: list[Any] = field(default_factory=list)  # each step's that the path fills, or None

    def compiled(self) -> None:
        """Note each step's compiled job that the path fills itself (once they are made)."""
        self.jobs = [
            step.native if step.native is not None and step.native.parts is not None else None
            for step in self.steps
        ]


def find_flows(
    source: Callable[[], Iterable[Record | RecordError]], *, streamed: bool = False
) -> tuple[list[Record] | None, Callable[[], Iterable[Record | RecordError]]]:
    """The records of ``source`` when it is a flow file (every one read: there is no run
    of a flow with one left out), else None; and the source to read the records from
    again, whose first reading goes on from what was read here (standard input cannot be
    read twice). InputError when a flow holds bad records or more than :data:`FLOW_MOST`.

    A ``streamed`` source (records that arrive as they are written) is told by its first
    record: reading ahead for a later flow step would hold the run until the writer ends
    (a flow on standard input begins at its first record)."""
    it = iter(source())
    head: list[Record | RecordError] = []
    fatal: InputError | None = None
    try:
        head.extend(islice(it, 1 if streamed else FLOW_MOST + 1))
        if streamed and any(isinstance(item, Record) and item.in_flow for item in head):
            head.extend(islice(it, FLOW_MOST))
    except InputError as error:  # the records cannot be read on: the feed says so, in turn
        it, fatal = _raising(error), error
    again = _replayed(head, it, source)
    records = [item for item in head if isinstance(item, Record)]
    if not any(record.in_flow for record in records):
        return None, again
    if fatal is not None:
        raise fatal  # a flow is all of its records or nothing
    if len(head) > FLOW_MOST:
        raise InputError(f"a flow file holds at most {FLOW_MOST:,} records")
    bad = [item for item in head if isinstance(item, RecordError)]
    if bad:
        shown = "\n".join(str(e) for e in bad[:10])
        raise InputError(f"{len(bad)} bad record(s) in a flow; nothing was sent:\n{shown}")
    return records, again


def _raising(error: InputError) -> Iterator[Record | RecordError]:
    raise error
    yield  # a generator, which raises when first read


def _replayed(
    head: list[Record | RecordError],
    rest: Iterator[Record | RecordError],
    source: Callable[[], Iterable[Record | RecordError]],
) -> Callable[[], Iterable[Record | RecordError]]:
    first = [True]

    def again() -> Iterable[Record | RecordError]:
        if first[0]:
            first[0] = False
            return chain(head, rest)
        return source()

    return again


def flows_of(records: list[Record], settings: FlowSettings) -> list[Flow]:
    """The flows the records make, in the order each first appears, each checked: every
    variable used is captured by an earlier step, a data column or a built-in (InputError
    naming the record that uses one that is not)."""
    by_name: dict[str, list[Record]] = {}
    for record in records:
        by_name.setdefault(record.flow or "main", []).append(record)
    known = set(settings.data.names) if settings.data else set()
    flows = [Flow(name, _steps(name, members, known)) for name, members in by_name.items()]
    _weigh(flows, settings.weights)
    return flows


def _steps(name: str, records: list[Record], known: set[str]) -> list[Step]:
    captured = set(known) | PER_ITERATION
    keys = [group_key(r.method, r.url.split("?", 1)[0], r.tag) for r in records]
    steps = []
    for record, key in zip(records, keys, strict=True):
        own = {rule.name for rule in record.capture}
        checked = set(_expect_uses(record.expect))  # filled once its own captures are in
        for used in record.uses:
            known_then = captured | own if used in checked else captured
            if used not in known_then and not used.startswith("$"):
                raise InputError(_never_captured(record, used, name, records))
        captured.update(own)
        group = key if keys.count(key) == 1 else f"{key} (line {record.line})"
        steps.append(Step.of(record, group))
    return steps


def _expect_uses(expect: Expect) -> Iterator[str]:
    for h in expect.headers:
        if h.rule == "equals":
            yield from uses(h.value)
    for b in expect.body:
        if b.rule in ("equals", "contains"):
            yield from uses(b.value)


def _never_captured(record: Record, name: str, flow: str, records: list[Record]) -> str:
    later = [r.line for r in records if any(rule.name == name for rule in r.capture)]
    why = (
        f"it is captured only later (line {later[0]}), and each iteration starts afresh"
        if later
        else "no record captures it and no --data column names it"
    )
    return f"{record.where}: {{{{{name}}}}} has no value before this record of flow {flow!r}: {why}"


def _weigh(flows: list[Flow], weights: tuple[tuple[str, int], ...]) -> None:
    if not weights:
        return
    names = {flow.name for flow in flows}
    unknown = [name for name, _ in weights if name not in names]
    if unknown:
        raise InputError(
            f"--flow-weights names {', '.join(unknown)}: the file's flows are "
            f"{', '.join(sorted(names))}"
        )
    given = dict(weights)
    for flow in flows:
        flow.weight = given.get(flow.name, 0)
    if not any(flow.weight for flow in flows):
        raise InputError("--flow-weights gives every flow a weight of 0")


def parse_weights(text: str) -> tuple[tuple[str, int], ...]:
    """``login=3,browse=7``; InputError otherwise."""
    weights = []
    for part in text.split(","):
        name, sep, number = part.strip().partition("=")
        if not sep or not name or not number.isdigit():
            raise InputError(
                f"--flow-weights {text!r}: give name=weight pairs, as login=3,browse=7"
            )
        weights.append((name, int(number)))
    return tuple(weights)


def _pick(flows: list[Flow]) -> Flow:
    """The next flow by smooth weighted round-robin (nginx's upstream rule): the mix holds
    the weights exactly over every whole round, with no randomness to wait out."""
    total = 0
    best = flows[0]
    for flow in flows:
        flow.current += flow.weight
        total += flow.weight
        if flow.current > best.current:
            best = flow
    best.current -= total
    return best


class FlowRun:
    """What a flow run's users share: the flows, the budget of requests and iterations,
    the data rows, and whether it stopped (the duration is up, Ctrl-C)."""

    def __init__(
        self,
        session: Session,
        client: Client,
        flows: list[Flow],
        settings: FlowSettings,
        budget: tuple[int | None, int | None],
        share: tuple[int, int] = (0, 1),
        counted: Callable[[str], str] | None = None,
    ) -> None:
        self.session = session
        self.client = client
        self.flows = flows
        self.settings = settings
        requests, iterations = budget
        # Left to reserve, to start (-1: no count), and started here; the compiled path's
        # cursors begin iterations from it too.
        self.budget: Any = (native.Budget if native is not None else _Budget)(
            -1 if requests is None else requests,
            -1 if iterations is None else iterations,
            *share,
        )
        self.share = share
        self._rows: Iterator[int] | None = None
        data = settings.data
        if data is not None:
            self._rows = data_rows.rows_of(len(data.rows), share, settings.unique)
        self.slots = Slots()
        for flow in flows:
            session.summary.flow_steps[flow.name] = [step.group for step in flow.steps]
            for step in flow.steps:
                step.compile(client, counted, settings.cookies, self.slots)
            flow.compiled()
        self.variables = {
            rule.name: 0 for flow in flows for step in flow.steps for rule in step.record.capture
        }
        for at, name in enumerate(self.variables):
            self.variables[name] = at
        self.secret_names = {name for name in self.variables if _SECRET_NAME.search(name)}
        self._quick(flows)

    def _quick(self, flows: list[Flow]) -> None:
        """What the compiled path does itself: each step's captures it can take, the jar
        it keeps while every Cookie line is for one host (a cookie of the plain kind is then
        every line's), and whether a user's cursor begins iterations (one flow, no data, no
        slot of a value that changes with the iteration)."""
        hosts = self.slots.cookie_hosts()
        self.jar_origin = next(iter(hosts), None)
        self.jar_here = self.settings.cookies and len(hosts) <= 1
        for flow in flows:
            for step in flow.steps:
                if step.native is not None:
                    step.native.quick_takes = quick_takes(step, self.slots, self.variables)
        first = flows[0].jobs[0] if len(flows) == 1 and flows[0].jobs else None
        changing = bool(self.slots.places("$iteration"))
        self.loops = first is not None and self.settings.data is None and not changing

    @property
    def stopped(self) -> bool:
        """Nothing more is started (the duration is up, Ctrl-C)."""
        return bool(self.budget.stopped)

    @stopped.setter
    def stopped(self, value: bool) -> None:
        self.budget.stopped = value

    def fold(self) -> None:
        """Count the iterations the compiled path's cursors ended and began again."""
        budget = self.budget
        if budget.completed or budget.failed:
            tally = self.session.summary
            name = self.flows[0].name  # (cursors begin iterations only of a run's one flow)
            tally.iterations_completed[name] += budget.completed
            tally.iterations_failed[name] += budget.failed
            budget.completed = budget.failed = 0

    @property
    def compiled(self) -> bool:
        """Whether any step of the flows has a compiled job (else all go on the Python
        path: over HTTP/2, say, or with every host a variable)."""
        return any(step.native is not None for flow in self.flows for step in flow.steps)

    def begin(self, user: VirtualUser) -> bool:
        """Set ``user`` up for its next iteration; False when the run has no more."""
        budget = self.budget
        if budget.stopped or self.session.over or budget.iterations == 0:
            return False
        if budget.requests == 0:
            return False
        values: dict[str, str] = {}
        if self._rows is not None and self.settings.data is not None:
            row = next(self._rows, None)
            if row is None:
                return False  # --data-mode unique: every row has been used
            values = self.settings.data.values(row)
        flow = _pick(self.flows)
        reserved = len(flow.steps)
        if budget.requests > 0:
            reserved = min(reserved, budget.requests)
            budget.requests -= reserved
        if budget.iterations > 0:
            budget.iterations -= 1
        number = budget.first + budget.started * budget.every
        budget.started += 1
        values["$worker"] = str(user.number)
        values["$iteration"] = str(number)
        user.setup(flow, values, reserved, number)
        return True

    def give_back(self, reserved: int) -> None:
        """Requests an iteration reserved and did not send (it was cut short)."""
        if self.budget.requests >= 0:
            self.budget.requests += reserved

    def job(self, step: Step, user: VirtualUser) -> Job:
        """The step filled for ``user`` and planned in full (what the Python path sends,
        and a compiled connection's request when the Python path takes it over):
        :class:`Refused` if it cannot be."""
        record = filled(step, user.values, user.jar, self.client.base)
        try:
            prep = self.client.plan(record)
        except InputError as exc:  # a URL that a filled variable made unusable
            raise Refused(str(exc)) from None
        if step.keeps_body:
            prep.need = BodyNeed.KEEP
        native = step.native
        if native is not None:  # an idle compiled connection sends it as it is filled here
            if native.parts is None:
                native.fill(step.fast(user))
                prep.native = native
            elif native.fill_from(user.cursor.slots):
                prep.native = native
        job = Job(prep, step.group, step.quick)
        prep.token = job
        return job


class VirtualUser(Journey):
    """One virtual user: its variables, its cookie jar and where it is in its flow. It
    sends its flow's steps one after another, each when the last one's response is in: from
    the compiled connection's callback when the step has a compiled job
    (:meth:`following`), else through the send path (:meth:`go`)."""

    __slots__ = (
        "cursor",
        "due",
        "flow",
        "fresh",
        "generation",
        "jar",
        "jar_version",
        "number",
        "once",
        "run",
        "secrets",
        "step_job",
        "values",
    )

    repeats = True

    def __init__(self, run: FlowRun, number: int, *, once: bool = False) -> None:
        super().__init__(run.session.dispatch)
        self.run = run
        self.number = number
        self.once = once  # one iteration, then done (an arrival; a run with no count)
        self.jar: CookieJar | None = CookieJar() if run.settings.cookies else None
        self.jar_version = -2  # the jar's version the slots' Cookie lines were made of
        self.values: dict[str, str] = {}
        self.fresh: dict[str, str] = {}  # the values an iteration begins with
        self.secrets: list[str] = []  # values captured under secret-looking names
        self.flow: Flow | None = None
        # Where it is: the step in flight and the steps it may send, which the compiled
        # connection moves on itself between steps whose captures it can take (and, with a
        # budget, from one iteration into the next).
        cursor = self.cursor = native.Cursor() if native is not None else _Cursor()
        cursor.taken = [None] * len(run.variables)
        cursor.jar_allowed = run.jar_here and self.jar is not None
        cursor.cookie_slots = list(run.slots.cookie_slots())
        if run.loops and not once:
            cursor.budget = run.budget
        self.generation = 0  # the cursor's, when the values were last taken in
        self.step_job: Job | None = None
        self.due: float | None = None  # the open model: when the iteration was due

    @property
    def iteration(self) -> int:
        """The number of the iteration it is in (unique over the run)."""
        return int(self.cursor.iteration)

    @property
    def broken(self) -> bool:
        """A request of this iteration failed."""
        return bool(self.cursor.broken)

    def setup(self, flow: Flow, values: dict[str, str], reserved: int, iteration: int) -> None:
        """A fresh iteration of ``flow`` (the run's :meth:`FlowRun.begin` calls it)."""
        cursor = self.cursor
        self.flow, self.fresh, self.values = flow, values, dict(values)
        cursor.iteration, cursor.broken = iteration, False
        cursor.pos, cursor.reserved = 0, reserved
        cursor.jobs = flow.jobs
        self._fresh_state()
        cursor.jar, cursor.jar_on = [], cursor.jar_allowed
        cursor.taken = [None] * len(cursor.taken)
        self._refresh()
        if cursor.budget is not None:
            cursor.start = list(cursor.slots)

    def _fresh_state(self) -> None:
        """No cookies and nothing captured on the Python side."""
        self.secrets = []
        if self.jar is not None:
            self.jar.clear()
        self.jar_version = -2  # (the compiled jar may have written the Cookie lines)

    def _pull(self) -> None:
        """Take in what the compiled path did since the Python side last looked: the
        iterations its cursor began, the values it captured and the cookies it kept (the
        jar is the Python side's from here to the iteration's end)."""
        cursor = self.cursor
        changed = False
        if cursor.generation != self.generation:  # it began iterations: this is the last
            self.generation = cursor.generation
            self.values = dict(self.fresh, **{"$iteration": str(cursor.iteration)})
            self._fresh_state()
            changed = True
        taken = cursor.taken
        if any(value is not None for value in taken):
            for name, at in self.run.variables.items():
                value = taken[at]
                if value is not None:
                    self.values[name] = text = value.decode("utf-8")
                    taken[at] = None
                    changed = True
                    if name in self.run.secret_names and self.run.settings.mask:
                        self.secrets.append(text)
        if cursor.jar:
            self._spill(cursor.jar)
            cursor.jar = []
            changed = True
        cursor.jar_on = False
        if changed:
            self._refresh()

    def _spill(self, cookies: list[tuple[bytes, bytes]]) -> None:
        """The compiled jar's cookies (host-only, of path "/") into the user's jar, in the
        order they were made."""
        assert self.jar is not None and self.run.jar_origin is not None
        scheme, host = self.run.jar_origin
        texts = [b"%s=%s; Path=/" % pair for pair in cookies]
        self.jar.store([text.decode("latin-1") for text in texts], scheme, host, "/", time.time())

    def _refresh(self) -> None:
        """The slots the compiled jobs fill from, as the values and the jar now are."""
        jar = self.jar
        version = -1 if jar is None else jar.version
        same = version == self.jar_version and len(self.cursor.slots) == self.run.slots.count
        self.cursor.slots = self.run.slots.fill(
            self.values, jar, self.cursor.slots if same else None
        )
        self.jar_version = version

    def start(self) -> None:
        """Start the user's first iteration (or tell the run it has none)."""
        if self.run.begin(self):
            self.go()
        else:
            self._stop()

    def _stop(self) -> None:
        self.flow = None
        self._on_done()

    def _on_done(self) -> None:
        """The user has nothing more to send (an arrival of the open model: its
        iteration is over)."""
        self.run.session.worker_done()

    # -- sending ----------------------------------------------------------------------------

    def go(self) -> None:
        """Send the current step through the send path, skipping (as failures) those that
        cannot be filled; at the flow's end, the next iteration; else the user is done."""
        run = self.run
        self._pull()
        while self._current():
            flow = self.flow
            assert flow is not None
            step = flow.steps[self.cursor.pos]
            try:
                job = run.job(step, self)
            except Refused as exc:
                self._refused(step, str(exc))
                continue
            self.step_job = job
            self.job = job.prep
            now = time.perf_counter()
            self.started = self.due if self.due is not None and self.cursor.pos == 0 else now
            self.sent = now
            run.session.dispatch.send(self)
            return
        self._stop()

    def _current(self) -> bool:
        """Whether there is a step to send now (the next iteration begun if this one is
        over); False when the user is done."""
        run = self.run
        while True:
            flow = self.flow
            if flow is None:
                return False
            if run.stopped or run.session.finished.done():
                # (an iteration whose last step was in flight when the run stopped is whole)
                self._end(cut=self.cursor.pos < len(flow.steps))
                return False
            if self.cursor.pos < self.cursor.reserved:  # (never past the flow's length: see begin)
                return True
            self._end(cut=self.cursor.pos < len(flow.steps))
            if self.once or not run.begin(self):
                return False

    def _upcoming(self) -> Any:
        """The next step's compiled job, filled, when it has one (what the compiled
        connection sends at once); else None, and :meth:`go` sends it."""
        if not self._current():
            return None
        flow = self.flow
        assert flow is not None
        step = flow.steps[self.cursor.pos]
        native = step.native
        if native is None or (self.cursor.pos == 0 and self.due is not None):
            return None
        if native.parts is not None:
            if not native.fill_from(self.cursor.slots):
                return None  # go() finds it refused, and says so
        else:
            try:
                native.fill(step.fast(self))
            except Refused:
                return None
        self.job = step.template
        return native

    def prepared_now(self) -> Any:
        """The Prepared of the step in flight (the Python path takes it over)."""
        self._pull()
        flow = self.flow
        assert flow is not None
        step = flow.steps[self.cursor.pos]
        try:
            job = self.run.job(step, self)
        except Refused:
            assert step.template is not None  # it was sent, so it was filled then
            return step.template
        self.step_job = job
        return job.prep

    # -- hearing back -----------------------------------------------------------------------

    def answered(self, outcome: Outcome) -> None:
        self._pull()
        job = self.step_job
        assert job is not None
        miss = self._captured(outcome)
        if miss is not None and outcome.error is None:
            outcome.error, outcome.error_kind = miss, "capture"
        outcome.worker, outcome.iteration = self.number, self.iteration
        flow = self.flow
        assert flow is not None
        step = flow.steps[self.cursor.pos]
        # The record as the file has it (its variables shown as written), expecting what
        # the values, this response's captures among them, fill its expectation with.
        outcome.record = step.expected(step.record, self.values)
        quick = job.quick if not step.dynamic_expect else None
        ok = self.run.session.deliver_as(job.group, quick, outcome, self._redactor())
        # A request that failed took none of its captures: as a miss, it ends the iteration.
        lost = outcome.error is not None and bool(step.record.capture)
        self._advance(ok=ok, miss=miss is not None or lost)
        self.go()

    def counted(self, token: Any) -> None:
        # The compiled path counted the last response (``following`` heard of it first):
        # the current step goes out through the send path.
        self.go()

    def following(
        self,
        status: int,
        captured: list[tuple[int, bytes]] | None,
        body: bytes | None,
        latency_us: int,
        reused: bool,
    ) -> Any:
        """The compiled connection read the response to the current step and vouches for it
        (see ``Path.step``): take its captures, and answer with the next step's compiled
        job to send at once (None: :meth:`go` sends it), or False when a capture missed (the
        response is counted here, as that failure)."""
        self._pull()
        flow = self.flow
        assert flow is not None
        step = flow.steps[self.cursor.pos]
        if not self.cursor.took and (captured is not None or step.record.capture):
            self.job = step.template  # (the path may have sent it: what its cookies are for)
            fields = [(step.captures[i], value) for i, value in captured or ()]
            headers = Headers.of_fields(fields)
            miss = self._take(step.record, (status, headers, body))
            if miss is not None:
                outcome = Outcome(
                    step.record,
                    status=status,
                    headers=headers,
                    latency=latency_us / 1e6,
                    service=latency_us / 1e6,
                    reused=reused,
                    url=step.template.url_text if step.template else step.record.url,
                    error=miss,
                    error_kind="capture",
                    worker=self.number,
                    iteration=self.iteration,
                )
                self.run.session.deliver_as(step.group, step.quick, outcome, self._redactor())
            self._advance(ok=miss is None, miss=miss is not None)
            upcoming = self._upcoming()
            return False if miss is not None else upcoming
        self.cursor.pos += 1  # (_advance, for a response with nothing to take: the common case)
        return self._upcoming()

    def _advance(self, ok: bool, miss: bool) -> None:
        self.cursor.broken = self.cursor.broken or not ok
        self.cursor.pos += 1
        if miss and self.run.settings.skip_on_miss:
            self.cursor.reserved = self.cursor.pos  # the rest of this iteration is not sent

    def _refused(self, step: Step, problem: str) -> None:
        outcome = Outcome(
            step.record,
            url=step.record.url,
            error=f"{problem} ({step.record.where})",
            error_kind="variable",
            worker=self.number,
            iteration=self.iteration,
        )
        self.run.session.deliver_as(step.group, step.quick, outcome, self._redactor())
        self._advance(ok=False, miss=False)

    def _end(self, cut: bool) -> None:
        """The iteration is over: counted as completed or failed (and cut short)."""
        flow = self.flow
        if flow is None:
            return
        self.run.give_back(max(self.cursor.reserved - self.cursor.pos, 0) if cut else 0)
        self.flow = None
        if self.cursor.pos == 0:
            return  # nothing of it was sent
        if cut and (self.run.stopped or self.run.session.over):
            return  # cut by the run's end: neither
        tally = self.run.session.summary
        if self.broken or cut:
            tally.iterations_failed[flow.name] += 1
            if cut:
                tally.iterations_cut[flow.name] += 1
        else:
            tally.iterations_completed[flow.name] += 1

    def _captured(self, outcome: Outcome) -> str | None:
        """Take the step's captures (and the response's cookies) from an answered request
        (one that failed takes nothing); the miss's sentence."""
        if outcome.error is not None:
            return None
        response = (outcome.status, outcome.headers, outcome.body)
        return self._take(outcome.record, response)

    def _take(
        self, record: Record, response: tuple[int, Mapping[str, str], bytes | None]
    ) -> str | None:
        url = self.job.url if self.job is not None else None
        miss = captured(record, response, self.values, self.jar, url)
        self._refresh()
        if self.run.settings.mask:
            self.secrets += [
                self.values[name] for name in _secret_names(record.capture) if name in self.values
            ]
        return miss

    def redact(self, text: str) -> str:
        """``text`` with the values this iteration captured under names that look secret
        (``token``, ``password``, ``session``) hidden, as secret headers are."""
        for value in self.secrets:
            text = text.replace(value, HIDDEN)
        return text

    def _redactor(self) -> Callable[[str], str] | None:
        return self.redact if self.secrets else None

    def failed(self, exc: BaseException) -> None:
        self.run.session.fail(exc)


def filled(step: Step, values: dict[str, str], jar: CookieJar | None, base: Url | None) -> Record:
    """``step``'s record as ``values`` fill it, with the Cookie header ``jar`` gives its URL
    (joined to ``base``): what the Python path sends for a user. :class:`Refused` as
    :meth:`Step.fill` refuses, and for a URL the values made unusable."""
    record = step.fill(values)
    if jar is None or not len(jar):
        return record
    try:
        url = resolve(record.url, base)
    except InputError as exc:
        raise Refused(str(exc)) from None
    cookie = jar.header(url.scheme, url.host, url.target, time.time())
    if not cookie:
        return record
    return replace(record, headers=_with_cookie(record.headers, cookie))


@lru_cache(maxsize=1024)
def _secret_names(capture: tuple[CaptureRule, ...]) -> tuple[str, ...]:
    return tuple(rule.name for rule in capture if _SECRET_NAME.search(rule.name))


def captured(
    record: Record,
    response: tuple[int, Mapping[str, str], bytes | None],
    values: dict[str, str],
    jar: CookieJar | None,
    url: Url | None,
) -> str | None:
    """Take what ``record`` captures from its ``response`` (status, headers, the body
    kept) into ``values``, and the response's cookies into ``jar`` (for a request to
    ``url``): the one rule of a response's captures, for every sender of a flow. The
    sentence of the first capture that found nothing, or None."""
    status, headers, body = response
    if jar is not None and url is not None:
        cookies = set_cookie_values(headers)
        if cookies:
            jar.store(cookies, url.scheme, url.host, url.target, time.time())
    for rule in record.capture:
        value = take(rule, status, headers, body)
        if value is None:
            return (
                f"capture {rule.name}: {rule.describe()} found nothing in the response "
                f"to {record.where}"
            )
        values[rule.name] = value
    return None


class FlowArrivals:
    """The open model for flows: an arrival starts one iteration (``--rate`` counts
    iterations a second, as k6's arrival-rate executors do), at most ``cap`` at once; the
    rest wait, counted as late, never dropped."""

    def __init__(self, run: FlowRun, pacer: Schedule, cap: int) -> None:
        self.run = run
        self._pacer = pacer
        self._cap = cap
        self._index = 0
        self._inflight = 0
        self._waiting: list[float] = []
        self._free: list[int] = []
        self._numbers = 0
        self._scheduling = True
        self._t0 = 0.0

    def start(self) -> None:
        """Start the schedule now."""
        self._t0 = time.perf_counter()
        self._tick()

    def _tick(self) -> None:
        session = self.run.session
        if session.over:
            return
        now = time.perf_counter() - self._t0
        while self._scheduling:
            at = self._pacer.due(self._index, 0.0)
            if at is None or self.run.stopped:
                self._scheduling = False
                break
            if at > now:
                session.loop.call_later(at - now, self._tick)
                return
            self._index += 1
            session.summary.facts.schedule_s = at
            if self._inflight < self._cap and not self._waiting:
                self._arrive(self._t0 + at)
            else:
                session.summary.late += 1
                self._waiting.append(self._t0 + at)
        self._maybe_done()

    def _arrive(self, due: float) -> None:
        summary = self.run.session.summary
        number = self._free.pop() if self._free else self._next_number()
        user = _Arrival(self, number)
        user.due = due
        if not self.run.begin(user):
            self._free.append(number)
            self._scheduling = False
            self._waiting.clear()
            return
        self._inflight += 1
        summary.facts.peak_inflight = max(summary.facts.peak_inflight, self._inflight)
        user.go()

    def _next_number(self) -> int:
        number = self.run.share[0] + self._numbers * self.run.share[1]
        self._numbers += 1
        return number

    def done(self, user: _Arrival) -> None:
        """An arrival's iteration is over: start the longest-waiting one, if any."""
        self._inflight -= 1
        self._free.append(user.number)
        if self._waiting and not self.run.session.over:
            self._arrive(self._waiting.pop(0))
        self._maybe_done()

    def _maybe_done(self) -> None:
        if not self._scheduling and not self._inflight and not self._waiting:
            self.run.session.worker_done()


class _Arrival(VirtualUser):
    """One open-model iteration's user."""

    __slots__ = ("arrivals",)

    def __init__(self, arrivals: FlowArrivals, number: int) -> None:
        super().__init__(arrivals.run, number, once=True)
        self.arrivals = arrivals

    def _on_done(self) -> None:
        self.arrivals.done(self)
