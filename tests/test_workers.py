"""--workers: one run over several processes, summaries merged, checked against nginx."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from helpers import interrupt_run, redirect_record, write_records
from servers import NginxFactory, NginxServer
from tether.cli import main
from tether.errors import InputError
from tether.run.options import RunOptions
from tether.run.pacer import Pacer
from tether.run.processes import split


def test_split_shares_counts_evenly() -> None:
    shares = split(RunOptions(concurrency=5, requests=101, max_inflight=10), 2)
    assert [s.concurrency for s in shares] == [3, 2]
    assert [s.requests for s in shares] == [51, 50]
    assert [s.share for s in shares] == [(0, 2), (1, 2)]
    rated = split(RunOptions(rate=Pacer(100, 300, 2.0)), 2)
    assert [s.rate for s in rated] == [Pacer(50, 150, 2.0)] * 2


def test_split_needs_a_connection_per_process() -> None:
    with pytest.raises(InputError, match="at least one connection each"):
        split(RunOptions(concurrency=1), 2)


@pytest.mark.parametrize(
    ("asked", "why"),
    [
        (RunOptions(concurrency=2, requests=1), "at least one request each: --requests 1"),
        (RunOptions(rate=Pacer(10, 10, 1.0), max_inflight=1), "one request in flight each"),
    ],
    ids=["fewer-requests", "fewer-in-flight"],
)
def test_a_share_with_nothing_to_do_is_an_error(asked: RunOptions, why: str) -> None:
    with pytest.raises(InputError, match=why):
        split(asked, 2)


def test_a_share_with_no_record_to_send_once_is_an_error() -> None:
    with pytest.raises(InputError, match="once without --requests or --duration, and the"):
        split(RunOptions(concurrency=4), 2, 1)
    # A duration cycles the records, as a count does: each share sends the one it has.
    assert [s.share for s in split(RunOptions(concurrency=4, duration=1.0), 2, 1)] == [
        (0, 2),
        (1, 2),
    ]
    # No records at all is the run's own "nothing to send" (exit 2 too), not a share's.
    assert len(split(RunOptions(concurrency=4), 2, 0)) == 2


def test_the_open_models_connections_add_up_too() -> None:
    # They are the summary's figure only (the open model has no workers), so a share may
    # have none; the sum is what was asked.
    rated = split(RunOptions(rate=Pacer(10, 10, 1.0), concurrency=1), 2)
    assert [s.concurrency for s in rated] == [1, 0]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["run", *argv, "--json", "-"]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def logged_paths(nginx_factory: NginxFactory, log: Path) -> NginxServer:
    """An nginx that logs each request's target, one a line, to ``log`` (unbuffered)."""
    return nginx_factory(
        http="log_format target '$request_uri';", server=f"access_log {log} target;"
    )


def test_each_record_goes_out_once_over_the_processes(
    nginx_factory: NginxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server's own log, not tether's counts: two processes sending the same half would
    # still add up to the right totals.
    log = tmp_path / "access.log"
    server = logged_paths(nginx_factory, log)
    records = write_records(tmp_path / "r.jsonl", 1_000, redirect_record)
    before = server.stub_status()
    doc = run_json(capsys, str(records), "-t", server.url, "-c", "4", "--workers", "2")
    after = server.stub_status()
    conns = doc["connections"]
    assert isinstance(conns, dict)
    assert doc["requests"] == doc["ok"] == 1_000
    assert conns["opened"] == after["accepts"] - before["accepts"] - 1 == 4
    sent = Counter(line for line in log.read_text().splitlines() if line != "/status")
    assert sent == Counter(f"/r/{i}" for i in range(1_000))
    assert doc["concurrency"] == 4


def test_records_cycled_over_the_processes_each_go_out_their_share(
    nginx_factory: NginxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "access.log"
    server = logged_paths(nginx_factory, log)
    records = write_records(tmp_path / "r.jsonl", 10, redirect_record)
    doc = run_json(capsys, str(records), "-t", server.url, "-c", "2", "-w", "2", "-n", "100")
    assert doc["requests"] == 100
    assert Counter(log.read_text().splitlines()) == Counter({f"/r/{i}": 10 for i in range(10)})


def test_request_count_and_rate_split(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 10, redirect_record)
    doc = run_json(capsys, str(records), "-t", nginx.url, "-c", "2", "-w", "2", "-n", "101")
    assert doc["requests"] == 101
    doc = run_json(
        capsys, str(records), "-t", nginx.url, "-w", "2", "--rate", "200", "-d", "1", "-n", "9999"
    )
    assert doc["requests"] == 200 and doc["rate_target"] == 200


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_a_stop_signal_reaches_every_process(
    nginx: NginxServer, tmp_path: Path, signum: int, status: int
) -> None:
    records = write_records(tmp_path / "r.jsonl", 10, redirect_record)
    out = tmp_path / "summary.json"
    args = [str(records), "-t", nginx.url, "-c", "2", "-w", "2", "-d", "60", "-n", "100000000"]
    start = nginx.stub_status()["requests"]
    code, _ = interrupt_run(
        [*args, "--json", str(out), "-q"],
        lambda: nginx.stub_status()["requests"] > start + 100,
        signum,
    )
    assert code == status
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["requests"] > 0
    assert doc["signal"] == signal.Signals(signum).name
    assert doc["connections"]["opened"] == 2


def one_record(tmp_path: Path) -> Path:
    return write_records(tmp_path / "one.jsonl", 1, redirect_record)


@pytest.mark.parametrize("requests", [2000, 2001])
def test_one_record_over_two_processes_is_the_whole_run(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], requests: int
) -> None:
    # Both processes send the one record, each its half of -n (an odd -n: 1001 and 1000)
    # over its half of -c; this used to be 1,000 requests over 5 connections, exit 0.
    before = nginx.stub_status()
    doc = run_json(
        capsys, str(one_record(tmp_path)), "-t", nginx.url, "-n", str(requests), "-c", "10",
        "--workers", "2",
    )  # fmt: skip
    after = nginx.stub_status()
    conns = doc["connections"]
    assert isinstance(conns, dict)
    assert doc["requests"] == doc["ok"] == requests == after["requests"] - before["requests"] - 1
    assert conns["opened"] == after["accepts"] - before["accepts"] - 1 == 10
    assert doc["concurrency"] == 10


def test_records_cycled_over_the_processes_are_sent_as_often_as_alone(
    nginx_factory: NginxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three records over two processes: each is sent 1,000 times of -n 3000, as one process
    # sends them (it used to be 750, 1,500 and 750: each process cycled its own records).
    log = tmp_path / "access.log"
    server = logged_paths(nginx_factory, log)
    records = write_records(tmp_path / "r.jsonl", 3, redirect_record)
    doc = run_json(capsys, str(records), "-t", server.url, "-c", "2", "-w", "2", "-n", "3000")
    assert doc["requests"] == 3000
    assert Counter(log.read_text().splitlines()) == {f"/r/{i}": 1000 for i in range(3)}


def timed_nginx(nginx_factory: NginxFactory, log: Path) -> NginxServer:
    """An nginx that logs each request's connection (its serial number), time and target."""
    return nginx_factory(
        http="log_format timed '$connection $msec $request_uri';",
        server=f"access_log {log} timed;",
    )


def times_by_connection(log: Path) -> dict[str, list[float]]:
    """When each request of the run came in, by the connection it came on (from a
    :func:`timed_nginx` log; the tests' own status calls left out)."""
    times: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        connection, at, target = line.split()
        if target != "/status":
            times.setdefault(connection, []).append(float(at))
    return times


def test_one_record_over_two_processes_runs_the_duration_in_both(
    nginx_factory: NginxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each process's one connection is busy until the end (it used to be one connection
    # only). -d alone cycles the record for the duration, in each process as in one (it
    # used to send it once, and refuse a second process that would have none).
    log = tmp_path / "access.log"
    server = timed_nginx(nginx_factory, log)
    args = [str(one_record(tmp_path)), "-t", server.url, "-c", "2", "-w", "2"]
    doc = run_json(capsys, *args, "-d", "2s")
    times = times_by_connection(log)
    assert doc["connections"]["opened"] == len(times) == 2  # type: ignore[index]
    assert all(max(t) - min(t) > 1.5 for t in times.values()), times
    assert doc["requests"] == sum(len(t) for t in times.values())


@pytest.mark.parametrize(
    ("more", "why"),
    [
        (("-c", "2"), "--workers 2 sends each record once without --requests or --duration"),
        (("-c", "2", "-n", "1"), "--workers 2 needs at least one request each: --requests 1 is"),
        (("-c", "1", "-n", "10"), "--workers 2 needs at least one connection each"),
    ],
    ids=["one-record", "one-request", "one-connection"],
)
def test_a_process_that_could_send_nothing_stops_the_run_first(
    nginx: NginxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    more: tuple[str, ...],
    why: str,
) -> None:
    before = nginx.stub_status()
    args = [str(one_record(tmp_path)), "-t", nginx.url, "-w", "2", *more]
    assert main(["run", *args]) == 2
    assert nginx.stub_status()["requests"] == before["requests"] + 1  # nothing was sent
    assert why in capsys.readouterr().err
