"""The tally: ``add_counted`` counts what a compiled path counted exactly as ``add`` counts
each of those responses; a merge takes every
field by its type, so a new counter merges without anyone listing it and a field of a type
with no rule fails every merge; the run's facts merge by their own rules."""

from __future__ import annotations

import dataclasses
import pickle
from collections import Counter
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.document import ErrorExample
from tether.errors import RecordError
from tether.ledger import CloseReason
from tether.metrics.histogram import Histogram
from tether.metrics.summary import RunFacts, Summary
from tether.metrics.tally import (
    MAX_EXAMPLES,
    OTHERS_TOLD_APART,
    Examples,
    Tally,
    _error_example,
)
from tether.metrics.timeline import Point
from tether.model import Counted, Mismatch, Outcome, Record

RECORD = Record("GET", "/p", line=3)

# A response the compiled path counted itself: what it met was vouched for, so it has no
# error, no mismatch, no retry and no redirect.
vouched = st.tuples(
    st.sampled_from(["GET /p", "GET /q/{id}", "tagged"]),  # group
    st.sampled_from([200, 204, 302, 404, 500]),  # status
    st.integers(0, 2_000_000),  # latency, microseconds
    st.integers(0, 2_000_000),  # service, microseconds
    st.booleans(),  # reused
)


def fresh(open_model: bool, live: bool) -> Summary:
    summary = Summary()
    if open_model:
        summary.service = Histogram()
    if live:
        summary.window = Histogram()  # a run in progress: the timeline's window fills too
    return summary


def counted_as_compiled(responses: list[tuple[str, int, int, int, bool]]) -> Counted:
    """What the compiled path would hand over for ``responses``."""
    slots: dict[str, Histogram] = {}
    service = Histogram()
    for group, _, latency, served, _ in responses:
        slots.setdefault(group, Histogram()).record_many([latency])
        service.record_many([served])
    status = Counter(status for _, status, _, _, _ in responses)
    return {
        "requests": len(responses),
        "reused": sum(reused for *_, reused in responses),
        "status": dict(status),
        "slots": {group: hist.to_dict() for group, hist in slots.items()},  # type: ignore[misc]
        "service": service.to_dict() if responses else None,  # type: ignore[typeddict-item]
    }


@settings(max_examples=60)
@given(st.lists(vouched, max_size=40), st.booleans())
def test_what_the_compiled_path_counted_adds_up_as_each_response_would(
    responses: list[tuple[str, int, int, int, bool]], open_model: bool
) -> None:
    by_add, folded = fresh(open_model, False), fresh(open_model, False)
    for group, status, latency, service, reused in responses:
        outcome = Outcome(
            # (half a microsecond more: the tally truncates seconds to whole microseconds)
            RECORD, status, latency=(latency + 0.5) / 1e6, reused=reused, url="http://h/p",
            service=(service + 0.5) / 1e6, group=group,
        )  # fmt: skip
        by_add.add(outcome, [])
    folded.add_counted(counted_as_compiled(responses))
    by_add.flush()
    assert by_add.to_dict() == folded.to_dict()


def share(seed: int) -> Summary:
    """One process's share of a run, with every field of the tally and the facts set."""
    summary = fresh(open_model=True, live=False)
    for i in range(30 + seed):
        outcome = Outcome(
            Record("GET", f"/r/{i}", line=i), 200 + (i % 2) * 102, latency=i / 1000,
            service=i / 2000, reused=i % 3 == 0, retried=i % 5 == 0, redirects=i % 2,
            body_truncated=i % 7 == 0, url=f"http://h/r/{i}", group=f"g{i % 3}",
        )  # fmt: skip
        if i % 4 == 0:
            outcome.error, outcome.error_kind = "refused", "connect"
        summary.add(outcome, [Mismatch("status", "200", "302")] if i % 6 == 1 else [])
    summary.add_counted(counted_as_compiled([("g0", 200, 1000, 1000, True)]))
    summary.add_input_error(RecordError("r.jsonl", seed, "not JSON"))
    summary.late += seed + 1
    summary.ledger.on_open()
    summary.ledger.on_close(CloseReason.SERVER_IDLE)
    summary.timeline.add(Point(1.0, 1.0, requests=30, status=Counter({200: 30}), open=1))
    facts = summary.facts
    facts.target, facts.concurrency, facts.rate_target = "http://h", 2 + seed, 100.0
    facts.peak_inflight, facts.schedule_s, facts.duration = 3 + seed, 1.0 + seed, 1.5 + seed
    facts.interrupted = seed == 1
    facts.lost_workers.append({"worker": f"w{seed}", "error": "gone", "reported": None})
    summary.flush()
    return summary


def test_merged_counts_are_the_shares_sums_and_the_facts_follow_their_rules() -> None:
    a, b = share(0), share(1)
    merged = pickle.loads(pickle.dumps(a))  # as a share comes back from its process
    assert merged == a
    merged.merge(pickle.loads(pickle.dumps(b)))
    for f in dataclasses.fields(Tally):
        mine, theirs, both = getattr(a, f.name), getattr(b, f.name), getattr(merged, f.name)
        if isinstance(both, int | Counter):
            assert both == mine + theirs, f.name
        elif isinstance(both, Histogram):
            assert both.count == mine.count + theirs.count > 0, f.name
    groups = (merged.groups.by_key["g1"], a.groups.by_key["g1"], b.groups.by_key["g1"])
    assert groups[0].requests == groups[1].requests + groups[2].requests
    assert groups[0].latency.count == groups[1].latency.count + groups[2].latency.count
    assert merged.ledger.opened == 2 and len(merged.timeline.points) == 1
    # Both shares saw the same records mismatch: each is listed once, with both counts.
    assert [m["line"] for m in merged.mismatch_examples] == [m["line"] for m in a.mismatch_examples]
    assert [m["count"] for m in merged.mismatch_examples] == [
        m["count"] + n["count"]
        for m, n in zip(a.mismatch_examples, b.mismatch_examples, strict=True)
    ]
    assert len(merged.input_error_examples) == 2
    facts = merged.facts
    assert (facts.target, facts.concurrency, facts.rate_target) == ("http://h", 5, 200.0)
    # Peaks in flight add up to the upper bound; the run lasts as long as its longest share.
    assert (facts.peak_inflight, facts.schedule_s, facts.duration) == (7, 2.0, 2.5)
    assert facts.interrupted is True
    assert [w["worker"] for w in facts.lost_workers] == ["w0", "w1"]
    assert merged.to_dict()["partial"] is True


def test_examples_fill_up_to_their_bound() -> None:
    a, b = Summary(), Summary()
    for summary in (a, b):
        for i in range(MAX_EXAMPLES - 5):
            summary.add_input_error(RecordError("r.jsonl", i, "bad"))
    a.merge(b)
    assert a.input_errors == 2 * (MAX_EXAMPLES - 5)
    assert len(a.input_error_examples) == MAX_EXAMPLES


@dataclasses.dataclass(slots=True)
class WithANewCount(Summary):
    """A summary someone gave a new counter, and nothing else."""

    new_count: int = 0
    new_kinds: Counter[str] = dataclasses.field(default_factory=Counter)
    new_latency: Histogram | None = None


def test_a_new_counter_merges_without_being_listed() -> None:
    a, b = WithANewCount(new_count=2), WithANewCount(new_count=3)
    b.new_kinds["x"] += 1
    b.new_latency = Histogram()
    b.new_latency.record(100)
    a.merge(b)
    assert (a.new_count, a.new_kinds, a.requests) == (5, Counter({"x": 1}), 0)
    assert a.new_latency is not None and a.new_latency.count == 1
    assert a.new_latency is not b.new_latency  # the first one given starts afresh


@dataclasses.dataclass(slots=True)
class WithAFraction(Summary):
    fraction: float = 0.0  # no rule says how two shares' fractions combine


@dataclasses.dataclass(slots=True)
class WithAFlag(Tally):
    flag: bool = False  # nor two flags: a bool does not add up


def test_a_field_of_a_type_with_no_rule_fails_the_merge() -> None:
    with pytest.raises(TypeError, match=r"WithAFraction\.fraction: no rule merges"):
        WithAFraction().merge(WithAFraction())
    with pytest.raises(TypeError, match=r"WithAFlag\.flag: no rule merges"):
        WithAFlag().merge(WithAFlag())


@dataclasses.dataclass(slots=True)
class WithANewFact(RunFacts):
    started_at: float = 0.0  # a fact, and no rule for it


def test_a_fact_with_no_rule_fails_the_merge() -> None:
    with pytest.raises(TypeError, match=r"WithANewFact\.started_at: no rule merges it"):
        WithANewFact().merge(WithANewFact())


def mismatching(line: int) -> tuple[Outcome, list[Mismatch]]:
    outcome = Outcome(Record("GET", f"/m/{line}", line=line), 200, url=f"http://h/m/{line}")
    return outcome, [Mismatch("status", "201", "200")]


def test_a_mismatch_repeated_is_listed_once_with_its_count() -> None:
    summary = Summary()
    for _ in range(7):
        for line in (1, 2, 3):
            summary.add(*mismatching(line))
    doc = summary.to_dict()
    assert [(m["line"], m["count"]) for m in doc["mismatch_examples"]] == [(1, 7), (2, 7), (3, 7)]
    assert doc["mismatch_examples_omitted"] == {"distinct": 0, "count": 0, "exact": True}


def test_past_the_listed_ones_the_distinct_others_are_counted() -> None:
    summary = Summary()
    for line in range(MAX_EXAMPLES + 5):
        for _ in range(2):
            summary.add(*mismatching(line))
    doc = summary.to_dict()
    assert len(doc["mismatch_examples"]) == MAX_EXAMPLES
    assert all(m["count"] == 2 for m in doc["mismatch_examples"])
    assert doc["mismatch_examples_omitted"] == {"distinct": 5, "count": 10, "exact": True}


def test_a_share_that_did_not_list_an_example_still_adds_its_count() -> None:
    """One share listed lines 0-19 and counted 20-29 apart; the other saw 20-29 first. Every
    listed example's count after the merge is the run's, whichever share listed it."""
    first, second = Summary(), Summary()
    for line in range(30):
        first.add(*mismatching(line))
    for line in [*range(20, 30), *range(20)]:
        second.add(*mismatching(line))
    first.merge(pickle.loads(pickle.dumps(second)))  # as a share comes back
    doc = first.to_dict()
    assert [m["count"] for m in doc["mismatch_examples"]] == [2] * MAX_EXAMPLES
    assert doc["mismatch_examples_omitted"] == {"distinct": 10, "count": 20, "exact": True}
    # The other way round, the listed ones are second's first twenty: lines 20-29 and 0-9.
    again = pickle.loads(pickle.dumps(second))
    for line in range(30):
        again.add(*mismatching(line))
    assert [m["count"] for m in again.mismatch_examples] == [2] * MAX_EXAMPLES


def test_the_others_told_apart_are_bounded() -> None:
    examples: Examples[ErrorExample] = Examples()
    for i in range(MAX_EXAMPLES + OTHERS_TOLD_APART + 3):
        outcome = Outcome(Record("GET", "/e", line=i), 0, url="http://h/e", error="refused")
        examples.add((i,), partial(_error_example, outcome))
    assert len(examples) == MAX_EXAMPLES
    # Three more than could be told apart: how many times is still exact, the others not.
    assert examples.omitted() == {
        "distinct": OTHERS_TOLD_APART,
        "count": OTHERS_TOLD_APART + 3,
        "exact": False,
    }
