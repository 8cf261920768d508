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
