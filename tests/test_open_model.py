"""The open model (--rate) against real servers: right counts, a ramp's shape, late requests
counted rather than dropped. Time is bounded only from below (a schedule cannot be beaten)
or by a margin where the bound is the point: these machines are shared, and a slow one only
makes requests later."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import redirect_record, write_records
from servers import ConnInfo, NginxServer, ThreadServer, read_request, reset, response
from tether.cli import main
from tether.engine.options import ClientOptions
from tether.model import Record
from tether.run.options import RunOptions
from tether.run.pacer import OriginalPace, Pacer
from tether.run.session import run


def records(n: int = 10) -> list[Record]:
    return [Record("GET", f"/r/{i}", line=i + 1) for i in range(n)]


def test_constant_rate_sends_the_scheduled_count(nginx: NginxServer) -> None:
    options = RunOptions(target=nginx.url, rate=Pacer(200, 200, 1.0), requests=10**6)
    summary = run(lambda: records(), options)
    assert summary.requests == 200 and summary.errors == 0
    doc = summary.to_dict()
    assert doc["schedule_s"] == pytest.approx(199 / 200)  # the last one is due then ...
    assert summary.duration >= doc["schedule_s"]  # ... and cannot go out before
    assert doc["rate_target"] == 200
    # A slow rate reuses a few connections (a handful here; a starved machine, whose responses
    # come late, needs more at once, but nowhere near one a request).
    assert doc["connections"]["opened"] <= 50


@contextmanager
def arrivals() -> Iterator[tuple[str, list[float]]]:
    """A server that answers 200 to everything; its URL, and when each request reached it
    (``time.monotonic()``, in the order they came)."""
    arrived: list[float] = []

    async def note(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (await read_request(reader)) is not None:
            arrived.append(time.monotonic())
            conn.count_request()
            writer.write(response(200, b"ok"))
            await writer.drain()

    with ThreadServer(note) as srv:
        yield srv.url, arrived


def last_half_second(arrived: list[float]) -> int:
    """How many requests of a one-second schedule reached the server in its last half second
    (up to the last one's arrival). Timed from the end: the start may be late by whatever it
    takes a loaded machine to dial the first connections, which bunches the first requests,
    while a request is only ever sent late, never early, so lateness only adds to this."""
    end = max(arrived)
    return sum(1 for t in arrived if end - t < 0.5)


# A 100 -> 300 ramp over 1 s sends 125 requests in its last half second (a constant 200/s, the
# same 200 in all, sends 100); the margin is for the last request's own lateness.
RAMP_LAST_HALF_AT_LEAST = 125 - 12


def test_ramp_sends_the_area_under_the_rate_rising() -> None:
    with arrivals() as (url, arrived):
        options = RunOptions(target=url, rate=Pacer(100, 300, 1.0), requests=10**6)
        summary = run(lambda: records(), options)
    assert summary.requests == len(arrived) == 200 and summary.errors == 0
    assert summary.to_dict()["rate_target"] == 200
    assert last_half_second(arrived) >= RAMP_LAST_HALF_AT_LEAST


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
    # The server's 0.3 s is in the service time, the wait for a connection is not: the
    # median request waits about 1 s (5 connections serve 50 requests due in 1 s in 3 s).
    assert doc["service_ms"]["p50"] > 250
    assert doc["latency_ms"]["p50"] > doc["service_ms"]["p50"] + 250


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


def test_library_rate_mode() -> None:
    import tether

    with arrivals() as (url, arrived):
        summary = tether.run(records(), target=url, rate="100:300", duration=1, requests=10**6)
    assert summary.requests == 200 and summary.errors == 0
    assert last_half_second(arrived) >= RAMP_LAST_HALF_AT_LEAST  # a ramp, not its mean rate


def test_a_stall_opens_a_few_connections_not_one_a_request() -> None:
    """The server holds every response for a fifth of a second while 1,000/s keep falling
    due. Each request that found no idle connection used to dial its own (a storm of 200
    here, and the server is the one that pays); now at most a few dials are under way at a
    time and the rest wait for a response to free a connection (the backlog sent after the
    stall opens some more: about 25 in all here)."""
    started: list[float] = []

    async def stalling(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (await read_request(reader)) is not None:
            now = time.monotonic()
            start = started[0] if started else started.append(now) or now
            if 0.3 < now - start < 0.5:
                await asyncio.sleep(start + 0.5 - now)
            conn.count_request()
            writer.write(response(200, b"ok"))
            await writer.drain()

    with ThreadServer(stalling) as srv:
        options = RunOptions(target=srv.url, rate=Pacer(1000, 1000, 1.0), requests=10**6)
        summary = run(lambda: records(), options)
    assert summary.requests == 1000 and summary.errors == 0
    assert summary.late > 100  # the stall made them wait ...
    assert summary.ledger.opened <= 40  # ... for the connections there were, and some more


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there once the socket is gone


def test_a_refused_port_ends_a_rate_run_when_its_duration_does() -> None:
    # Every dial fails at once; the requests held back for room must still go out when the
    # failed dials leave the async path (they once waited for a response that never came,
    # and the run never ended: with the progress line on, every time).
    cmd = [sys.executable, "-m", "tether", "run", _refused_url(), "--rate", "5000", "-d", "3"]
    started = time.monotonic()
    done = subprocess.run([*cmd, "--json", "-"], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert doc["requests"] == doc["errors"] == 15_000  # each due request counted once
    assert took < 10, took  # 3 s of schedule and the start-up, not a wait for nothing
    assert "No connection could be opened" in done.stderr


async def silent(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
) -> None:
    """Accepts, reads, never answers (until the client goes)."""
    while await reader.read(65536):
        pass


async def resetting(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
) -> None:
    """Resets every connection it accepts."""
    reset(writer)


FAULTS = {"silent": silent, "resetting": resetting}
SCHEDULES = {
    "rate": (RunOptions(rate=Pacer(400, 400, 1.5), requests=10**6), 600),
    "ramp": (RunOptions(rate=Pacer(100, 700, 1.5), requests=10**6), 600),
    "pace": (RunOptions(rate=OriginalPace(1.0, None)), 600),
}


def paced_records() -> list[Record]:
    # Recorded 2.5 ms apart: 600 of them over 1.5 s, at their own pace.
    return [Record("GET", f"/p/{i}", line=i + 1, at=1e9 + i * 0.0025) for i in range(600)]


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_a_server_that_never_answers_or_resets_ends_the_run_on_time(
    fault: str, schedule: str
) -> None:
    # Each due request is counted once, as failed or sent, and the run is over within its
    # schedule plus --timeout: what waits for room past --timeout from when it was due is
    # never sent (a silent server once held a run for a timeout per in-flight cap).
    asked, due = SCHEDULES[schedule]
    with ThreadServer(FAULTS[fault], expect_errors=True) as srv:
        asked = dataclasses.replace(asked, target=srv.url, max_inflight=50)
        source = paced_records if schedule == "pace" else lambda: records()
        started = time.monotonic()
        summary = run(source, asked, ClientOptions(timeout=1.0))
        took = time.monotonic() - started
    doc = summary.to_dict()
    assert doc["requests"] == doc["errors"] == due, doc["error_kinds"]
    assert took < 1.5 + 1.0 + 1.5, took  # the schedule, --timeout, and a loaded machine's slack
    if fault == "silent":
        assert doc["error_kinds"].get("unsent", 0) > 0  # more were due than could be in flight
        assert set(doc["error_kinds"]) <= {"timeout", "unsent"}


def test_a_silent_server_ends_a_rate_run_over_workers_on_time() -> None:
    with ThreadServer(silent, expect_errors=True) as srv:
        cmd = [sys.executable, "-m", "tether", "run", f"{srv.url}/", "--rate", "400", "-d", "1.5"]
        cmd += ["--timeout", "1s", "--max-inflight", "50", "-w", "2", "--json", "-"]
        started = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert doc["requests"] == doc["errors"] == 600
    assert doc["error_kinds"].get("unsent", 0) > 0
    assert took < 1.5 + 1.0 + 4.0, took  # two processes' start-up besides
    assert "never sent" in done.stderr
