"""The open model's schedule: pure arithmetic."""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from servers import NginxServer
from tether.cli import main
from tether.errors import InputError
from tether.run.pacer import Pacer, parse_pace, parse_rate


def scheduled(pacer: Pacer, cap: int = 10_000_000) -> int:
    n = 0
    while n < cap and pacer.due(n) is not None:
        n += 1
    return n


def test_constant_rate_spaces_requests_evenly() -> None:
    pacer = Pacer(1000, 1000, 2.0)
    assert [pacer.due(i) for i in range(3)] == [0.0, 0.001, 0.002]
    assert scheduled(pacer) == 2000
    assert pacer.mean_rate == 1000


def test_unbounded_rate_never_ends_by_itself() -> None:
    assert Pacer(10, 10).due(10**9) == 10**8


def dues(pacer: Pacer) -> list[float]:
    times: list[float] = []
    while (at := pacer.due(len(times))) is not None:
        times.append(at)
    return times


@settings(deadline=None)
@given(
    st.floats(min_value=1, max_value=5000),
    st.floats(min_value=1, max_value=5000),
    st.floats(min_value=0.1, max_value=3),
)
@example(5000.0, 4999.999999999999, 1.0)  # nearly flat: the old root lost every digit here
def test_ramp_sends_by_each_moment_the_area_under_the_rate(
    start: float, end: float, duration: float
) -> None:
    # Not only in all: the same total at the mean rate would be a different schedule.
    times = dues(Pacer(start, end, duration))
    assert times == sorted(times)
    for part in (0.25, 0.5, 0.75, 1.0):
        t = part * duration
        area = start * t + (end - start) * t * t / (2 * duration)
        assert abs(bisect.bisect_left(times, t) - area) <= 1.0


def test_ramp_rate_rises() -> None:
    pacer = Pacer(100, 300, 1.0)
    first_half = sum(1 for i in range(400) if (d := pacer.due(i)) is not None and d < 0.5)
    assert first_half == pytest.approx(75, abs=1)  # the area under 100 -> 200 over 0.5 s
    assert scheduled(pacer) == 200


@pytest.mark.parametrize(
    ("text", "duration", "message"),
    [
        ("fast", 1.0, "requests per second"),
        ("0", 1.0, "positive"),
        ("1:2:3", 1.0, "one or two"),
        ("100:200", None, "needs --duration"),
    ],
)
def test_bad_rates_are_input_errors(text: str, duration: float | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_rate(text, duration)


def test_parse_rate() -> None:
    assert parse_rate("2000", None) == Pacer(2000, 2000, None)
    assert parse_rate("100:300", 2.0) == Pacer(100, 300, 2.0)


# --- the records' own times ----------------------------------------------------------------------


def test_original_pace_follows_recorded_offsets() -> None:
    pace = parse_pace("originalx2", None)
    assert [pace.due(i, offset) for i, offset in enumerate([0.0, 1.0, 3.0])] == [0.0, 0.5, 1.5]
    assert parse_pace("original", 1.0).due(5, 1.0) is None  # past the duration
    assert parse_pace("originalx0.5", None).due(0, 1.0) == 2.0


@pytest.mark.parametrize("bad", ["orig", "originalx0", "originalx-1", "x2", "original2"])
def test_bad_paces(bad: str) -> None:
    with pytest.raises(InputError, match="--pace"):
        parse_pace(bad, None)


def test_a_run_keeps_the_recorded_schedule(nginx: NginxServer, tmp_path: Path) -> None:
    records = tmp_path / "timed.jsonl"
    start = 1_800_000_000.0
    lines = [{"url": "/", "at": start + t} for t in (0.0, 0.2, 0.4, 0.6)]
    lines.insert(2, {"url": "/"})  # no time: goes right after the one before it
    records.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "s.json"
    args = ["run", str(records), "-t", nginx.url, "-q", "--json", str(out)]
    assert main([*args, "--pace", "originalx2"]) == 0
    doc = json.loads(out.read_text())
    assert doc["requests"] == 5
    assert doc["schedule_s"] == pytest.approx(0.3)
    assert doc["duration_s"] >= 0.3  # the last one cannot go out before it is due
    assert main([*args, "--pace", "original", "--rate", "10"]) == 2
