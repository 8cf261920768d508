"""``--prometheus-listen``: the run's figures served to Prometheus while it goes on, scraped by
urllib during and after a run and by a real Prometheus server, each held to the run's own
summary; and the latency histogram's fixed buckets, counted from tether's own."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import interrupt_run, write_records
from servers import EchoServer, ThreadServer, free_port, keepalive_handler, prometheus_server
from servers import response as http_response
from tether.cli import main
from tether.metrics.histogram import Histogram

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def records(path: Path) -> Path:
    """A record that matches, one whose response does not (404, not 200), one tagged."""
    rows = [
        {"url": "/", "expect": {"status": 200}},
        {"url": "/missing", "expect": {"status": 200}},
        {"url": "/tagged", "tag": "tagged"},
    ]
    return write_records(path, len(rows), rows.__getitem__)


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with EchoServer({"/missing": http_response(404, b"no")}) as srv:
        yield srv


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels (prometheus_client's own parser)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


class Scraper(threading.Thread):
    """Scrapes ``url`` every 0.1 s, as Prometheus would, until it has the final figures
    (bounded: 30 s). A refused connection is the endpoint not up yet."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.scrapes: list[Samples] = []

    def run(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    samples = parse(answer.read().decode())
            except OSError:
                time.sleep(0.05)
                continue
            self.scrapes.append(samples)
            if total(samples, "tether_run_finished"):
                return
            time.sleep(0.1)


def run_served(argv: list[str], out: Path) -> tuple[int, dict[str, Any]]:
    status = main(["run", *argv, "--json", str(out), "-q"])
    doc: dict[str, Any] = json.loads(out.read_text())
    return status, doc


@pytest.mark.parametrize("model", [["-c", "2"], ["--rate", "400"]], ids=["closed", "open"])
def test_metrics_scraped_during_and_after_a_run_match_its_summary(
    server: EchoServer, tmp_path: Path, model: list[str]
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    scraper = Scraper(f"http://{listen}/metrics")
    scraper.start()
    argv = [str(records(tmp_path / "r.jsonl")), "-t", server.url, *model, "-d", "1.5s"]
    status, doc = run_served([*argv, "--prometheus-listen", listen], tmp_path / "s.json")
    scraper.join(10)
    assert status == 1  # the planted mismatches
    live = [s for s in scraper.scrapes if not total(s, "tether_run_finished")]
    final = scraper.scrapes[-1]
    # Scraped while it ran, with requests counted, and once after, with its final figures.
    assert any(total(s, "tether_requests_total") > 0 for s in live)
    assert total(final, "tether_run_finished") == 1
    assert all(name.startswith("tether_") for name, _ in final)
    assert total(final, "tether_requests_total") == doc["requests"] > 0
    for code, n in doc["status"].items():
        assert total(final, "tether_requests_total", status=code) == n
    assert total(final, "tether_requests_total", status="error") == doc["errors"] == 0
    assert total(final, "tether_mismatches_total") == doc["mismatches"] > 0
    for row in doc["groups"]:
        by = {"ok": row["ok"], "mismatch": row["mismatches"], "error": row["errors"]}
        for result, n in by.items():
            assert (
                total(final, "tether_group_requests_total", group=row["group"], result=result) == n
            )
    assert total(final, "tether_latency_seconds_count") == doc["requests"]
    assert total(final, "tether_latency_seconds_bucket", le="+Inf") == doc["requests"]
    assert total(final, "tether_group_latency_seconds_count") == doc["requests"]
    conns = doc["connections"]
    assert total(final, "tether_connections_opened_total") == conns["opened"]
    assert total(final, "tether_connections_reused_total") == conns["reused"]
    assert conns["opened"] + conns["reused"] == doc["requests"]
    for reason, n in conns["closed"].items():
        assert total(final, "tether_connections_closed_total", reason=reason) == n
    assert total(final, "tether_connections_open") == 0
    assert total(final, "tether_run_info", engine=doc["engine"]) == 1
    if doc["rate_target"] is not None:  # the open model's own figures
        assert total(final, "tether_rate_target") == doc["rate_target"] == 400
        assert total(final, "tether_late_total") == doc["late"]
        assert total(final, "tether_inflight_peak") == doc["peak_inflight"] > 0
        assert total(final, "tether_service_seconds_count") == doc["requests"]


def test_the_latency_buckets_are_tethers_own_counts_at_fixed_bounds() -> None:
    from tether.live.exporter import LATENCY_BOUNDS_S, latency

    values = [v for v in range(0, 12_000_000, 997)] + [24_995, 25_000, 999_950]
    hist = Histogram()
    hist.record_many(values)
    got = latency(hist)
    assert got.count == len(values) and got.sum_s == sum(values) / 1e6
    for bound, n in zip(LATENCY_BOUNDS_S, got.cumulative, strict=True):
        below = sum(v < bound * 1e6 for v in values)
        if bound <= 0.01:  # each of these starts a bucket: exact
            assert n == below
        else:  # else short only by the values within 1/1024 below the bound
            assert below - sum(bound * 1e6 * (1 - 1 / 1024) <= v < bound * 1e6 for v in values) <= n
            assert n <= below


def test_final_metrics_not_scraped_end_the_wait_at_the_linger(
    server: EchoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    argv = [str(records(tmp_path / "r.jsonl")), "-t", server.url, "-n", "30"]
    started = time.monotonic()
    status = main(["run", *argv, "--prometheus-listen", listen, "--prometheus-linger", "0.5s"])
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert status == 1
    assert f"serving the final metrics at http://{listen}/metrics until they are scraped" in err
    assert "the final metrics were not scraped" in err


def test_a_stopped_run_does_not_wait_for_a_scrape(server: EchoServer, tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    argv = [str(records(tmp_path / "r.jsonl")), "-t", server.url, "-d", "60"]
    started = time.monotonic()
    code, stdout = interrupt_run(
        [*argv, "--prometheus-listen", listen], lambda: len(server.captured) > 100
    )
    # A stop signal means now: the summary, and no 15 s wait for a scrape of it.
    assert code == 130 and "interrupted" in stdout
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--prometheus-listen", "9464"], "give HOST:PORT"),
        (["--prometheus-listen", "127.0.0.1:9464", "--workers", "2"], "not with --workers"),
    ],
    ids=["no-host", "workers"],
)
def test_a_listen_that_cannot_serve_is_a_usage_error(
    server: EchoServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    said: str,
) -> None:
    argv = ["run", str(records(tmp_path / "r.jsonl")), "-t", server.url, "-n", "6", *extra]
    assert main(argv) == 2
    assert said in capsys.readouterr().err
    assert server.captured == []  # nothing was sent


def test_a_listen_address_in_use_is_a_usage_error_before_anything_is_sent(
    server: EchoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ThreadServer(keepalive_handler()) as taken:
        listen = f"127.0.0.1:{taken.port}"
        argv = ["run", str(records(tmp_path / "r.jsonl")), "-t", server.url, "-n", "6"]
        assert main([*argv, "--prometheus-listen", listen]) == 2
    assert f"--prometheus-listen {listen}: cannot listen there" in capsys.readouterr().err
    assert server.captured == []


def test_a_real_prometheus_scrapes_the_runs_request_count(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    with (
        ThreadServer(keepalive_handler()) as target,
        prometheus_server(tmp_path / "prometheus", listen, interval="1s") as prometheus,
    ):
        argv = [str(records(tmp_path / "r.jsonl")), "-t", target.url, "-c", "2", "-d", "3s"]
        argv += ["--prometheus-listen", listen, "--prometheus-linger", "10s"]
        status, doc = run_served(argv, tmp_path / "s.json")
        # The run waited for a scrape of its final figures; Prometheus stores that scrape's
        # samples a moment after it has read them. (last_over_time: once tether has gone,
        # the next failed scrape marks the series stale, and an instant value vanishes.)
        finished = "max(last_over_time(tether_run_finished[5m]))"
        deadline = time.monotonic() + 10
        while prometheus.value(finished) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert prometheus.value(finished) == 1
        assert prometheus.value("min_over_time(tether_run_finished[5m])") == 0  # scraped live
        requests = prometheus.value("sum(last_over_time(tether_requests_total[5m]))")
        opened = prometheus.value("sum(last_over_time(tether_connections_opened_total[5m]))")
    assert status == 0
    assert requests == doc["requests"] > 0
    assert opened == doc["connections"]["opened"]


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def test_idle_connections_on_the_metrics_port_are_bounded_and_timed_out(
    server: EchoServer, tmp_path: Path
) -> None:
    # A hundred connections that never send a request once held a thread each for the
    # whole run (and slowed it): past MOST_SCRAPERS they are closed as they come, and the
    # rest once REQUEST_TIMEOUT_S has passed; a scrape then goes through.
    from tether.live.prometheus import MOST_SCRAPERS, REQUEST_TIMEOUT_S

    listen = f"127.0.0.1:{free_port()}"
    argv = ["run", str(records(tmp_path / "r.jsonl")), "-t", server.url, "--rate", "200"]
    argv += ["-d", f"{REQUEST_TIMEOUT_S + 4:g}s", "--prometheus-listen", listen, "-q"]
    argv += ["--prometheus-linger", "0.5s"]
    run = subprocess.Popen([sys.executable, "-m", "tether", *argv], stderr=subprocess.PIPE)
    try:
        host, port = listen.rsplit(":", 1)
        deadline = time.monotonic() + 10
        while _threads(run.pid) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the endpoint's own thread up
        before = _threads(run.pid)
        idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(100)]
        time.sleep(0.5)
        held = _threads(run.pid)
        assert held <= before + MOST_SCRAPERS, (before, held)
        for sock in idle:
            sock.settimeout(REQUEST_TIMEOUT_S + 3)
        started = time.monotonic()
        closed = [sock.recv(1) == b"" for sock in idle]  # each ends: at once, or timed out
        assert all(closed) and time.monotonic() - started < REQUEST_TIMEOUT_S + 3
        for sock in idle:
            sock.close()
        with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as answer:
            assert "tether_requests_total" in answer.read().decode()
    finally:
        _, err = run.communicate(timeout=60)
    assert run.returncode == 1, err.decode()  # the records' planted mismatches
    assert b"Traceback" not in err and b"Exception" not in err, err.decode()
