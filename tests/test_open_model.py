"""The open model (--rate) against real servers: right counts, right order of magnitude of
time, late requests counted rather than dropped. No timing asserts beyond orders of
magnitude: these machines are shared."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from helpers import redirect_record, write_records
from servers import ConnInfo, NginxServer, ThreadServer, read_request, response
from tether.cli import main
from tether.engine.pacer import Pacer
from tether.engine.runner import RunOptions, run
from tether.model import Record


def records(n: int = 10) -> list[Record]:
    return [Record("GET", f"/r/{i}", line=i + 1) for i in range(n)]


def test_constant_rate_sends_the_scheduled_count(nginx: NginxServer) -> None:
    options = RunOptions(target=nginx.url, rate=Pacer(200, 200, 1.0), requests=10**6)
    summary = run(lambda: records(), options)
    assert summary.requests == 200 and summary.errors == 0
    assert 0.9 < summary.duration < 5
    doc = summary.to_dict()
    assert doc["rate_target"] == 200
    assert doc["connections"]["opened"] <= 10  # a slow rate reuses a few connections


def test_ramp_sends_the_area_under_the_rate(nginx: NginxServer) -> None:
    options = RunOptions(target=nginx.url, rate=Pacer(100, 300, 1.0), requests=10**6)
    summary = run(lambda: records(), options)
    assert summary.requests == 200
    assert summary.to_dict()["rate_target"] == 200


def test_request_count_bounds_an_open_run(nginx: NginxServer) -> None:
    summary = run(
        lambda: records(), RunOptions(target=nginx.url, rate=Pacer(500, 500), requests=77)
    )
    assert summary.requests == 77


async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo) -> None:
    while (await read_request(reader)) is not None:
        conn.count_request()
        await asyncio.sleep(0.3)
        writer.write(response(200, b"slow"))
        await writer.drain()


def test_stalled_server_makes_requests_late_not_dropped() -> None:
    with ThreadServer(stall) as srv:
        options = RunOptions(
            target=srv.url, rate=Pacer(50, 50, 1.0), requests=10**6, max_inflight=5
        )
        summary = run(lambda: records(), options)
        assert srv.requests == 50
    doc = summary.to_dict()
    assert doc["requests"] == 50 and doc["errors"] == 0
    assert doc["late"] >= 30  # only 5 may wait on the server at once
    assert doc["connections"]["peak_open"] <= 5
    # From when a request was due, not from when it went out: queueing counts.
    assert doc["latency_ms"]["p99"] > doc["service_ms"]["p99"] + 500
    assert 250 < doc["service_ms"]["p50"] < 3000


def test_cli_rate_mode(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_records(tmp_path / "r.jsonl", 20, redirect_record)
    argv = ["run", str(path), "-t", nginx.url, "--rate", "300", "-d", "1", "-n", "100000"]
    assert main([*argv, "--json", "-"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["requests"] == 300 and doc["ok"] == 300
    assert "open model" in captured.err and "service ms" in captured.err


def test_cli_ramp_needs_a_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_records(tmp_path / "r.jsonl", 1, redirect_record)
    assert main(["run", str(path), "-t", "http://127.0.0.1:1", "--rate", "10:20"]) == 2
    assert "needs --duration" in capsys.readouterr().err


def test_library_rate_mode(nginx: NginxServer) -> None:
    import tether

    summary = tether.run(records(), target=nginx.url, rate="100:300", duration=1, requests=10**6)
    assert summary.requests == 200 and summary.errors == 0
