"""The one merge rule (tether.merging): every class that merges is found, each of its fields
merges as its rule says (two shares with every field set, merged, and each field checked),
and a field given to any of them without a rule fails the merge, naming class and field."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import tether
from tether.document import ErrorExample, InputErrorExample, MismatchExample
from tether.ledger import CloseReason, Ledger, Streams
from tether.merging import LIVE, Merges, by, plan
from tether.metrics.groups import MAX_GROUPS, OTHER, Group, Groups
from tether.metrics.histogram import Histogram
from tether.metrics.summary import RunFacts, Summary
from tether.metrics.tally import MAX_EXAMPLES, Examples, Tally
from tether.metrics.timeline import Point, Timeline

# Two shares of a run and what merging the second into the first must give.
Case = tuple[Merges, Merges, Merges]

# Classes that merge with their own method, not field by field: a histogram's buckets are an
# array, and the examples' bound is kept by the examples themselves.
OWN_MERGE = {Histogram, Examples}


def every_tether_class() -> set[type]:
    names = [m.name for m in pkgutil.walk_packages(tether.__path__, "tether.")]
    classes: set[type] = set()
    for name in names:
        if name.endswith("__main__"):
            continue  # running it is the command line
        module = importlib.import_module(name)
        classes |= {
            v for v in vars(module).values() if isinstance(v, type) and v.__module__ == name
        }
    return classes


def hist(*seconds: float) -> Histogram:
    histogram = Histogram()
    histogram.record_seconds(list(seconds))
    return histogram


def streams_case() -> Case:
    a = Streams(
        connections=2, streams=10, peak=4, goaway=1, retried=1,
        reset_by_server=Counter(cancel=1), reset_by_us=Counter(cancel=2),
        flow_stalls=3, flow_stall_s=0.5, leaked=1, stalled=1, unread_bytes=100,
    )  # fmt: skip
    b = Streams(
        connections=3, streams=20, peak=5, goaway=2, retried=3,
        reset_by_server=Counter(cancel=1, refused_stream=1), reset_by_us=Counter(protocol=1),
        flow_stalls=1, flow_stall_s=0.25, leaked=2, stalled=3, unread_bytes=50,
    )  # fmt: skip
    merged = Streams(
        connections=5, streams=30, peak=5, goaway=3, retried=4,  # the peak: the larger
        reset_by_server=Counter(cancel=2, refused_stream=1),
        reset_by_us=Counter(cancel=2, protocol=1),
        flow_stalls=4, flow_stall_s=0.75, leaked=3, stalled=4, unread_bytes=150,
    )  # fmt: skip
    return a, b, merged


def ledger_case() -> Case:
    (a_h2, b_h2, h2) = streams_case()
    idle, shutdown = CloseReason.SERVER_IDLE, CloseReason.SHUTDOWN
    a = Ledger(
        opened=3, open_now=1, peak_open=2, connect_failed=1, retried_stale=1,
        closed=Counter({idle: 2}), carried=Counter({"http/1.1": 10}), h2=a_h2,
    )  # fmt: skip
    b = Ledger(
        opened=4, open_now=2, peak_open=3, connect_failed=2, retried_stale=2,
        closed=Counter({idle: 1, shutdown: 3}), carried=Counter({"h2": 5}), h2=b_h2,
    )  # fmt: skip
    merged = Ledger(
        opened=7, open_now=3, peak_open=5, connect_failed=3, retried_stale=3,  # peaks: the sum
        closed=Counter({idle: 3, shutdown: 3}), carried=Counter({"http/1.1": 10, "h2": 5}),
        h2=h2,
    )  # fmt: skip
    return a, b, merged


def group_case() -> Case:
    # Latencies still buffered on either side are flushed into the histogram first.
    a = Group(requests=4, ok=2, mismatches=1, errors=1, latency=hist(0.001), pending=[0.002])
    b = Group(requests=6, ok=3, mismatches=2, errors=1, latency=hist(0.003), pending=[0.004])
    merged = Group(
        requests=10, ok=5, mismatches=3, errors=2, latency=hist(0.001, 0.002, 0.003, 0.004)
    )
    return a, b, merged


def groups_case() -> Case:
    (g0_a, g0_b, g0) = group_case()
    a = Groups({"g0": g0_a, "g1": Group(requests=1, latency=hist(0.1))})
    b = Groups({"g0": g0_b, "g2": Group(requests=2, latency=hist(0.2))})
    merged = Groups(
        {
            "g0": g0,
            "g1": Group(requests=1, latency=hist(0.1)),
            "g2": Group(requests=2, latency=hist(0.2)),
        }
    )
    return a, b, merged


def point(t: float, requests: int, open_: int, p99: float) -> Point:
    return Point(t, 1.0, requests, 1, 1, Counter({200: requests}), open_, p99, p99)


def timeline_case() -> Case:
    # The same seconds of the run side by side: counts and connections open add, the p99
    # is the worse one; seconds only one share has stand as they are.
    a = Timeline([point(1.0, 10, 2, 1.0), point(2.0, 20, 2, 1.0)])
    b = Timeline([point(1.0, 5, 1, 3.0)])
    both = Point(1.0, 1.0, 15, 2, 2, Counter({200: 15}), 3, 1.0, 3.0)
    merged = Timeline([both, point(2.0, 20, 2, 1.0)])
    return a, b, merged


def mismatch(line: int) -> Callable[[], MismatchExample]:
    def make() -> MismatchExample:
        return {
            "line": line, "method": "GET", "url": f"http://h/{line}", "field": "status",
            "expected": "200", "got": "500", "group": "g0", "count": 1,
        }  # fmt: skip

    return make


def error(line: int) -> Callable[[], ErrorExample]:
    def make() -> ErrorExample:
        return {
            "line": line, "method": "GET", "url": f"http://h/{line}", "kind": "connect",
            "error": "refused", "group": "g0", "count": 1,
        }  # fmt: skip

    return make


def examples(make: Callable[[int], Callable[[], Any]], *lines: int) -> Examples[Any]:
    listed: Examples[Any] = Examples()
    for line in lines:
        listed.add((line,), make(line))
    return listed


def input_errors(lines: range) -> list[InputErrorExample]:
    return [{"source": "r.jsonl", "line": line, "error": "not JSON"} for line in lines]


def tally_case(cls: type[Tally]) -> Case:
    shares: list[Tally] = []
    for seed, (ledger, groups, timeline) in enumerate(
        zip(ledger_case(), groups_case(), timeline_case(), strict=True)
    ):
        n = seed + 1  # the expected share's counts are the other two's sums: 1 + 2
        share = cls(
            ledger=ledger, latency=hist(0.01 * n), requests=10 * n, ok=5 * n,
            mismatches=2 * n, errors=n, reused=4 * n, retried=n, redirects=n,
            undrained_responses=n, late=n, status=Counter({200: 5 * n, 500: n}),
            error_kinds=Counter({"connect": n}), input_errors=3 * n,
            service=hist(0.005 * n), groups=groups, timeline=timeline,
            iterations_completed=Counter({"login": 4 * n}),
            iterations_failed=Counter({"login": n}), iterations_cut=Counter({"login": n}),
        )  # fmt: skip
        shares.append(share)
    a, b, merged = shares
    # The third is a sum only of what adds: the rest is written out as the rules give it.
    merged.latency = hist(0.01, 0.02, 0.001)  # a's latencies still buffered are counted too
    a.pending = [0.001]
    merged.service = hist(0.005, 0.01)
    a.mismatch_examples, b.mismatch_examples = examples(mismatch, 1), examples(mismatch, 1, 2)
    merged.mismatch_examples = examples(mismatch, 1, 1, 2)  # the same example's counts add
    a.error_examples, b.error_examples = examples(error, 3), examples(error, 4)
    merged.error_examples = examples(error, 3, 4)
    # The first share's input error examples stand, the second's fill the room left.
    a.input_error_examples = input_errors(range(MAX_EXAMPLES - 2))
    b.input_error_examples = input_errors(range(100, 105))
    merged.input_error_examples = a.input_error_examples + b.input_error_examples[:2]
    # Every share plans the same flows: their steps are one fact, not a sum.
    a.flow_steps = b.flow_steps = {"login": ["POST /login"]}
    merged.flow_steps = {"login": ["POST /login"]}
    return a, b, merged


def facts_case() -> Case:
    watch = {"interval_s": 1.0, "sources": [], "leak_verdicts": [], "cross_checks": []}
    lost = [{"worker": f"w{i}", "error": "gone", "reported": None} for i in range(2)]
    a = RunFacts(
        target="http://a", concurrency=2, rate_target=10.0, peak_inflight=3, schedule_s=1.0,
        duration=1.5, interrupted=False, signal=None, watch=watch,
        secret=frozenset({"x-a"}), lost_workers=[lost[0]], engine="python",
    )  # fmt: skip
    b = RunFacts(
        target="http://b", concurrency=3, rate_target=20.0, peak_inflight=4, schedule_s=2.0,
        duration=2.5, interrupted=True, signal="SIGTERM", watch=dict(watch, interval_s=2.0),
        secret=frozenset({"x-b"}), lost_workers=[lost[1]], engine="compiled",
    )  # fmt: skip
    merged = RunFacts(
        # The first target and signal given stand; connections, rates and peaks in flight add;
        # the run lasts as long as its longest share; one share interrupted is the run;
        # the watch and the secret headers are the first share's; both workers are lost;
        # the shares' send paths differ: "mixed".
        target="http://a", concurrency=5, rate_target=30.0, peak_inflight=7, schedule_s=2.0,
        duration=2.5, interrupted=True, signal="SIGTERM", watch=watch,
        secret=frozenset({"x-a"}), lost_workers=lost, engine="mixed",
    )  # fmt: skip
    return a, b, merged


def summary_case() -> Case:
    a, b, merged = tally_case(Summary)
    assert isinstance(a, Summary) and isinstance(b, Summary) and isinstance(merged, Summary)
    a.facts, b.facts, merged.facts = facts_case()
    return a, b, merged


CASES: dict[type[Merges], Callable[[], Case]] = {
    Streams: streams_case,
    Ledger: ledger_case,
    Group: group_case,
    Groups: groups_case,
    Timeline: timeline_case,
    Tally: lambda: tally_case(Tally),
    Summary: summary_case,
    RunFacts: facts_case,
}
MERGING = list(CASES)


def test_every_class_that_merges_has_a_case_here() -> None:
    classes = every_tether_class()
    merging = {c for c in classes if issubclass(c, Merges) and c is not Merges}
    assert merging == set(CASES), "a class that merges: give it a case in CASES"
    # Nothing else in tether merges by a method of its own but the few that must.
    own = {c for c in classes if callable(getattr(c, "merge", None)) and not issubclass(c, Merges)}
    assert own == OWN_MERGE


@pytest.mark.parametrize("cls", MERGING, ids=[c.__name__ for c in MERGING])
def test_every_field_has_a_rule(cls: type[Merges]) -> None:
    planned = {name for name, _ in plan(cls)}
    live = {f.name for f in dataclasses.fields(cls) if f.metadata == LIVE}
    assert planned | live == {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", MERGING, ids=[c.__name__ for c in MERGING])
def test_each_field_merges_as_its_rule_says(cls: type[Merges]) -> None:
    a, b, merged = CASES[cls]()
    default = cls()
    for name, _ in plan(cls):
        # Every merged field of the share merged in is set, so that a rule dropping it shows.
        assert getattr(b, name) != getattr(default, name), f"{cls.__name__}.{name} unset"
    a.merge(b)
    for f in dataclasses.fields(cls):
        assert getattr(a, f.name) == getattr(merged, f.name), f"{cls.__name__}.{f.name}"


@pytest.mark.parametrize("cls", MERGING, ids=[c.__name__ for c in MERGING])
def test_a_new_field_without_a_rule_fails_the_merge(cls: type[Merges]) -> None:
    # A float has no rule by its type (a sum, a peak, a fraction?): it must name one.
    grown = dataclasses.make_dataclass(
        f"Grown{cls.__name__}", [("started_at", float, 0.0)], bases=(cls,), slots=True
    )
    with pytest.raises(TypeError) as raised:
        grown().merge(grown())
    message = str(raised.value)
    assert message.startswith(f"Grown{cls.__name__}.started_at: no rule merges")
    assert "metadata=tether.merging.by(rule)" in message and "tether.merging.LIVE" in message


def test_a_new_field_with_its_rule_named_merges() -> None:
    grown = dataclasses.make_dataclass(
        "GrownLedger", [("slowest_s", float, dataclasses.field(default=0.0, metadata=by(max)))],
        bases=(Ledger,), slots=True,
    )  # fmt: skip
    a, b = grown(slowest_s=2.0, opened=1), grown(slowest_s=3.0, opened=2)
    a.merge(b)
    assert (a.slowest_s, a.opened) == (3.0, 3)


def test_a_fact_takes_no_rule_from_its_type() -> None:
    # An int fact need not add up (a start time, a port): each fact names its own rule.
    grown = dataclasses.make_dataclass(
        "GrownFacts", [("port", int, 0)], bases=(RunFacts,), slots=True
    )
    with pytest.raises(TypeError, match=r"GrownFacts\.port: no rule merges it"):
        grown().merge(grown())


def test_a_class_that_merges_is_a_dataclass() -> None:
    class Loose(Merges):
        __slots__ = ("n",)

    with pytest.raises(TypeError, match="Loose merges field by field: make it a dataclass"):
        Loose().merge(Loose())


def test_an_absent_optional_share_adds_nothing_and_the_first_starts_afresh() -> None:
    a, b = Tally(), Tally(service=hist(0.001))
    a.merge(b)
    assert a.service == hist(0.001) and a.service is not b.service
    a.merge(Tally())  # a share without one
    assert a.service == hist(0.001)


def test_another_processes_groups_are_admitted_as_its_records_would_be() -> None:
    """Past MAX_GROUPS, a group the other share had and this one had not is counted in
    (other), as its requests would have been in one process."""
    a, b = Groups(), Groups()
    for i in range(MAX_GROUPS):
        a.get(f"a{i}").requests += 1
    b.get("a0").requests += 1
    b.get("new").requests += 2
    a.merge(b)
    assert len(a.by_key) == MAX_GROUPS + 1
    assert (a.by_key["a0"].requests, a.by_key[OTHER].requests) == (2, 2)
    assert "new" not in a.by_key
