"""A run over a real Dask cluster (a scheduler and two workers started here, on 127.0.0.1)
against nginx: the merged summary is the server's own count; a worker killed mid-run leaves a
partial summary naming it; a cluster out of reach is a clear error."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers import interrupt_run, shape_problems
from servers import DaskCluster, NginxFactory, NginxServer, dask_cluster
from test_workers import timed_nginx, times_by_connection
from tether.cli import main
from tether.document import SummaryDocument
from tether.run.cluster import TOPIC


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    with dask_cluster(tmp_path, workers=2) as started:
        yield started


def run_json(
    tmp_path: Path,
    nginx: NginxServer,
    cluster: DaskCluster,
    *more: str,
    records: Path | None = None,
) -> tuple[int, dict[str, object]]:
    """Run ``records`` (else ten records of its own) on the cluster; its exit code and
    summary."""
    if records is None:
        records = tmp_path / "r.jsonl"
        records.write_text("".join(json.dumps({"url": f"/r/{i}"}) + "\n" for i in range(10)))
    out = tmp_path / "s.json"
    args = ["run", str(records), "-t", nginx.url, "--cluster", cluster.address, "-q"]
    code = main([*args, "--json", str(out), *more])
    return code, json.loads(out.read_text())


@dataclass
class Heard:
    """What the workers have reported so far, as the run's own caller hears it (Dask
    events): each worker's latest count of requests done, by its address; and each worker's
    process id, by its address."""

    pids: dict[str, int]
    requests: dict[str, int] = field(default_factory=dict)

    def reported(self, pid: int) -> bool:
        """Whether the worker with process ``pid`` has reported some requests done."""
        return any(self.requests.get(a, 0) > 0 for a, p in self.pids.items() if p == pid)


@contextlib.contextmanager
def reports(cluster: DaskCluster) -> Iterator[Heard]:
    """Listen to the workers' progress reports for the length of the block: tests wait on
    them, not on a clock, which a slow machine (or a fast one) would prove wrong."""
    from distributed import Client

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        heard = Heard(client.run(os.getpid))

        def note(event: tuple[float, dict[str, Any]]) -> None:
            _, message = event
            heard.requests[message["worker"]] = int(message["requests"])

        client.subscribe_topic(TOPIC, note)
        yield heard


@contextlib.contextmanager
def kill_once_reported(cluster: DaskCluster, victim: subprocess.Popen[bytes]) -> Iterator[None]:
    """SIGKILL ``victim`` (a worker's process) as soon as it has reported progress with some
    requests done."""
    with reports(cluster) as heard:
        over = threading.Event()

        def kill() -> None:
            while not over.wait(0.05):
                if heard.reported(victim.pid):
                    victim.send_signal(signal.SIGKILL)
                    return

        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
        try:
            yield
        finally:
            over.set()
            killer.join(10)


def test_the_merged_summary_is_the_servers_count(
    nginx: NginxServer, cluster: DaskCluster, tmp_path: Path
) -> None:
    before = nginx.stub_status()
    code, doc = run_json(tmp_path, nginx, cluster, "-c", "4", "-n", "2000")
    after = nginx.stub_status()
    assert code == 0 and doc["requests"] == 2000 and doc["partial"] is False
    assert doc["requests"] == after["requests"] - before["requests"] - 1  # less our own call
    connections = doc["connections"]
    assert isinstance(connections, dict)
    assert connections["opened"] == after["accepts"] - before["accepts"] - 1 == 4
    assert len(doc["timeline"]) >= 1  # type: ignore[arg-type]


def test_a_worker_killed_mid_run_leaves_a_partial_summary(
    nginx: NginxServer, cluster: DaskCluster, tmp_path: Path
) -> None:
    victim = cluster.workers[1]
    with kill_once_reported(cluster, victim):
        started = time.monotonic()
        code, doc = run_json(tmp_path, nginx, cluster, "-c", "2", "-d", "5", "-n", "10000000")
    assert code == 1 and time.monotonic() - started < 30  # a partial run is not a passing one
    [lost] = doc["lost_workers"]  # type: ignore[misc]
    assert doc["partial"] is True and lost["error"] == "left the cluster"
    assert lost["reported"]["requests"] > 0  # what it had done before it died
    assert doc["requests"] > 0  # the survivor's share stands
    # The parts only a partial cluster run has hold to their TypedDicts (test_document.py
    # holds the rest).
    seen: set[str] = set()
    assert shape_problems(doc, SummaryDocument, "doc", seen) == []
    assert {"LostWorker", "WorkerReport"} <= seen


def test_cluster_workers_picks_how_many_workers_run(
    nginx: NginxServer, cluster: DaskCluster, tmp_path: Path
) -> None:
    # Two workers each need a connection of their own: one connection is refused, unless the
    # run asks for one worker only, which then sends every request itself.
    records = tmp_path / "one.jsonl"
    records.write_text('{"url": "/"}\n')
    args = ["run", str(records), "-t", nginx.url, "--cluster", cluster.address, "-c", "1"]
    assert main([*args, "-q"]) == 2
    code, doc = run_json(tmp_path, nginx, cluster, "-c", "1", "-n", "50", "--cluster-workers", "1")
    assert code == 0 and doc["requests"] == 50
    assert doc["connections"]["opened"] == 1  # type: ignore[index]


def test_a_cluster_out_of_reach_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/"}\n')
    started = time.monotonic()
    args = ["run", str(records), "-t", "http://127.0.0.1:1", "--cluster", "tcp://127.0.0.1:1"]
    assert main([*args, "--connect-timeout", "2"]) == 2
    assert time.monotonic() - started < 15
    assert "cannot reach the Dask cluster at tcp://127.0.0.1:1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_a_stop_signal_reports_what_came_back(
    nginx: NginxServer, cluster: DaskCluster, tmp_path: Path, signum: int, status: int
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/a"}\n{"url": "/b"}\n')  # a record for each worker's share
    args = [str(records), "-t", nginx.url, "--cluster", cluster.address, "-c", "2"]
    args += ["-d", "8", "-n", "100000000", "-q", "--json", "-"]
    # Interrupted once each worker has reported some requests done (they do each second).
    with reports(cluster) as heard:
        everyone = [w.pid for w in cluster.workers]
        code, out = interrupt_run(
            args, lambda: all(heard.reported(pid) for pid in everyone), signum
        )
    doc = json.loads(out)
    assert code == status and doc["interrupted"] is True
    assert doc["signal"] == signal.Signals(signum).name
    assert {w["error"] for w in doc["lost_workers"]} == {"interrupted"}
    assert all(w["reported"]["requests"] > 0 for w in doc["lost_workers"])


def test_one_record_over_two_workers_is_the_whole_run(
    nginx: NginxServer, cluster: DaskCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both workers send the one record, each its part of an odd -n over its half of -c (it
    # used to be one worker alone: 1,001 requests over 5 connections, exit 0).
    records = tmp_path / "one.jsonl"
    records.write_text('{"url": "/"}\n')
    args = ["run", str(records), "-t", nginx.url, "--cluster", cluster.address, "-c", "10"]
    before = nginx.stub_status()
    code, doc = run_json(tmp_path, nginx, cluster, "-c", "10", "-n", "2001", records=records)
    after = nginx.stub_status()
    assert code == 0 and doc["requests"] == 2001 == after["requests"] - before["requests"] - 1
    connections = doc["connections"]
    assert isinstance(connections, dict)
    assert connections["opened"] == after["accepts"] - before["accepts"] - 1 == 10
    # Without -n each record goes out once: the second worker would have none to send.
    capsys.readouterr()
    assert main([*args, "-q"]) == 2
    assert nginx.stub_status()["requests"] == after["requests"] + 1  # nothing was sent
    assert "--cluster with 2 workers sends each record once" in capsys.readouterr().err


def test_one_record_over_two_workers_runs_the_duration_in_both(
    nginx_factory: NginxFactory, cluster: DaskCluster, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    server = timed_nginx(nginx_factory, log)
    records = tmp_path / "one.jsonl"
    records.write_text('{"url": "/"}\n')
    more = ("-c", "2", "-d", "2", "-n", "100000000")
    code, doc = run_json(tmp_path, server, cluster, *more, records=records)
    times = times_by_connection(log)
    assert code == 0 and doc["connections"]["opened"] == len(times) == 2  # type: ignore[index]
    assert all(max(t) - min(t) > 1.5 for t in times.values()), times
