"""The summary as a user reads it, from the real command against servers on 127.0.0.1:
repeated mismatches and errors listed once with a count (text, JSON, HTML, JUnit, markdown,
and a summary rebuilt from results), a closing sentence that says when nothing could connect
and when connections were not reused (and why), a latency histogram under the percentiles,
and figures, headers and URLs that read as they should in a file's 80 columns."""

from __future__ import annotations

import json
import re
import signal
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from helpers import interrupt_run, write_records
from servers import ThreadServer, free_port, keepalive_handler
from tether.cli import main
from tether.metrics.tally import MAX_EXAMPLES


def run_text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, dict[str, Any]]:
    """``tether run ARGV --json -``: the exit status, the text summary as a file gets it (80
    columns, not a terminal) and the document."""
    status = main(["run", *argv, "--json", "-"])
    out, err = capsys.readouterr()
    return status, err, json.loads(out)


def prose(text: str) -> str:
    """The text with its line breaks and runs of spaces as single spaces (prose may wrap)."""
    return " ".join(text.split())


def row(text: str, label: str) -> str:
    """The summary's row of that label."""
    (line,) = [line for line in text.splitlines() if line.startswith(label + " ")]
    return line


def mismatching(count: int) -> list[dict[str, Any]]:
    """Records the keep-alive test server (200 for all) does not satisfy."""
    return [{"url": f"/m/{i}", "expect": {"status": 201}} for i in range(count)]


def records_file(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    return write_records(tmp_path / "r.jsonl", len(records), lambda i: records[i])


# --- nothing could connect ---------------------------------------------------------------


def test_nothing_could_connect_says_to_where_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = records_file(tmp_path, [{"url": f"/{i}"} for i in range(3)])
    port = free_port()  # nothing listens there
    status, text, doc = run_text(capsys, str(records), "-t", f"http://127.0.0.1:{port}", "-n", "9")
    assert status == 1 and doc["errors"] == 9 and doc["connections"]["opened"] == 0
    assert prose(text).endswith(
        f"No connection could be opened to 127.0.0.1:{port} (Connection refused): "
        "9 requests failed."
    )
    # No rate of responses that never came, shown as if it were throughput.
    assert "req/s" not in row(text, "time") and "no response" in row(text, "time")
    # Each record's failure once, with how many times it happened.
    assert [(e["line"], e["count"]) for e in doc["error_examples"]] == [(1, 3), (2, 3), (3, 3)]
    assert text.count("failed: Connection refused") == 3 and text.count("(3 times)") == 3
    # No latency that was never measured, and no "could reuse" for what never connected.
    assert row(text, "latency ms").split() == ["latency", "ms", "-"]
    assert "no connection was opened" in text and "could reuse" not in text


def test_nothing_could_connect_in_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    """-q used to say "p99 0 ms, 3,514 req/s" for requests that got no response, and not
    why they failed."""
    port = free_port()  # nothing listens there
    status = main(["run", f"http://127.0.0.1:{port}/r", "-n", "5", "-q"])
    line = capsys.readouterr().out.strip()
    assert status == 1
    assert line == (
        f"5 requests, 5 errors, 0 connections (0 per connection), no response. "
        f"No connection could be opened to 127.0.0.1:{port} (Connection refused): "
        "5 requests failed."
    )


# --- repeated mismatches, grouped --------------------------------------------------------


def test_repeated_mismatches_are_listed_once_with_a_count_in_every_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = records_file(tmp_path, mismatching(3))
    html, junit, results = tmp_path / "r.html", tmp_path / "r.xml", tmp_path / "out.jsonl"
    with ThreadServer(keepalive_handler()) as server:
        status, text, doc = run_text(
            capsys, str(records), "-t", server.url, "-n", "21",
            "--html", str(html), "--junit", str(junit), "--results", str(results),
        )  # fmt: skip
    assert status == 1 and doc["mismatches"] == 21
    examples = doc["mismatch_examples"]
    assert [(m["line"], m["field"], m["count"]) for m in examples] == [
        (1, "status", 7),
        (2, "status", 7),
        (3, "status", 7),
    ]
    assert doc["mismatch_examples_omitted"] == {"distinct": 0, "count": 0, "exact": True}
    assert text.count("expected  201") == 3 and text.count("(7 times)") == 3
    assert "mismatches: 21 responses, by record and field" in text
    page = html.read_text()
    assert page.count("<td>status</td>") == 3 and page.count('<td class="n">7</td>') == 3
    failures = [f.text or "" for f in ET.parse(junit).getroot().iter("failure")]
    assert sum(t.count("(7 times)") for t in failures) == 3
    # The same document rebuilt from the results file, and as markdown.
    again, markdown = tmp_path / "again.json", tmp_path / "r.md"
    assert main(["report", str(results), "--format", "json", "-o", str(again)]) == 1
    assert json.loads(again.read_text())["mismatch_examples"] == examples
    assert main(["report", str(results), "--format", "markdown", "-o", str(markdown)]) == 1
    rows = [line for line in markdown.read_text().splitlines() if "| GET " in line]
    assert len(rows) == 3 and all("| status | 7 |" in line for line in rows)


def test_distinct_mismatches_past_those_listed_are_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = records_file(tmp_path, mismatching(MAX_EXAMPLES + 5))
    with ThreadServer(keepalive_handler()) as server:
        n = str(2 * (MAX_EXAMPLES + 5))
        status, text, doc = run_text(capsys, str(records), "-t", server.url, "-n", n)
    assert status == 1
    assert len(doc["mismatch_examples"]) == MAX_EXAMPLES
    assert {m["count"] for m in doc["mismatch_examples"]} == {2}
    assert doc["mismatch_examples_omitted"] == {"distinct": 5, "count": 10, "exact": True}
    assert "and 5 other distinct mismatches, 10 times in all" in text


def test_processes_add_their_counts_of_the_same_mismatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two processes send requests 0, 2, 4, ... and 1, 3, 5, ... of three records cycled:
    # each sends every record, seven times.
    records = records_file(tmp_path, mismatching(3))
    with ThreadServer(keepalive_handler()) as server:
        status, _, doc = run_text(
            capsys, str(records), "-t", server.url, "-n", "42", "-c", "2", "-w", "2"
        )
    assert status == 1
    assert sorted((m["line"], m["count"]) for m in doc["mismatch_examples"]) == [
        (1, 14),
        (2, 14),
        (3, 14),
    ]


# --- the closing sentence judges reuse -----------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        (["--drain-limit", "1k"], "20 closed: body over the drain limit or deadline"),
        (["--disable-keep-alives"], "20 closed: keep-alive disabled"),
    ],
    ids=["undrained", "keep-alive-off"],
)
def test_connections_not_reused_are_said_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], why: str
) -> None:
    records = records_file(tmp_path, [{"url": "/", "expect": {"status": 200}}])
    with ThreadServer(keepalive_handler(body=b"x" * 4096)) as server:
        status, text, doc = run_text(capsys, str(records), "-t", server.url, "-n", "20", *flags)
    assert status == 0  # no gate was asked for: the sentence says it, the exit stays 0
    assert doc["connections"]["opened"] == 20
    assert prose(text).endswith(
        "All 20 responses matched. 20 connections carried 20 requests (1 per connection): "
        f"they were not reused ({why})."
    )


@pytest.mark.parametrize(
    ("flags", "carried", "reuse"),
    [
        (["-n", "20"], "1 connection carried 20 requests (20 per connection).", "reused by 19"),
        (["-n", "1"], "1 connection carried 1 request (1 per connection).", "no request could"),
        (["-n", "4", "-c", "4"], "4 connections carried 4 requests (1 per connection).", "no "),
    ],
    ids=["reused", "one-request", "one-request-per-worker"],
)
def test_a_run_that_reused_or_had_nothing_to_reuse_is_not_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], carried: str, reuse: str
) -> None:
    records = records_file(tmp_path, [{"url": "/", "expect": {"status": 200}}])
    with ThreadServer(keepalive_handler()) as server:
        status, text, _ = run_text(capsys, str(records), "-t", server.url, *flags)
    assert status == 0
    assert prose(text).endswith(carried)
    # A run with nothing to reuse says so, not "reused by 0 requests (0.00%)".
    (reused,) = [line.strip() for line in text.splitlines() if "reuse" in line]
    assert reused.startswith(reuse), reused


# --- the latency histogram ---------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_latency_histogram_is_under_the_percentiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workers: str
) -> None:
    records = records_file(tmp_path, [{"url": "/", "expect": {"status": 200}}])
    with ThreadServer(keepalive_handler()) as server:
        args = [str(records), "-t", server.url, "-n", "300", "-c", "2", "-w", workers]
        status, text, doc = run_text(capsys, *args)
    assert status == 0
    rows = doc["latency_histogram"]
    # True counts, merged exactly over processes: every response is in one bucket.
    assert sum(n for _, n in rows) == 300
    assert 2 <= len(rows) <= 10
    uppers = [upper for upper, _ in rows]
    assert uppers == sorted(uppers) and uppers[-1] == doc["latency_ms"]["max"]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("histogram "))
    assert lines[start - 1].lstrip().startswith("max ")  # under the percentiles
    shown = lines[start : start + len(rows)]
    for line, (upper, n) in zip(shown, rows, strict=True):
        assert re.search(rf"≤ +{upper:.3f} ms +{n:,}  ", line), line
    bars = [line.count("■") for line in shown]
    assert max(bars) == 40 and all(b > 0 for b, (_, n) in zip(bars, rows, strict=True) if n)


# --- text polish -------------------------------------------------------------------------


def test_figures_read_as_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = records_file(tmp_path, [{"url": "/", "expect": {"status": 200}}])
    with ThreadServer(keepalive_handler()) as server:
        _, text, _ = run_text(capsys, str(records), "-t", server.url, "-n", "1001")
    assert "requests per connection 1,001" in row(text, "connections")
    assert "reused by 1,000 requests (99.9%)" in text  # not 99.90%


def test_an_open_model_run_shows_its_rate_where_a_closed_one_shows_its_concurrency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = records_file(tmp_path, [{"url": "/", "expect": {"status": 200}}])
    with ThreadServer(keepalive_handler()) as server:
        _, text, doc = run_text(capsys, str(records), "-t", server.url, "-n", "20", "-r", "200")
    assert doc["rate_target"] == 200
    assert "rate 200 req/s" in row(text, "run") and "concurrency" not in row(text, "run")


@pytest.mark.parametrize(
    ("requests", "concurrency", "per_connection", "shown"),
    [("3", "2", 1.5, "1.5"), ("32", "3", 10.67, "11")],
    ids=["one-decimal-under-10", "whole-from-10"],
)
def test_requests_per_connection_has_no_needless_decimals(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    requests: str,
    concurrency: str,
    per_connection: float,
    shown: str,
) -> None:
    records = records_file(tmp_path, [{"url": "/", "expect": {"status": 200}}])
    with ThreadServer(keepalive_handler()) as server:
        args = [str(records), "-t", server.url, "-n", requests, "-c", concurrency]
        _, text, doc = run_text(capsys, *args)
    assert doc["connections"]["requests_per_connection"] == per_connection
    assert row(text, "connections").endswith(f"requests per connection {shown}")
    assert f"({shown} per connection)" in prose(text)


def test_a_long_url_is_never_wrapped_in_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "/" + "/".join(f"segment-{i:02d}" for i in range(12)) + "?q=" + "v" * 30
    records = records_file(tmp_path, [{"url": path, "expect": {"status": 201}}])
    with ThreadServer(keepalive_handler()) as server:
        _, text, _ = run_text(capsys, str(records), "-t", f"{server.url}/base/of/the/target")
        long_target = f"{server.url}/base/of/the/target"
    assert any(f"GET {path}  status" in line for line in text.splitlines())
    assert any(long_target in line for line in text.splitlines() if line.startswith("run "))


def test_an_interrupted_run_says_so_in_its_last_sentence(tmp_path: Path) -> None:
    records = records_file(tmp_path, [{"url": "/", "expect": {"status": 200}}])
    with ThreadServer(keepalive_handler()) as server:
        args = [str(records), "-t", server.url, "-d", "60", "-n", "100000000"]
        code, stdout = interrupt_run(args, lambda: server.requests > 100, signal.SIGTERM)
    assert code == 143
    assert re.search(
        r"Interrupted by SIGTERM after \d+\.\d{3} s\. All [\d,]+ responses", prose(stdout)
    )


AUDITED = """
import sys, urllib.request
for _ in range(3):
    urllib.request.urlopen(sys.argv[1]).read()  # a new connection each time
"""


def test_the_audit_table_fits_80_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "audited.py"
    program.write_text(AUDITED)
    with ThreadServer(keepalive_handler()) as server:
        main(["audit", "--", sys.executable, str(program), server.url + "/"])
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("peer"))
    assert header.rstrip().endswith("peak open  open at end")  # was cut to "open at e…"
    assert all(len(line) <= 80 for line in out.splitlines())
