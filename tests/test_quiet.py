"""-q and --silent, the same on every command, against a server on 127.0.0.1: -q leaves out
the progress and the whole report but keeps a line of result and what failed; --silent prints
nothing at all, and the files asked for are still written."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import write_records
from servers import ConnInfo, ThreadServer, keepalive_handler, read_request, response
from tether.cli import main


@pytest.fixture
def server() -> Iterator[ThreadServer]:
    """Keep-alive, 200 "ok" for every request."""
    with ThreadServer(keepalive_handler()) as srv:
        yield srv


def records(tmp_path: Path, count: int, status: int = 200) -> str:
    """``count`` records of ``GET /`` expecting ``status``."""
    made = write_records(
        tmp_path / "r.jsonl", count, lambda i: {"url": f"/{i}", "expect": {"status": status}}
    )
    return str(made)


def printed(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- run ---------------------------------------------------------------------------------------

ONE_LINE = re.compile(
    r"^200 requests, all matched, 1 connection \(200 per connection\), p99 [\d.]+ ms, "
    r"[\d,]+ req/s, 1 gate failed$"
)


def test_quiet_keeps_the_result_and_the_failed_gate(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", records(tmp_path, 200), "-t", server.url, "--threshold", "p99<0.001ms"]
    code, out, err = printed(capsys, *argv, "-q")
    assert code == 3
    first, gate = out.splitlines()
    assert ONE_LINE.match(first), first
    assert gate.startswith("gate failed: threshold p99<0.001ms failed: the run's value was ")
    assert err == ""  # no progress, nothing else


def test_quiet_counts_mismatches(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = printed(capsys, "run", records(tmp_path, 5, 404), "-t", server.url, "-q")
    assert code == 1
    assert re.match(r"^5 requests, 5 mismatches, 1 connection \(5 per connection\), ", out), out
    assert len(out.splitlines()) == 1


def test_quiet_beside_json_on_stdout(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", records(tmp_path, 200), "-t", server.url, "--threshold", "p99<0.001ms"]
    code, out, err = printed(capsys, *argv, "-q", "--json", "-")
    assert code == 3 and json.loads(out)["requests"] == 200  # stdout is the JSON alone
    assert ONE_LINE.match(err.splitlines()[0]) and "gate failed: " in err


def test_silent_prints_nothing_and_still_writes_the_json(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "s.json"
    argv = ["run", records(tmp_path, 200), "-t", server.url, "--threshold", "p99<0.001ms"]
    assert printed(capsys, *argv, "--silent", "--json", str(summary)) == (3, "", "")
    assert json.loads(summary.read_text())["gate_failures"]
    # --silent wins over -q (both ask for less).
    assert printed(capsys, *argv, "--silent", "-q") == (3, "", "")


def test_quiet_names_an_output_not_written(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = "/dev/full"  # every write fails: No space left on device
    if not Path(full).exists():
        pytest.skip("needs /dev/full")
    argv = ["run", records(tmp_path, 20), "-t", server.url, "--html", full, "-q"]
    code, out, _ = printed(capsys, *argv)
    assert code == 1
    first, failed = out.splitlines()
    assert first.endswith(", 1 output not written")
    assert failed.startswith(f"output failed: --html '{full}' was not written")


def test_silent_says_nothing_of_a_results_file_that_fails(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = "/dev/full"
    if not Path(full).exists():
        pytest.skip("needs /dev/full")
    argv = ["run", records(tmp_path, 2000), "-t", server.url, "--results", full]
    code, out, err = printed(capsys, *argv, "-q")
    assert code == 1 and "--results '/dev/full' was not written" in err  # as it happened
    assert out.splitlines()[1].startswith("output failed: --results '/dev/full' was not written")
    assert printed(capsys, *argv, "--silent") == (1, "", "")


# --- the other commands --------------------------------------------------------------------------


def test_doctor_quiet_and_silent(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["doctor", f"{server.url}/", "--max-requests", "5", "--max-idle-wait", "0.2"]
    code, out, err = printed(capsys, *argv, "-q")
    assert (code, err) == (0, "")  # no probe progress either
    assert out == (
        f"{server.url}/: keep-alive, idle timeout over 0.2 s, more than 5 requests per connection\n"
    )
    out_file = tmp_path / "d.json"
    assert printed(capsys, *argv, "--silent", "--json", str(out_file)) == (0, "", "")
    assert json.loads(out_file.read_text())["keep_alive"] is True


def test_doctor_quiet_keeps_the_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = printed(capsys, "doctor", "http://127.0.0.1:1/", "-q")
    assert code == 1 and out.startswith("http://127.0.0.1:1/: the server could not be asked: ")


LEAKY = """
import sys, urllib.request
for _ in range(12):
    urllib.request.urlopen(sys.argv[1]).read()  # a new connection for each
"""


def test_audit_quiet_and_silent(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "leaky.py"
    program.write_text(LEAKY)
    command = ["--", sys.executable, str(program), f"{server.url}/"]
    code, out, _ = printed(capsys, "audit", "-q", *command)
    assert code == 3
    first, verdict = out.splitlines()
    assert first == "12 requests over 12 connections to 1 peer"
    assert verdict.startswith(f"127.0.0.1:{server.port}: 12 requests over 12 connections")
    assert printed(capsys, "audit", "--silent", *command) == (3, "", "")


def test_diff_quiet_and_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def answering(body: bytes) -> ThreadServer:
        async def handler(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
        ) -> None:
            while await read_request(reader) is not None:
                writer.write(response(200, body))
                await writer.drain()

        return ThreadServer(handler)

    given = records(tmp_path, 3)
    with answering(b"old") as old, answering(b"new") as new:
        argv = ["diff", given, "--primary", old.url, "--candidate", new.url]
        code, out, _ = printed(capsys, *argv, "-q")
        assert code == 1
        assert out.splitlines() == [
            "3 records compared, 3 with differences",
            "differs: GET /{id} body sha256 (3 records)",
        ]
        assert printed(capsys, *argv, "--silent") == (1, "", "")


def test_report_quiet_and_silent(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "out.jsonl"
    run = ["run", records(tmp_path, 20), "-t", server.url, "--results", str(results)]
    assert printed(capsys, *run, "--silent")[0] == 0
    argv = ["report", str(results), "--threshold", "requests>100"]
    code, out, _ = printed(capsys, *argv, "-q")
    assert code == 3
    first, gate = out.splitlines()
    assert first.startswith("20 requests, all matched, 1 connection (20 per connection), ")
    assert first.endswith(", 1 gate failed") and gate.startswith("gate failed: threshold")
    assert printed(capsys, *argv, "--silent") == (3, "", "")
    # A file asked for is written whole, whatever the verbosity.
    page = tmp_path / "report.txt"
    assert printed(capsys, *argv, "--silent", "-o", str(page)) == (3, "", "")
    assert "All 20 responses matched" in page.read_text()


def test_record_and_convert_silent(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = records(tmp_path, 3)
    golden = tmp_path / "golden.jsonl"
    argv = ["record", given, "-t", server.url, "-o", str(golden)]
    code, _, err = printed(capsys, *argv, "-q")
    assert code == 0 and err == f"captured 3 records to {golden}\n"  # its one line of result
    assert printed(capsys, *argv, "--silent") == (0, "", "")
    assert len(golden.read_text().splitlines()) == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"url": "/"}\n{"nope": 1}\n')
    converted = tmp_path / "c.jsonl"
    code, _, err = printed(capsys, "convert", str(bad), "-o", str(converted), "-q")
    assert code == 2 and err.startswith("tether: skipped ")  # what failed stays with -q
    assert printed(capsys, "convert", str(bad), "-o", str(converted), "--silent") == (2, "", "")
    assert converted.read_text() == '{"method": "GET", "url": "/"}\n'
