"""The log-linear histogram: layout, exact statistics, percentiles, merge, serialisation."""

from __future__ import annotations

import json
import pickle
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.metrics.histogram import (
    BUCKET_COUNT,
    MAX_VALUE_US,
    SUB_BUCKETS,
    Histogram,
    bucket_bounds,
    bucket_index,
    percentile_rank,
)

values_us = st.integers(min_value=0, max_value=MAX_VALUE_US)
value_lists = st.lists(values_us, min_size=1, max_size=300)
quantiles = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


LAYOUT = {"sub_buckets": SUB_BUCKETS, "max_value_us": MAX_VALUE_US}


def hist_of(values: list[int]) -> Histogram:
    h = Histogram()
    for v in values:
        h.record(v)
    return h


def exact_percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[percentile_rank(q, len(ordered)) - 1]


def assert_close(got: int, exact: int) -> None:
    """Within the bucket resolution: never below the exact value, above it by <= 1/1024."""
    assert exact <= got <= exact + exact / 1024, (got, exact)


# --- layout -------------------------------------------------------------------------------


def test_layout_is_contiguous_and_matches_the_formula() -> None:
    prev_high = -1
    for index in range(BUCKET_COUNT):
        low, high = bucket_bounds(index)
        assert low == prev_high + 1
        assert bucket_index(low) == index == bucket_index(high)
        prev_high = high
    assert bucket_bounds(BUCKET_COUNT - 1)[0] <= MAX_VALUE_US <= prev_high


@pytest.mark.parametrize("v", [0, 1, 2, 1000, 2047])
def test_small_values_have_their_own_bucket(v: int) -> None:
    assert bucket_index(v) == v
    assert bucket_bounds(v) == (v, v)


@given(st.integers(min_value=SUB_BUCKETS, max_value=MAX_VALUE_US))
def test_index_formula_and_bucket_width(v: int) -> None:
    shift = v.bit_length() - 11
    assert bucket_index(v) == 2048 + (shift - 1) * 1024 + ((v >> shift) - 1024)
    low, high = bucket_bounds(bucket_index(v))
    assert low <= v <= high
    assert high - low + 1 == 1 << shift
    assert (high - low) <= low / 1024


def test_percentile_rank() -> None:
    assert percentile_rank(0, 10) == 1
    assert percentile_rank(100, 10) == 10
    assert percentile_rank(50, 10) == 5
    assert percentile_rank(51, 10) == 6
    assert percentile_rank(57, 100) == 57  # 0.57 * 100 is 56.99999999999999 in floats
    assert percentile_rank(99.9, 1000) == 999
    assert percentile_rank(50, 0) == 0


# --- exact statistics ---------------------------------------------------------------------


def test_empty() -> None:
    h = Histogram()
    assert (h.count, h.min, h.max, h.total, h.mean, h.clamped) == (0, 0, 0, 0, 0.0, 0)
    assert h.percentile(50) == 0
    assert h == Histogram()


@given(value_lists)
def test_min_max_total_mean_are_exact(values: list[int]) -> None:
    h = hist_of(values)
    assert h.count == len(values)
    assert h.min == min(values)
    assert h.max == max(values)
    assert h.total == sum(values)
    assert h.mean == sum(values) / len(values)


def test_clamping() -> None:
    h = Histogram()
    h.record(-5)
    h.record(MAX_VALUE_US + 1)
    h.record(10 * MAX_VALUE_US)
    h.record(MAX_VALUE_US)
    assert h.count == 4
    assert h.clamped == 2  # only the values above the max; MAX_VALUE_US itself fits
    assert h.min == 0
    assert h.max == MAX_VALUE_US
    assert h.total == 3 * MAX_VALUE_US
    assert h.percentile(100) == MAX_VALUE_US
    assert h.percentile(0) == 0
    top = h.to_dict()["buckets"][-1]
    assert top == [BUCKET_COUNT - 1, 3]


# --- percentiles --------------------------------------------------------------------------


@settings(max_examples=200)
@given(value_lists, quantiles)
def test_percentile_within_resolution(values: list[int], q: float) -> None:
    h = hist_of(values)
    assert_close(h.percentile(q), exact_percentile(values, q))


@given(value_lists)
def test_p0_is_min_and_p100_is_max(values: list[int]) -> None:
    h = hist_of(values)
    assert h.percentile(0) == min(values)
    assert h.percentile(100) == max(values)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_of_seeded_latency_like_data(seed: int) -> None:
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(8, 1.5)) for _ in range(20_000)]
    values += [rng.randrange(0, 3000) for _ in range(2_000)]
    h = hist_of(values)
    for q in (0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100):
        assert_close(h.percentile(q), exact_percentile(values, q))


def test_small_values_are_exact() -> None:
    values = list(range(2048)) * 2
    h = hist_of(values)
    for q in (1, 33.3, 50, 99):
        assert h.percentile(q) == exact_percentile(values, q)


# --- merge and equality -------------------------------------------------------------------


@given(st.lists(values_us, max_size=200), st.lists(values_us, max_size=200))
def test_merge_equals_histogram_of_union(a: list[int], b: list[int]) -> None:
    ha, hb = hist_of(a), hist_of(b)
    ha.merge(hb)
    assert ha == hist_of(a + b)
    assert hb == hist_of(b)  # the other side is untouched


def test_merge_seeded_many_parts() -> None:
    rng = random.Random(42)
    parts = [[rng.randrange(0, 10**8) for _ in range(rng.randrange(0, 500))] for _ in range(8)]
    total = Histogram()
    for part in parts:
        total.merge(hist_of(part))
    union = [v for part in parts for v in part]
    assert total == hist_of(union)
    assert total.percentile(50) == hist_of(union).percentile(50)


def test_equality_sees_counts_and_stats() -> None:
    assert hist_of([1, 2, 3]) == hist_of([3, 2, 1])
    assert hist_of([1, 2, 3]) != hist_of([1, 2, 4])
    # same bucket, different exact sums
    assert hist_of([2048]) != hist_of([2049])
    assert hist_of([1]) != "not a histogram"


def test_copy_is_independent() -> None:
    h = hist_of([5, 6])
    c = h.copy()
    c.record(7)
    assert h == hist_of([5, 6])
    assert c == hist_of([5, 6, 7])


# --- serialisation ------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=-10, max_value=2 * MAX_VALUE_US), max_size=200))
def test_dict_round_trip(values: list[int]) -> None:
    h = hist_of(values)
    data = json.loads(json.dumps(h.to_dict()))
    back = Histogram.from_dict(data)
    assert back == h
    assert back.clamped == h.clamped


def test_dict_is_sparse() -> None:
    data = hist_of([1, 1, 5000, 10**9]).to_dict()
    assert data["buckets"] == [[1, 2], [bucket_index(5000), 1], [bucket_index(10**9), 1]]


@pytest.mark.parametrize(
    "change",
    [
        {"count": 5},
        {"buckets": [[BUCKET_COUNT, 1]]},
        {"buckets": [[3, 0]]},
        {"min": 2},
        {"layout": {"sub_buckets": 4096, "max_value_us": MAX_VALUE_US}},
        {"total": None},
    ],
)
def test_from_dict_rejects_inconsistent(change: dict[str, object]) -> None:
    data = hist_of([1, 3]).to_dict() | change
    with pytest.raises(ValueError):
        Histogram.from_dict(data)


@given(st.lists(st.integers(min_value=-5, max_value=2 * MAX_VALUE_US), max_size=300))
def test_record_many_equals_recording_each(values: list[int]) -> None:
    one_by_one, batched = Histogram(), Histogram()
    for v in values:
        one_by_one.record(v)
    batched.record_many(values)
    assert batched == one_by_one


def test_record_many_at_every_bucket_edge() -> None:
    edges = [v for shift in range(1, 22) for v in ((2048 << shift) - 1, 2048 << shift)]
    edges += [0, 1, 2047, 2048, MAX_VALUE_US - 1, MAX_VALUE_US]
    one_by_one, batched = Histogram(), Histogram()
    for v in edges:
        one_by_one.record(v)
    batched.record_many(edges)
    assert batched == one_by_one


@pytest.mark.parametrize(
    "buckets",
    [
        [[1.0, 1], [3, 1]],  # an index that is not an integer
        [[1, 1, 0], [3, 1]],  # not a pair
        [[1], [3, 1]],
        None,
    ],
)
def test_from_dict_rejects_buckets_that_are_not_integer_pairs(buckets: object) -> None:
    data = hist_of([1, 3]).to_dict() | {"buckets": buckets}
    with pytest.raises(ValueError):
        Histogram.from_dict(data)


# --- percentiles from the cached running totals ---------------------------------------------


def walked_percentile(values: list[int], q: float) -> int:
    """Today's rule from the values themselves: the highest value of the bucket holding the
    value of rank percentile_rank, clamped to [min, max]; q <= 0 is the min, empty is 0."""
    if not values:
        return 0
    if q <= 0:
        return min(values)
    ranked = sorted(min(max(v, 0), MAX_VALUE_US) for v in values)
    high = bucket_bounds(bucket_index(ranked[percentile_rank(q, len(ranked)) - 1]))[1]
    return min(max(high, ranked[0]), ranked[-1])


@settings(max_examples=200)
@given(st.lists(values_us, max_size=300), st.lists(quantiles, min_size=1, max_size=12))
def test_percentile_is_the_high_end_of_the_ranked_values_bucket(
    values: list[int], qs: list[float]
) -> None:
    h = hist_of(values)
    for q in [*qs, 0.0, -1.0, 100.0, 150.0]:  # several questions of one state
        assert h.percentile(q) == walked_percentile(values, q), q


# One change to a histogram: (kind, values). "absorb" and "merge" add a histogram of the values.
changes = st.tuples(
    st.sampled_from(["record", "record_many", "merge", "absorb"]),
    st.lists(st.integers(min_value=-5, max_value=2 * MAX_VALUE_US), max_size=30),
)


@settings(max_examples=150)
@given(st.lists(changes, max_size=8), quantiles)
def test_every_change_is_seen_by_the_next_percentile(
    steps: list[tuple[str, list[int]]], q: float
) -> None:
    h, seen = Histogram(), []
    for kind, values in steps:
        h.percentile(q)  # works the running totals out for the state before the change
        if kind == "record":
            for v in values:
                h.record(v)
        elif kind == "record_many":
            h.record_many(values)
        elif kind == "merge":
            h.merge(hist_of(values))
        else:
            h.absorb(hist_of(values).to_dict())
        seen += values
        fresh = hist_of(seen)
        assert h == fresh
        assert [h.percentile(x) for x in (q, 50, 99, 100)] == [
            fresh.percentile(x) for x in (q, 50, 99, 100)
        ]
        assert h.to_dict() == fresh.to_dict()


def test_pickled_histogram_is_independent_and_keeps_counting() -> None:
    # A run's shares come back from their processes pickled; the counters must come with
    # them, and not be shared with the original.
    h = hist_of([5, 5000, 10**7])
    assert h.percentile(50) == 5000 + 3  # the high end of 5000's bucket (width 4)
    back = pickle.loads(pickle.dumps(h))
    assert back == h
    back.record(10**8)
    assert back.percentile(100) == 10**8
    assert back != h and h == hist_of([5, 5000, 10**7])


# --- absorb -------------------------------------------------------------------------------

# Values from the whole range, and small ones often enough that buckets hold several.
some_values = st.lists(
    st.one_of(
        st.integers(min_value=-10, max_value=2 * MAX_VALUE_US),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=60,
)


@st.composite
def values_and_parts(draw: st.DrawFn) -> tuple[list[int], dict[str, Any]]:
    """Some values, and their histogram as a to_dict-shaped mapping: shuffled, with buckets'
    counts split over repeated entries (which add up), the layout sometimes left out."""
    values = draw(some_values)
    data = hist_of(values).to_dict()
    buckets: list[list[int]] = []
    for index, n in data["buckets"]:
        first = draw(st.integers(min_value=1, max_value=n))
        buckets += [[index, first]] + ([[index, n - first]] if n > first else [])
    data["buckets"] = draw(st.permutations(buckets))
    if draw(st.booleans()):
        del data["layout"]
    return values, data


@settings(max_examples=200)
@given(some_values, values_and_parts(), st.booleans())
def test_absorb_is_merge_of_from_dict(
    base: list[int], values_parts: tuple[list[int], dict[str, Any]], as_array: bool
) -> None:
    values, parts = values_parts
    by_merge, by_absorb = hist_of(base), hist_of(base)
    by_absorb.percentile(50)  # a state asked of before: absorb must make it stale
    by_merge.merge(Histogram.from_dict({"layout": LAYOUT} | parts))
    given = parts | {"buckets": np.array(parts["buckets"], dtype=np.int64).reshape(-1, 2)}
    by_absorb.absorb(given if as_array else parts)
    assert by_absorb == by_merge
    # and both are right, not merely alike (they share the reading of the dict)
    assert by_absorb == hist_of(base + values)
    assert (by_absorb.total, by_absorb.clamped) == (by_merge.total, by_merge.clamped)
    for q in (0, 50, 90, 99, 99.9, 100):
        assert by_absorb.percentile(q) == by_merge.percentile(q)


EMPTY_PARTS = {"count": 0, "total": 0, "clamped": 0, "min": 0, "max": 0, "buckets": []}


@pytest.mark.parametrize("base", [[], [7, 3000, 10**9]])
def test_absorb_of_nothing_changes_nothing(base: list[int]) -> None:
    h = hist_of(base)
    by_merge = hist_of(base)
    by_merge.merge(Histogram.from_dict({"layout": LAYOUT} | EMPTY_PARTS))
    h.absorb(EMPTY_PARTS)
    assert h == by_merge == hist_of(base)
    assert (h.count, h.total, h.clamped) == (len(base), sum(base), 0)


@pytest.mark.parametrize(
    "change",
    [
        {"count": 5},
        {"buckets": [[BUCKET_COUNT, 1], [3, 1]]},
        {"buckets": [[-1, 1], [3, 1]]},
        {"buckets": [[1, 0], [3, 2]]},
        {"buckets": [[1.0, 1], [3, 1]]},
        {"buckets": [[1], [3, 1]]},
        {"min": 2},
        {"max": MAX_VALUE_US + 1},
        {"layout": {"sub_buckets": 4096, "max_value_us": MAX_VALUE_US}},
        {"total": None},
    ],
)
def test_absorb_rejects_what_from_dict_rejects_and_changes_nothing(
    change: dict[str, object],
) -> None:
    parts = hist_of([1, 3]).to_dict() | change
    with pytest.raises(ValueError):
        Histogram.from_dict(parts)
    h = hist_of([10, 20])
    h.percentile(50)
    with pytest.raises(ValueError):
        h.absorb(parts)
    assert h == hist_of([10, 20])
    assert h.percentile(50) == 10
