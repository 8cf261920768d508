"""The run over time: a point a second whose counts add up to the run's, bounded in length."""

from __future__ import annotations

import itertools
from collections import Counter

import tether
from servers import NginxServer
from tether.metrics.timeline import MAX_POINTS, Point, Timeline
from tether.model import Expect, Record


def test_a_runs_points_add_up(nginx: NginxServer) -> None:
    records = [Record("GET", "/", expect=Expect(status=(201,)))]  # every response a mismatch
    summary = tether.run(records, target=nginx.url, concurrency=2, requests=10**9, duration=2.5)
    points = summary.to_dict()["timeline"]
    # A point each second (the ticker never fires early; a busy machine may make it late, so
    # the number of whole seconds is not exact), then the last stretch up to the end.
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(points[:-1])]
    assert 2 <= len(points) <= 3 and all(gap >= 0.99 for gap in gaps)
    assert points[0]["t"] >= 0.99 and abs(points[-1]["t"] - summary.duration) < 0.05
    assert sum(p["requests"] for p in points) == summary.requests
    assert sum(p["mismatches"] for p in points) == summary.mismatches == summary.requests
    assert sum(p["status"]["200"] for p in points) == summary.requests
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert all(p["open"] == 2 and p["p99_ms"] and p["p99_ms"] >= p["p50_ms"] for p in points[:-1])


def point(t: float, requests: int, p99: float) -> Point:
    return Point(t, 1.0, requests, status=Counter({200: requests}), p50_ms=1.0, p99_ms=p99)


def test_a_long_run_keeps_a_bounded_timeline() -> None:
    timeline = Timeline()
    for i in range(5 * MAX_POINTS):
        timeline.add(point(i + 1.0, 10, float(i % 7)))
    points = timeline.to_list()
    assert len(points) <= MAX_POINTS
    assert sum(p["requests"] for p in points) == 50 * MAX_POINTS
    assert max(p["p99_ms"] for p in points) == 6.0  # a merged stretch keeps its worst p99


def test_processes_timelines_add_second_by_second() -> None:
    a, b = Timeline(), Timeline()
    for t in (1.0, 2.0, 3.0):
        a.add(point(t, 10, 1.0))
    for t in (1.0, 2.0):
        b.add(point(t, 5, 3.0))
    a.merge(b)
    assert [(p["requests"], p["rps"], p["p99_ms"]) for p in a.to_list()] == [
        (15, 15.0, 3.0),
        (15, 15.0, 3.0),
        (10, 10.0, 1.0),
    ]


def test_the_runs_last_sliver_is_no_point_of_its_own() -> None:
    """The last sample comes a moment after the last tick: alone it was a point of a few
    milliseconds and next to no requests, drawn as a drop to 0 req/s at the end of the run."""
    timeline = Timeline()
    timeline.add(point(1.0, 2000, 1.0))
    timeline.add(Point(1.002, 0.002, 0, status=Counter(), p50_ms=None, p99_ms=None))
    (only,) = timeline.to_list()
    assert only["t"] == 1.002 and only["requests"] == 2000 and only["rps"] > 1990
    timeline.add(point(2.002, 1000, 1.0))  # a whole second is a point of its own
    assert [p["requests"] for p in timeline.to_list()] == [2000, 1000]
