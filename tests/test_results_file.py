"""The results file at half its old size (a key at its default is left out), read by ``tether
report`` as files written before are (every key written; ``data/results_every_key.jsonl`` is
one, written by tether before the change, with ``.report.json`` its report then), and
``tether report --format csv``: one row per request, spreadsheet-safe. Real runs against a
server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import write_records
from servers import ConnInfo, ThreadServer, free_port, read_request, response
from tether.cli import main

DATA = Path(__file__).parent / "data"
OLD = DATA / "results_every_key.jsonl"

# Each key a line leaves out, and what it then is: as the README says it.
DEFAULTS: dict[str, Any] = {
    "method": "GET",
    "reused": False,
    "retried": False,
    "redirects": 0,
    "body_truncated": False,
    "error": None,
    "error_kind": None,
    "protocol": "http/1.1",
    "mismatches": [],
}
COLUMNS = [
    "t", "line", "method", "url", "group", "status", "latency_ms", "service_ms", "conn_id",
    "reused", "retried", "redirects", "body_size", "body_truncated", "error", "error_kind",
    "protocol", "worker", "iteration", "mismatches", "mismatch_field", "mismatch_expected",
    "mismatch_got",
]  # fmt: skip


def as_new(old: dict[str, Any]) -> dict[str, Any]:
    """An outcome line with every key as the new form writes it."""
    new = {k: v for k, v in old.items() if k not in DEFAULTS or v != DEFAULTS[k]}
    if new.get("service_ms") == new["latency_ms"]:
        del new["service_ms"]
    return new


def full(new: dict[str, Any]) -> dict[str, Any]:
    """An outcome line with every key, in the old form's order."""
    line = {**DEFAULTS, "service_ms": new["latency_ms"], **new}
    return {k: line[k] for k in COLUMNS[:16]} | {"mismatches": line["mismatches"]}


def as_old(new: dict[str, Any]) -> str:
    """A line as tether wrote it before: every key, in its order, json.dumps' spacing."""
    return json.dumps(full(new))


async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: ConnInfo) -> None:
    """200 to most; a redirect under /r/; a body over the drain limit at /big; a header
    that would be a spreadsheet formula at /odd."""
    while (req := await read_request(reader)) is not None:
        if req.target.startswith("/r/"):
            writer.write(response(302, b"", [("Location", "/ok")]))
        elif req.target == "/big":
            writer.write(response(200, b"x" * 100_000))
        elif req.target == "/odd":
            writer.write(response(200, b"odd", [("X-Thing", "@SUM(1+1)")]))
        else:
            writer.write(response(200, b"ok"))
        await writer.drain()


def every_kind(tmp_path: Path) -> Path:
    """Records with a line of each kind: matched, a POST in a group named as a formula, a
    redirect followed, a body over the drain limit, mismatched headers and status, a
    connection refused."""
    dead = free_port()
    made: list[dict[str, Any]] = [
        {"url": "/ok", "expect": {"status": 200}},
        {"method": "POST", "url": "/ok", "body": "x", "tag": "=cmd|' /C calc'!A0"},
        {"url": "/r/1", "expect": {"status": 200}},
        {"url": "/big"},
        {"url": "/odd", "expect": {"headers": {"X-Thing": "+1"}}},
        {"url": "/ok", "expect": {"status": 201}},
        {"url": f"http://127.0.0.1:{dead}/gone"},
    ]
    return write_records(tmp_path / "every.jsonl", len(made), lambda i: made[i])


def run_results(tmp_path: Path, n: int = 28) -> Path:
    results = tmp_path / "out.jsonl"
    argv = ["run", str(every_kind(tmp_path)), "-n", str(n), "-c", "2", "-q"]
    argv += ["--follow-redirects", "3", "--drain-limit", "1KiB", "--results", str(results)]
    with ThreadServer(handler, expect_errors=True) as server:
        assert main([*argv, "-t", server.url]) == 1
    return results


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(text) for text in path.read_text().splitlines()]


def report(path: Path, fmt: str, out: Path, *more: str) -> tuple[int, str]:
    code = main(["report", str(path), "--format", fmt, "-o", str(out), *more])
    return code, out.read_text()


# --- smaller, and both forms read alike --------------------------------------------------------


def test_a_results_file_is_half_the_size_it_was(tmp_path: Path) -> None:
    records = write_records(tmp_path / "ok.jsonl", 50, lambda i: {"url": f"/ok/{i}"})
    results = tmp_path / "ok.results.jsonl"
    with ThreadServer(handler) as server:
        argv = ["run", str(records), "-t", server.url, "-n", "500", "-c", "2", "-q"]
        assert main([*argv, "--results", str(results)]) == 0
    *texts, _ = results.read_text().splitlines()
    outcomes = [json.loads(text) for text in texts]
    new = sum(len(text) + 1 for text in texts)
    old = sum(len(as_old(line)) + 1 for line in outcomes)  # the same lines, written as before
    assert new / old < 0.55, (new / len(outcomes), old / len(outcomes))
    # A matched GET leaves out every key at its default: all but "reused", once reused.
    assert all(set(DEFAULTS) & set(line) <= {"reused"} for line in outcomes)
    assert sum("reused" in line for line in outcomes) == 498
    # In the closed model a request goes out when it starts: its service time is its latency,
    # the first on each connection too (which used to say 0.0).
    assert not [line for line in outcomes if "service_ms" in line]


def test_an_old_file_renders_as_it_did(tmp_path: Path) -> None:
    code, text = report(OLD, "json", tmp_path / "again.json")
    then = json.loads((DATA / "results_every_key.report.json").read_text())
    now = json.loads(text)
    # Keys may be added (in the ledger too: what a newer tether counts), no more.
    assert code == 1 and {key: now[key] for key in then if key != "connections"} == {
        key: value for key, value in then.items() if key != "connections"
    }
    ledger = then["connections"]
    assert {key: now["connections"][key] for key in ledger} == ledger


def test_a_file_from_before_t_has_a_timeline_with_no_rate_made_up(tmp_path: Path) -> None:
    # Its lines say nothing of when they ended (all read as at 0 s): a point of no length,
    # whose rate is unknown, not 28 requests over a millisecond.
    *outcomes, end = lines_of(OLD)
    timeless = tmp_path / "timeless.jsonl"
    timeless.write_text(
        "".join(json.dumps({k: v for k, v in line.items() if k != "t"}) + "\n" for line in outcomes)
        + json.dumps(end)
        + "\n"
    )
    code, text = report(timeless, "json", tmp_path / "timeless.json")
    [point] = json.loads(text)["timeline"]
    assert (code, point["t"], point["requests"], point["rps"]) == (1, 0.0, 28, 0.0)


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "junit", "csv"])
def test_the_old_form_and_the_new_render_alike(tmp_path: Path, fmt: str) -> None:
    *outcomes, end = lines_of(OLD)
    assert all(set(COLUMNS[:16]) <= set(line) for line in outcomes)  # every key: the old form
    new = tmp_path / "new.jsonl"
    compact = [json.dumps(line, separators=(",", ":")) for line in [*map(as_new, outcomes), end]]
    new.write_text("".join(text + "\n" for text in compact))
    assert new.stat().st_size < OLD.stat().st_size * 0.6
    old_code, old_text = report(OLD, fmt, tmp_path / f"old.{fmt}")
    new_code, new_text = report(new, fmt, tmp_path / f"new.{fmt}")
    assert (new_code, new_text) == (old_code, old_text) and "header x-thing" in old_text


# --- CSV ---------------------------------------------------------------------------------


def rows_of(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def test_csv_is_one_row_per_request_with_the_results_columns(tmp_path: Path) -> None:
    results = run_results(tmp_path)
    code, text = report(results, "csv", tmp_path / "out.csv")
    assert code == 1  # as the run exited: it had mismatches and errors
    header, rows = rows_of(text)
    assert header == COLUMNS and len(rows) == 28
    for row, line in zip(rows, lines_of(results), strict=False):
        every = full(line)
        assert float(row["t"]) == every["t"] and float(row["latency_ms"]) == every["latency_ms"]
        assert float(row["service_ms"]) == every["service_ms"]
        assert int(row["conn_id"]) == every["conn_id"] and row["url"] == every["url"]
        assert int(row["mismatches"]) == len(every["mismatches"])
    by_line = {row["line"]: row for row in rows}
    status = by_line["6"]
    assert (status["mismatches"], status["mismatch_field"]) == ("1", "status")
    assert (status["mismatch_expected"], status["mismatch_got"]) == ("201", "200")
    refused = by_line["7"]
    assert (refused["status"], refused["conn_id"], refused["error_kind"]) == ("0", "0", "connect")
    assert "Connection refused" in refused["error"]
    assert by_line["3"]["redirects"] == "1" and by_line["4"]["body_truncated"] == "true"
    assert by_line["1"]["error"] == "" and by_line["1"]["body_truncated"] == "false"
    assert {row["reused"] for row in rows} == {"true", "false"}
    assert by_line["2"]["method"] == "POST" and by_line["1"]["method"] == "GET"


def test_csv_cells_that_would_be_formulas_are_text(tmp_path: Path) -> None:
    _, rows = rows_of(report(run_results(tmp_path), "csv", tmp_path / "out.csv")[1])
    by_line = {row["line"]: row for row in rows}
    assert by_line["2"]["group"] == "'=cmd|' /C calc'!A0"
    odd = by_line["5"]
    assert odd["mismatch_field"] == "header x-thing"
    assert (odd["mismatch_expected"], odd["mismatch_got"]) == ("'+1", "'@SUM(1+1)")


def test_csv_on_stdout_judged_by_a_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = run_results(tmp_path)
    capsys.readouterr()
    argv = ["report", str(results), "--format", "csv", "--threshold", "mismatch_rate<1%", "-q"]
    assert main(argv) == 3
    header, rows = rows_of(capsys.readouterr().out)
    assert header == COLUMNS and len(rows) == 28  # whole: -q shortens only a text report


def test_an_old_file_as_csv(tmp_path: Path) -> None:
    _, rows = rows_of(report(OLD, "csv", tmp_path / "old.csv")[1])
    assert len(rows) == 28 and rows[0]["service_ms"] != ""
    assert {row["group"] for row in rows} >= {"'=cmd|' /C calc'!A0", "GET /ok"}


def test_csv_into_a_pipe_that_closes_stops_quietly(tmp_path: Path) -> None:
    *outcomes, _ = lines_of(OLD)
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps(as_new(outcomes[i % 28])) + "\n" for i in range(5000)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "report", str(big), "--format", "csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().decode().rstrip() == ",".join(COLUMNS)
    proc.stdout.close()  # as `| head -1` does
    try:
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    assert (code, proc.stderr.read()) == (141, b"")  # as a program that SIGPIPE ends


def test_csv_to_a_full_disk_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(OLD), "--format", "csv", "-o", "/dev/full"]) == 2
    err = capsys.readouterr().err
    assert "tether: /dev/full: No space left on device" in err and "cannot read" not in err


def test_a_missing_file_is_named_before_any_row_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, missing = tmp_path / "out.csv", tmp_path / "gone.jsonl"
    assert main(["report", str(OLD), str(missing), "--format", "csv", "-o", str(out)]) == 2
    assert f"cannot read results {str(missing)!r}" in capsys.readouterr().err
    assert not out.exists()


# --- a file cut mid-line (the run was killed mid-write) ----------------------------------------


def cut_at(results: Path, line: int, keep: int, to: Path) -> tuple[Path, Path]:
    """``results`` cut inside its ``line``-th line (from 1; -1: the closing line), ``keep``
    bytes of it left, as a run killed mid-write leaves it; and the same cut at the line's
    start (what a kill between two lines leaves), to compare with."""
    data = results.read_bytes()
    starts = [0, *(i + 1 for i, byte in enumerate(data[:-1]) if byte == ord("\n"))]
    start = starts[line - 1] if line > 0 else starts[-1]
    assert b"\n" not in data[start : start + keep + 1]  # inside the line: no newline kept
    mid, boundary = to / "cut.jsonl", to / "boundary.jsonl"
    mid.write_bytes(data[: start + keep])
    boundary.write_bytes(data[:start])
    return mid, boundary


@pytest.mark.parametrize(
    ("line", "requests"), [(11, 10), (1, 0), (-1, 28)], ids=["inside", "first", "closing"]
)
def test_a_file_cut_mid_line_renders_as_interrupted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: int, requests: int
) -> None:
    results = run_results(tmp_path)
    mid, boundary = cut_at(results, line, 25, tmp_path)
    capsys.readouterr()
    code = main(["report", str(mid), "--format", "json", "-o", str(tmp_path / "mid.json")])
    err = capsys.readouterr().err
    assert code == 130, err  # as a run interrupted (no signal named: SIGINT's) exits
    number = line if line > 0 else 29  # 28 outcomes, then the closing line
    said = f"tether: {mid}:{number}: the last line is cut short (the run was stopped mid-write)"
    assert err.count("cut short") == 1 and said in err
    doc = json.loads((tmp_path / "mid.json").read_text())
    assert doc["interrupted"] and doc["requests"] == requests
    whole = lines_of(boundary)
    assert doc["connections"]["opened"] == len({o["conn_id"] for o in whole if o["conn_id"]})
    # As a file cut at the line's start renders: the partial line is all that is left out.
    again_code, again = report(boundary, "json", tmp_path / "boundary.json")
    assert (code, doc) == (again_code, json.loads(again))
    assert "cut short" not in capsys.readouterr().err


def test_a_file_cut_mid_line_as_csv_and_silent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mid, _ = cut_at(run_results(tmp_path), 11, 25, tmp_path)
    capsys.readouterr()
    code, text = report(mid, "csv", tmp_path / "mid.csv")
    assert code == 130 and len(rows_of(text)[1]) == 10
    assert capsys.readouterr().err.count(f"{mid}:11: the last line is cut short") == 1
    assert main(["report", str(mid), "--silent"]) == 130
    assert capsys.readouterr() == ("", "")


def test_a_bad_line_in_the_middle_is_named_in_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = run_results(tmp_path).read_text().splitlines(keepends=True)
    opening = texts[4].index('"url":"') + len('"url":')  # the URL's opening quote
    texts[4] = texts[4][: opening + 5] + "\n"  # cut inside the URL, and the file goes on
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(texts))
    capsys.readouterr()
    assert main(["report", str(bad), "--format", "json", "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    said = f"tether: {bad}:5: not a results line: Unterminated string starting at column"
    assert err == f"{said} {opening + 1}\n"
    # A cut at the end of a value reads as one: at the line's end.
    texts[4] = '{"t":0.5,"line":5,\n'
    bad.write_text("".join(texts))
    assert main(["report", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"tether: {bad}:5: not a results line: Expecting property name enclosed in double "
        "quotes at column 19 (the line's end)\n"
    )
