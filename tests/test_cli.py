"""The command line, in process through ``main(argv)`` (and once as a real process for
Ctrl-C), against nginx."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from helpers import interrupt_run, redirect_record, write_records
from servers import NginxServer
from tether.cli import main

CONTRACT = {
    "requests",
    "ok",
    "mismatches",
    "errors",
    "duration_s",
    "rate",
    "status",
    "latency_ms",
    "connections",
    "mismatch_examples",
}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    """Run with ``--json -``: (exit status, the document, the text summary on stderr)."""
    status = main(["run", *argv, "--json", "-"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def test_summary_document_keeps_its_contract(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 50, redirect_record)
    status, doc, err = run_json(capsys, str(records), "--target", nginx.url)
    assert status == 0
    assert doc.keys() >= CONTRACT
    assert doc["requests"] == doc["ok"] == 50 and doc["status"] == {"302": 50}
    assert set(doc["latency_ms"]) >= {"min", "p50", "p90", "p99", "max", "mean"}
    assert doc["latency_ms"]["min"] <= doc["latency_ms"]["p50"] <= doc["latency_ms"]["max"]
    conns = doc["connections"]
    assert {
        "opened",
        "reused",
        "closed_by_server",
        "closed_undrained",
        "retried_stale",
        "peak_open",
    } <= conns.keys()
    assert conns["opened"] == 1 and conns["reused"] == 49
    assert "All 50 responses matched" in err


def test_mismatch_names_the_line_and_exits_1(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def make(i: int) -> dict[str, Any]:
        record = redirect_record(i)
        if i == 3:
            record["expect"]["headers"]["Location"] = "https://example.org/wrong"
        return record

    records = write_records(tmp_path / "r.jsonl", 5, make)
    status, doc, err = run_json(capsys, str(records), "--target", nginx.url)
    assert status == 1
    assert doc["mismatches"] == 1 and doc["ok"] == 4
    (example,) = doc["mismatch_examples"]
    assert example == {
        "line": 4,
        "method": "GET",
        "url": f"{nginx.url}/r/3",
        "field": "header location",
        "expected": "https://example.org/wrong",
        "got": "https://example.org/r/3",
        "group": "GET /r/{id}",
        "count": 1,
    }
    assert "header location" in err


def test_bad_line_is_reported_and_skipped(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/"}\n{"url": "/", "expect": {"status": "abc"}}\n{"url": "/"}\n')
    status, doc, err = run_json(capsys, str(records), "--target", nginx.url)
    assert status == 2
    assert doc["requests"] == 2 and doc["input_errors"] == 1
    (bad,) = doc["input_error_examples"]
    assert bad["line"] == 2 and "expect.status" in bad["error"]
    assert "r.jsonl:2" in err


def test_strict_mode_sends_nothing_when_a_line_is_bad(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/"}\n{"url": "/", "methd": "GET"}\n')
    before = nginx.stub_status()
    status = main(["run", str(records), "--target", nginx.url, "--strict"])
    after = nginx.stub_status()
    assert status == 2
    assert after["requests"] - before["requests"] == 1  # only the second stub_status read
    err = capsys.readouterr().err
    assert "r.jsonl:2" in err and "methd" in err and "nothing was sent" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "missing.jsonl", "--target", "http://127.0.0.1:1"], "not found"),
        (["run", "{records}", "--target", "ftp://x"], "bad URL"),
        (["run", "{records}", "--concurrency", "0"], "concurrency"),
        (["run", "{records}", "--drain-limit", "lots"], "drain-limit"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 1, redirect_record)
    status = main([a.replace("{records}", str(records)) for a in argv])
    assert status == 2
    assert message in capsys.readouterr().err


def test_relative_url_without_target_is_one_usage_error_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Said once, before the run (it used to be a summary of zeros and a line per record).
    records = write_records(tmp_path / "r.jsonl", 2, redirect_record)
    assert main(["run", str(records), "--json", "-"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"tether: {records}:1: relative URL '/r/0' needs --target, the base URL paths are "
        "joined to (as in --target http://127.0.0.1:8080)\n"
    )


def test_gates_fail_with_a_sentence_and_exit_3(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 20, redirect_record)
    status, doc, err = run_json(
        capsys,
        str(records),
        "--target",
        nginx.url,
        "--disable-keep-alives",
        "--min-reuse",
        "0.9",
        "--max-connections",
        "5",
    )
    assert status == 3
    assert len(doc["gate_failures"]) == 2
    assert "connection reuse was 0.0%" in doc["gate_failures"][0]
    assert "20 connections were opened for 20 requests" in doc["gate_failures"][1]
    assert "gate failed" in err
    status, doc, _ = run_json(
        capsys, str(records), "--target", nginx.url, "--min-reuse", "0.9", "--max-connections", "1"
    )
    assert status == 0 and doc["gate_failures"] == []


def test_requests_cycle_records_and_results_file(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 10, redirect_record)
    results = tmp_path / "out.jsonl"
    status, doc, _ = run_json(
        capsys,
        str(records),
        "--target",
        nginx.url,
        "-n",
        "25",
        "-c",
        "3",
        "--results",
        str(results),
    )
    assert status == 0 and doc["requests"] == 25
    *lines, end = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 25 and end["end"]["connections"]["opened"] == 3  # then the ledger
    assert sorted(line["line"] for line in lines)[:3] == [1, 1, 1]
    assert {line["conn_id"] for line in lines} <= {1, 2, 3}
    # A line leaves out what is its default: no mismatches, no error.
    assert all(line["status"] == 302 and "mismatches" not in line for line in lines)


def test_duration_bounds_the_run(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 10, redirect_record)
    before = nginx.stub_status()["requests"]
    status, doc, _ = run_json(capsys, str(records), "-t", nginx.url, "-d", "0.5", "-n", "1000000")
    served = nginx.stub_status()["requests"] - before - 1  # less the second status read
    assert status == 0
    # The duration stopped it, not the count; what was in flight when it did was finished
    # and counted, not dropped: nginx served exactly what the summary counts.
    assert 0 < doc["requests"] == doc["ok"] == served < 1_000_000
    assert doc["duration_s"] > 0.4
    # A bound is the point here (the run ends at its duration, long before its count), so
    # one is kept, but generous: a shared machine may stall a run for seconds.
    assert doc["duration_s"] < 30


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_stop_signal_still_writes_the_summary(
    nginx: NginxServer, tmp_path: Path, signum: int, status: int
) -> None:
    """Ctrl-C, and SIGTERM (CI timeouts, docker stop, Kubernetes) and SIGHUP (a closed
    terminal), which used to end the process with nothing printed or written."""
    records = write_records(tmp_path / "r.jsonl", 10, redirect_record)
    out = tmp_path / "summary.json"
    args = [str(records), "-t", nginx.url, "-d", "60", "-n", "100000000", "--json", str(out)]
    start = nginx.stub_status()["requests"]
    sending = lambda: nginx.stub_status()["requests"] > start + 100  # noqa: E731
    code, stdout = interrupt_run(args, sending, signum)
    assert code == status
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["signal"] == signal.Signals(signum).name
    assert doc["requests"] > 0 and doc["ok"] == doc["requests"]
    assert doc["connections"]["opened"] == 1, json.dumps(doc)
    assert "interrupted" in stdout  # the text summary is printed too


def test_demo_shows_the_leak_and_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
        for line in out.splitlines()
        if line.count("│") == 4
    }
    assert rows["connections opened"] == ["1,000", "1"]
    assert rows["server: peak open connections"] == ["1,000", "1"]
    assert rows["server: connections accepted"] == ["1,000", "1"]
    assert rows["mismatches caught"] == ["3", "3"]


def test_unreadable_records_keep_what_was_measured(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 1_000, redirect_record)
    with records.open("ab") as out:
        out.write(b'{"url": "/\xff"}\n')
    before = nginx.stub_status()["requests"]
    status, doc, err = run_json(capsys, str(records), "--target", nginx.url)
    served = nginx.stub_status()["requests"] - before - 1  # less the second status read
    assert status == 2
    (unreadable,) = doc["input_error_examples"]
    assert "not valid UTF-8" in unreadable["error"] and doc["input_errors"] == 1
    # Each line is decoded on its own: every line before the bad one was sent, counted and
    # served, exactly, and the error names the bad line itself.
    assert unreadable["line"] == 1_001
    assert doc["requests"] == doc["ok"] == served == 1_000
    flat = " ".join(err.split())  # rich wraps long lines
    assert "skipped records: 1" in flat and "not valid UTF-8" in flat
