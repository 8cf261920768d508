"""Runs against nginx, the real server no one here wrote: tether's ledger against nginx's own
stub_status counters. Each stub_status() read is itself one connection and one request."""

from __future__ import annotations

from pathlib import Path

import tether
from helpers import redirect_record, write_records
from servers import NginxFactory, NginxServer
from tether import CloseReason


def deltas(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    """(accepts, requests) between two stub_status reads, without the second read itself."""
    return after["accepts"] - before["accepts"] - 1, after["requests"] - before["requests"] - 1


def test_sequential_run_opens_exactly_one_connection(nginx: NginxServer, tmp_path: Path) -> None:
    records = write_records(tmp_path / "r.jsonl", 10_000, redirect_record)
    before = nginx.stub_status()
    summary = tether.run(records, target=nginx.url)
    accepts, requests = deltas(before, nginx.stub_status())
    assert summary.ledger.opened == 1 == accepts
    assert summary.requests == 10_000 == requests
    assert summary.ok == 10_000 and summary.errors == 0
    doc = summary.to_dict()
    assert doc["connections"]["reused"] + doc["connections"]["opened"] == doc["requests"]


def test_concurrent_run_opens_at_most_one_connection_per_worker(
    nginx: NginxServer, tmp_path: Path
) -> None:
    records = write_records(tmp_path / "r.jsonl", 5_000, redirect_record)
    before = nginx.stub_status()
    summary = tether.run(records, target=nginx.url, concurrency=20)
    accepts, requests = deltas(before, nginx.stub_status())
    assert summary.ledger.opened == accepts <= 20
    assert requests == 5_000 == summary.ok
    assert summary.ledger.closed_by_server == 0


def test_server_side_request_limit_is_accounted(
    nginx_factory: NginxFactory, tmp_path: Path
) -> None:
    """nginx closes every connection after 100 requests: each close is counted as the
    server's, and the ledger still matches nginx's accepts exactly."""
    server = nginx_factory(server="keepalive_requests 100; keepalive_timeout 75s;")
    records = write_records(tmp_path / "r.jsonl", 1_000, redirect_record)
    before = server.stub_status()
    summary = tether.run(records, target=server.url)
    accepts, requests = deltas(before, server.stub_status())
    assert summary.ledger.opened == accepts == 10
    assert requests == 1_000 == summary.ok
    assert summary.ledger.closed[CloseReason.SERVER_CLOSE] == 10


def test_leak_mode_opens_a_connection_per_request(nginx: NginxServer, tmp_path: Path) -> None:
    records = write_records(tmp_path / "r.jsonl", 300, redirect_record)
    before = nginx.stub_status()
    summary = tether.run(records, target=nginx.url, leak=True)
    accepts, requests = deltas(before, nginx.stub_status())
    assert summary.ledger.opened == accepts == 300
    assert summary.ledger.peak_open == 300
    assert summary.ledger.closed[CloseReason.LEAKED] == 300
    assert requests == 300


def test_big_body_over_the_drain_limit_is_closed_undrained(
    nginx: NginxServer, tmp_path: Path
) -> None:
    records = write_records(tmp_path / "r.jsonl", 3, lambda i: {"url": "/big"})
    summary = tether.run(records, target=nginx.url)
    assert summary.ledger.opened == 3
    assert summary.ledger.closed_undrained == 3
    drained = tether.run(records, target=nginx.url, drain_limit=2 << 20)
    assert drained.ledger.opened == 1 and drained.ledger.closed_undrained == 0


def test_a_body_an_expectation_checks_is_read_whole_past_the_drain_limit(
    nginx: NginxServer, tmp_path: Path
) -> None:
    """A sha256 expectation on nginx's 1 MiB /big (over the 256 KiB drain limit) used to be a
    mismatch whatever the hash, and its connection closed undrained: the hash was of the
    first 256 KiB. It is read whole now (up to --max-body), hashed as it comes in."""
    import hashlib

    from servers import big_body

    digest = hashlib.sha256(big_body()).hexdigest()
    expects = [
        {"url": "/big", "expect": {"body": {"sha256": digest}}},
        {"url": "/big", "expect": {"body": {"contains": "xyz{|}"}}},  # kept whole
        {"url": "/big"},  # nothing checks it: the drain limit still stands
    ]
    records = write_records(tmp_path / "r.jsonl", 3, expects.__getitem__)
    before = nginx.stub_status()
    summary = tether.run(records, target=nginx.url)
    accepts, requests = deltas(before, nginx.stub_status())
    assert summary.ok == 3 and summary.to_dict()["mismatches"] == 0
    assert summary.ledger.closed[CloseReason.UNDRAINED] == 1  # the unchecked one only
    assert accepts == summary.ledger.opened == 1 and requests == 3  # one connection for all

    small = tether.run(records, target=nginx.url, max_body=512 * 1024)
    doc = small.to_dict()
    assert doc["mismatches"] == 2 and small.ledger.closed[CloseReason.UNDRAINED] == 3
    got = {m["field"]: m["got"] for m in doc["mismatch_examples"]}
    assert got["body.sha256"].startswith("body not read to its end (")
