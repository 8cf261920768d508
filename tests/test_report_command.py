"""tether report: any report rebuilt from results files, streaming; several files merge."""

from __future__ import annotations

import dataclasses
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import junitparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers import NginxServer
from tether.cli import main
from tether.commands.report import JUDGE_FLAGS
from tether.gates import Gates
from tether.ledger import CloseReason
from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome, Record
from tether.results.lines import end_line, filled, outcome_line, outcome_of, plain_text
from tether.results.rebuild import rebuild
from tether.results.writer import ResultsWriter

LINES = [
    {"url": "/", "expect": {"status": 200}},
    {"url": "/r/1", "expect": {"headers": {"Location": "https://example.org/wrong"}}},
]


def results_of(nginx: NginxServer, tmp_path: Path, name: str, n: int = 300) -> tuple[Path, Any]:
    records = tmp_path / "r.jsonl"
    records.write_text("".join(json.dumps(line) + "\n" for line in LINES))
    results, summary = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json"
    args = ["run", str(records), "-t", nginx.url, "-n", str(n), "-c", "2", "-q"]
    assert main([*args, "--results", str(results), "--json", str(summary)]) == 1
    return results, json.loads(summary.read_text())


SAME = ("requests", "ok", "mismatches", "errors", "status", "connections", "groups", "target")


def test_the_rebuilt_summary_is_the_runs(nginx: NginxServer, tmp_path: Path) -> None:
    results, original = results_of(nginx, tmp_path, "a")
    out = tmp_path / "again.json"
    assert main(["report", str(results), "--format", "json", "-o", str(out)]) == 1
    again = json.loads(out.read_text())
    for key in SAME:
        mine = again[key] if key != "groups" else [{**g, "latency_ms": 0} for g in again[key]]
        theirs = (
            original[key] if key != "groups" else [{**g, "latency_ms": 0} for g in original[key]]
        )
        assert mine == theirs, key
    # Results lines keep latency to the microsecond: a percentile may land a bucket apart.
    assert again["latency_ms"]["p50"] == pytest.approx(original["latency_ms"]["p50"], abs=0.002)
    assert again["mismatch_examples"] == original["mismatch_examples"]
    assert sum(p["requests"] for p in again["timeline"]) == 300


def test_files_merge(nginx: NginxServer, tmp_path: Path) -> None:
    a, _ = results_of(nginx, tmp_path, "a")
    b, _ = results_of(nginx, tmp_path, "b", n=100)
    merged = rebuild([str(a), str(b)]).to_dict()
    assert merged["requests"] == 400 and merged["connections"]["opened"] == 4


@pytest.mark.parametrize("fmt", ["text", "junit", "html", "markdown"])
def test_every_format(nginx: NginxServer, tmp_path: Path, fmt: str) -> None:
    results, _ = results_of(nginx, tmp_path, "a")
    out = tmp_path / f"report.{fmt}"
    assert main(["report", str(results), "--format", fmt, "-o", str(out)]) == 1
    text = out.read_text()
    if fmt == "junit":
        cases = [case.name for suite in junitparser.JUnitXml.fromfile(str(out)) for case in suite]
        assert sorted(cases) == ["GET /", "GET /r/{id}"]
    else:
        assert "150" in text and "header location" in text


def test_a_threshold_judges_the_results(nginx: NginxServer, tmp_path: Path) -> None:
    results, _ = results_of(nginx, tmp_path, "a")
    out = tmp_path / "r.json"
    args = ["report", str(results), "--format", "json", "-o", str(out)]
    assert main([*args, "--threshold", "mismatch_rate<10%"]) == 3


# A gate and a threshold that fail beside one of each that holds; then all of them holding.
JUDGED_BY = {
    "failing": (3, ["--max-connections", "1", "--min-reuse", "0.5"], ["reuse>99.9%", "p99<10s"]),
    "holding": (0, ["--max-connections", "2", "--min-reuse", "0.5"], ["error_rate<1%"]),
}


@pytest.mark.parametrize("case", JUDGED_BY)
def test_run_and_report_judge_the_same_results_alike(
    nginx: NginxServer, tmp_path: Path, case: str
) -> None:
    status, gates, thresholds = JUDGED_BY[case]
    judged_by = [*gates, *(word for t in thresholds for word in ("--threshold", t))]
    records, results = tmp_path / "r.jsonl", tmp_path / "out.jsonl"
    records.write_text(json.dumps({"url": "/", "expect": {"status": 200}}) + "\n")
    ran, reported = tmp_path / "ran.json", tmp_path / "reported.json"
    args = ["run", str(records), "-t", nginx.url, "-n", "200", "-c", "2", "-q"]
    assert main([*args, "--results", str(results), "--json", str(ran), *judged_by]) == status
    again = ["report", str(results), "--format", "json", "-o", str(reported)]
    assert main([*again, *judged_by]) == status

    def verdict(path: Path) -> tuple[list[str], list[tuple[str, bool]]]:
        doc = json.loads(path.read_text())
        return doc["gate_failures"], [(t["threshold"], t["ok"]) for t in doc["thresholds"]]

    assert verdict(reported) == verdict(ran)
    assert len(verdict(ran)[0]) == (2 if status else 0)  # the failing gate and threshold


def test_report_takes_every_gate_run_declares() -> None:
    # The run command's own declarations: every gate there is, and the thresholds.
    gates = [f"--{field.name.replace('_', '-')}" for field in dataclasses.fields(Gates)]
    assert [placed.flag.name for placed in JUDGE_FLAGS] == ["--threshold", *gates]


def test_a_cut_short_file_still_renders(nginx: NginxServer, tmp_path: Path) -> None:
    results, _ = results_of(nginx, tmp_path, "a")
    lines = results.read_text().splitlines()[:-1]  # no closing line: the run was killed
    results.write_text("\n".join(lines) + "\n")
    doc = rebuild([str(results)]).to_dict()
    assert doc["requests"] == 300 and doc["interrupted"] and doc["connections"]["opened"] == 2


def test_memory_stays_bounded(tmp_path: Path) -> None:
    line = {
        "t": 0.0, "line": 1, "method": "GET", "url": "http://h/x", "group": "GET /x",
        "status": 200, "latency_ms": 1.0, "service_ms": 1.0, "conn_id": 1, "reused": True,
        "retried": False, "redirects": 0, "body_size": 6, "body_truncated": False,
        "error": None, "error_kind": None, "mismatches": [],
    }  # fmt: skip
    big = tmp_path / "big.jsonl"
    with big.open("w") as out:
        for i in range(60_000):
            out.write(json.dumps({**line, "t": i / 1000, "latency_ms": (i % 997) / 10}) + "\n")
    tracemalloc.start()
    summary = rebuild([str(big)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert summary.requests == 60_000
    assert peak < 20 * 2**20  # far less than the 60,000 lines would take held at once


def test_bad_results_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 0}\n')
    assert main(["report", str(bad)]) == 2
    assert f"{bad}:1: not a results line" in capsys.readouterr().err


texts = st.text(max_size=30)
mismatch_lists = st.lists(st.builds(Mismatch, texts, texts, texts), max_size=3)


@st.composite
def outcomes(draw: Any, plain: bool = False) -> tuple[Outcome, list[Mismatch]]:
    """An outcome with every field a results line carries drawn, and its mismatches; with
    ``plain``, one of the common kind (no error, no mismatch) that has a line of its own."""
    error = None if plain else draw(st.none() | texts)
    record = Record(draw(st.text(min_size=1, max_size=10)), "/", line=draw(st.integers(0, 10**9)))
    outcome = Outcome(
        record,
        status=draw(st.integers(0, 999)),
        latency=draw(st.floats(0, 1e4)),
        service=draw(st.floats(0, 1e4)),
        conn_id=draw(st.integers(0, 2**31)),
        reused=draw(st.booleans()),
        retried=draw(st.booleans()),
        redirects=draw(st.integers(0, 50)),
        body_size=draw(st.integers(0, 2**40)),
        body_truncated=draw(st.booleans()),
        url=draw(texts),
        # A line with no group is read as grouped by its method (files from before groups).
        group=draw(st.text(min_size=1, max_size=30)),
        error=error,
        error_kind=None if error is None else draw(st.text(min_size=1, max_size=10)),
    )
    mismatches = [] if plain or error is not None else draw(mismatch_lists)
    return outcome, mismatches


@settings(deadline=None)
@given(outcomes(plain=True), st.floats(0, 1e5))
def test_a_plain_line_is_the_same_json(case: tuple[Outcome, list[Mismatch]], t: float) -> None:
    outcome, _ = case
    assert json.loads(plain_text(outcome, t)) == outcome_line(outcome, [], frozenset(), t)


@settings(deadline=None)
@given(outcomes())
def test_every_field_of_a_results_line_reads_back(case: tuple[Outcome, list[Mismatch]]) -> None:
    outcome, mismatches = case
    out = io.StringIO()
    ResultsWriter(out, frozenset())(outcome, mismatches)
    back, back_mismatches = outcome_of(filled(json.loads(out.getvalue())), "r.jsonl")
    assert back_mismatches == mismatches
    assert (back.record.method, back.record.line) == (outcome.record.method, outcome.record.line)
    # Times are written in milliseconds to three places.
    assert back.latency == pytest.approx(outcome.latency, abs=1e-6)
    assert back.service == pytest.approx(outcome.service, abs=1e-6)
    same = ["status", "conn_id", "reused", "retried", "redirects", "body_size"]
    same += ["body_truncated", "url", "group", "error", "error_kind"]
    assert {k: getattr(back, k) for k in same} == {k: getattr(outcome, k) for k in same}


def every_closing_fact() -> Summary:
    """A summary with every figure a closing line carries set, none of them its default."""
    summary = Summary()
    led = summary.ledger
    led.opened, led.peak_open, led.connect_failed, led.retried_stale = 7, 3, 2, 1
    led.closed.update({CloseReason.SERVER_IDLE: 4, CloseReason.UNDRAINED: 1})
    led.carried.update({"http/1.1": 5, "h2": 9})
    h2 = led.h2
    h2.connections, h2.streams, h2.peak, h2.goaway, h2.retried = 2, 9, 4, 1, 1
    h2.reset_by_server.update({"refused_stream": 1})
    h2.reset_by_us.update({"cancel": 2})
    h2.flow_stalls, h2.flow_stall_s, h2.leaked, h2.stalled, h2.unread_bytes = 3, 0.25, 1, 1, 99
    summary.late, summary.input_errors = 5, 1
    summary.input_error_examples = [{"source": "r.jsonl", "line": 3, "error": "bad"}]
    facts = summary.facts
    facts.duration, facts.target, facts.concurrency = 1.5, "http://127.0.0.1:1", 4
    facts.interrupted, facts.signal, facts.rate_target, facts.schedule_s = True, "SIGINT", 50, 1.2
    facts.watch = {"interval_s": 1.0, "sources": [], "leak_verdicts": [], "cross_checks": []}
    summary.flows = {"login": {"completed": 3, "failed": 2, "cut": 1, "steps": ["POST /login"]}}
    return summary


def test_a_closing_line_reads_back_whole() -> None:
    written = end_line(every_closing_fact())
    assert all(value not in (None, 0, False, {}, []) for value in written["end"].values())
    again = Summary()
    again.restore(json.loads(json.dumps(written))["end"])
    assert end_line(again) == written


def test_a_closing_line_that_lacks_a_key_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    end = end_line(every_closing_fact())["end"]
    del end["connections"]["opened"]  # type: ignore[misc]  (the point of the test)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"end": end}) + "\n")
    assert main(["report", str(bad)]) == 2
    assert f"{bad}:1: not a results line: 'opened' missing" in capsys.readouterr().err
