"""The watch: each source reads real output (the kernel's socket tables, nginx's stub_status)
or its exact format, and a watched run says when the server's connections pile up."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

import tether
from servers import ConnInfo, NginxServer, ThreadServer, read_request, response
from tether.cli import main
from tether.errors import InputError
from tether.model import Record
from tether.watch import nginx as stub_status
from tether.watch import parse_source, port, pprof, prom
from tether.watch.sampler import MAX_POINTS, Track
from tether.watch.verdict import Counted, allowance, cross_check, leak_verdict

# --- port: the kernel's own socket tables --------------------------------------------------------


@contextmanager
def listener() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server


def wait_for(figures: dict[str, float], key: str, port_number: int, want: float) -> float:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        figures = port.read(port_number)
        if figures[key] == want:
            break
        time.sleep(0.02)
    return figures[key]


def test_port_counts_the_servers_sockets_by_state() -> None:
    with listener() as server, ExitStack() as stack:
        number = server.getsockname()[1]
        clients = [
            stack.enter_context(socket.create_connection(server.getsockname())) for _ in "abc"
        ]
        accepted = [stack.enter_context(server.accept()[0]) for _ in clients]
        assert wait_for({}, "established", number, 3) == 3
        assert port.read(number)["open"] == 3
        clients[0].close()  # the client leaves; the server has not closed its side
        assert wait_for({}, "close_wait", number, 1) == 1
        assert port.read(number)["open"] == 3  # CLOSE_WAIT is still the server's to close
        accepted[1].close()  # the server closes first, then the client: the server's side
        clients[1].close()  # is the one left in TIME_WAIT
        assert wait_for({}, "time_wait", number, 1) == 1


def test_port_parse_skips_the_listener_and_other_ports() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
        "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0\n"
        "   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0\n"
        "   3: 0100007F:1F90 0100007F:C351 08 00000000:00000000 00:00000000 00000000     0\n"
    )
    assert port.parse(table, 8080) == {"ESTABLISHED": 1, "CLOSE_WAIT": 1}


# --- nginx, pprof, prom: their exact formats -----------------------------------------------------


def test_nginx_parses_a_real_stub_status(nginx: NginxServer) -> None:
    with urllib.request.urlopen(f"{nginx.url}/status") as page:
        figures = stub_status.parse(page.read().decode())
    assert set(figures) == {
        "active",
        "accepts",
        "handled",
        "requests",
        "reading",
        "writing",
        "waiting",
    }
    assert figures["active"] >= 1 and figures["accepts"] >= 1  # this request's own


def test_nginx_refuses_another_page() -> None:
    with pytest.raises(ValueError, match="not an nginx stub_status page"):
        stub_status.parse("hello\n")


# The format of Go's goroutine profile at debug=1 (file paths shortened), as a net/http server
# with net/http/pprof writes it: 3 idle keep-alive connections and the one asking.
GOROUTINES = """goroutine profile: total 8
3 @ 0x43a5d6 0x4330f7 0x46b5e4 0x4a0f4b 0x5d1c07
#	0x46b5e3	internal/poll.runtime_pollWait+0x83	/go/src/runtime/netpoll.go:305
#	0x4a0f4a	internal/poll.(*pollDesc).wait+0x4a	/go/src/internal/poll/fd_poll_runtime.go:84
#	0x5d1c06	net/http.(*conn).serve+0x1066	/go/src/net/http/server.go:1995

1 @ 0x43a5d6 0x4330f7 0x46b5e4 0x4a0f4b 0x4a6a0d 0x5d8a2e
#	0x5d8a2d	net/http.(*Server).Serve+0x38d	/go/src/net/http/server.go:3070

1 @ 0x43a5d6 0x5e0c7d
#	0x5e0c7c	net/http/pprof.handler.ServeHTTP+0x59c	/go/src/net/http/pprof/pprof.go:261
#	0x5d1c06	net/http.(*conn).serve+0x1066	/go/src/net/http/server.go:1995

3 @ 0x43a5d6 0x40703a
#	0x407039	runtime.gopark+0xd6	/go/src/runtime/proc.go:363
"""


def test_pprof_parses_a_real_go_server(go_server: str) -> None:
    with urllib.request.urlopen(f"{go_server}/debug/pprof/goroutine?debug=1") as page:
        figures = pprof.parse(page.read().decode())
    assert figures["serving"] >= 1  # this request's own connection
    assert figures["goroutines"] > figures["serving"]  # main, the listener, ...


def test_a_leak_shows_in_a_go_servers_goroutines(go_server: str, tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/", "expect": {"status": 200}}\n')
    out = tmp_path / "summary.json"
    watch = f"pprof:{go_server}/debug/pprof/goroutine?debug=1"
    args = ["run", str(records), "-t", go_server, "-n", "200", "-q", "--json", str(out)]
    assert main([*args, "--leak", "--watch", watch, "--watch-interval", "0.1"]) == 0
    verdicts = json.loads(out.read_text())["watch"]["leak_verdicts"]
    assert len(verdicts) == 1 and "goroutines serving HTTP connections grew from" in verdicts[0]
    assert main([*args, "-c", "2", "--watch", watch, "--fail-on-leak"]) == 0


def test_pprof_counts_goroutines_serving_connections() -> None:
    assert pprof.parse(GOROUTINES) == {"goroutines": 8, "serving": 4}  # 3 idle + this one
    with pytest.raises(ValueError, match="not a goroutine profile"):
        pprof.parse("404 page not found\n")


METRICS = """# HELP http_open_connections Connections being served.
# TYPE http_open_connections gauge
http_open_connections{listener="main",note="a } b"} 3
http_open_connections{listener="admin"} 1 1700000000000
# TYPE conn_accepted_total counter
conn_accepted_total 4811
http_open_connections_created 12
"""


def test_prom_sums_one_metric_over_its_labels() -> None:
    assert prom.parse(METRICS, "http_open_connections") == (4.0, "gauge")
    assert prom.parse(METRICS, "conn_accepted_total") == (4811.0, "counter")
    with pytest.raises(ValueError, match="no sample of metric 'go_goroutines'"):
        prom.parse(METRICS, "go_goroutines")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("8080", "expected port:N"),
        ("tcp:8080", "expected port:N"),
        ("port:http", "must be a number"),
        ("port:70000", "must be a number"),
        ("nginx:localhost/status", "needs an http"),
        ("prom:http://h/metrics", "name the metric"),
    ],
)
def test_bad_sources_are_named(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_source(spec)
    assert spec in str(caught.value)


def test_sources_parse() -> None:
    assert parse_source("port:08080").where == "8080"
    source = parse_source("prom:http://h:9/metrics#go_goroutines")
    assert (source.where, source.metric, source.open_metric) == (
        "http://h:9/metrics",
        "go_goroutines",
        "value",
    )


# --- verdicts and series -------------------------------------------------------------------------


def test_leak_verdict_fires_only_past_what_the_concurrency_needs() -> None:
    steady = Counted(0, 8, 8)
    assert leak_verdict("x", Counted(1, 99, 1 + allowance(8)), steady, 5000, 8) is None
    server, tethers = Counted(3, 4811, 4811), Counted(0, 4808, 4808)
    sentence = leak_verdict("server open connections (port 8080)", server, tethers, 5000, 1)
    assert sentence == (
        "server open connections (port 8080) grew from 3 to 4,811 over 5,000 requests at "
        "concurrency 1, and tether's own open connections grew with it from 0 to 4,808: the "
        "growth is tether's, its connections are not being reused or closed"
    )
    # Nothing sent: not the client's doing.
    assert leak_verdict("x", Counted(0, 500, 500), steady, 0, 1) is None


def test_leak_verdict_says_whose_the_growth_is() -> None:
    elsewhere = leak_verdict("x", Counted(2, 304, 304), Counted(0, 4, 4), 1000, 2)
    assert elsewhere == (
        "x grew from 2 to 304 over 1,000 requests at concurrency 2 while tether's own open "
        "connections never rose above 4: the growth came from another client of this server, "
        "not from tether"
    )
    both = leak_verdict("x", Counted(0, 600, 600), Counted(0, 300, 300), 300, 1)
    assert both is not None and both.endswith(
        "the growth is tether's, its connections are not being reused or closed; 300 more "
        "came from other clients of this server"
    )


def test_cross_check_sentences() -> None:
    assert cross_check(50, 50, 0, 0).endswith("tether opened 50: the two agree")
    assert "2 came from other clients" in cross_check(52, 50, 0, 0)
    assert "(and the watch 1)" in cross_check(51, 50, 1, 0)
    assert "3 not seen by nginx (tether counted 0 failed connects)" in cross_check(47, 50, 0, 0)


def test_a_series_stays_bounded_and_keeps_exact_peaks() -> None:
    track = Track(parse_source("port:1"))
    for i in range(10 * MAX_POINTS):
        track.add(i * 0.5, i, {"open": float(i % 1000)})
    doc = track.to_dict()
    assert len(doc["series"]["seconds"]) <= MAX_POINTS
    assert doc["figures"]["open"] == {
        "first": 0.0,
        "peak": 999.0,
        "last": float((10 * MAX_POINTS - 1) % 1000),
    }
    assert doc["series"]["seconds"] == sorted(doc["series"]["seconds"])


# --- watched runs against nginx ------------------------------------------------------------------


def watched_run(
    nginx: NginxServer, tmp_path: Path, *more: str, count: int = 300
) -> tuple[int, dict[str, Any]]:
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"url": "/", "expect": {"status": 200}}) + "\n")
    out = tmp_path / "summary.json"
    args = ["run", str(records), "-t", nginx.url, "-n", str(count), "-q", "--json", str(out)]
    args += ["--watch", f"nginx:{nginx.url}/status", "--watch", f"port:{nginx.port}"]
    args += ["--watch-interval", "0.1", *more]
    code = main(args)
    return code, json.loads(out.read_text())


def test_a_leaking_run_gets_a_verdict_and_fails_its_gate(
    nginx: NginxServer, tmp_path: Path
) -> None:
    code, doc = watched_run(nginx, tmp_path, "--leak", "--fail-on-leak")
    watch = doc["watch"]
    assert len(watch["leak_verdicts"]) == 2  # nginx's count and the kernel's both saw it
    assert "nginx active connections grew from" in watch["leak_verdicts"][0]
    assert "over 300 requests at concurrency 1" in watch["leak_verdicts"][0]
    by_source = {s["source"].split(":")[0]: s for s in watch["sources"]}
    assert by_source["port"]["figures"]["open"]["last"] >= 300
    assert by_source["nginx"]["figures"]["active"]["peak"] >= 300
    assert watch["cross_checks"][0].endswith("tether opened 300: the two agree")
    assert code == 3 and doc["gate_failures"] == watch["leak_verdicts"]


def test_a_correct_run_stays_quiet_and_agrees_with_nginx(
    nginx: NginxServer, tmp_path: Path
) -> None:
    code, doc = watched_run(nginx, tmp_path, "-c", "4", "--fail-on-leak", count=2000)
    watch = doc["watch"]
    assert code == 0 and watch["leak_verdicts"] == []
    assert watch["cross_checks"] == [
        "nginx accepted 4 connections during the run; tether opened 4: the two agree"
    ]
    sources = {s["source"].split(":")[0]: s for s in watch["sources"]}
    assert sources["port"]["figures"]["open"]["peak"] <= 4 + 1  # + the watch's own
    assert sources["nginx"]["samples"] >= 2 and sources["nginx"]["errors"] == 0


def test_an_unreachable_source_is_counted_not_fatal(nginx: NginxServer, tmp_path: Path) -> None:
    with listener() as closed:
        dead = closed.getsockname()[1]
    code, doc = watched_run(nginx, tmp_path, "--watch", f"nginx:http://127.0.0.1:{dead}/status")
    dead_source = doc["watch"]["sources"][-1]
    assert code == 0 and doc["requests"] == 300
    assert dead_source["samples"] == 0 and dead_source["errors"] >= 2
    assert "127.0.0.1" in dead_source["last_error"]


def test_the_library_watches_too(nginx: NginxServer) -> None:
    records = [Record("GET", "/")] * 50
    summary = tether.run(records, target=nginx.url, watch=[f"port:{nginx.port}"], leak=True)
    assert summary.watch is not None
    assert "grew from" in summary.watch["leak_verdicts"][0]


def test_fail_on_leak_needs_a_watch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "http://127.0.0.1:1/"}\n')
    assert main(["run", str(records), "--fail-on-leak"]) == 2
    assert "--fail-on-leak needs a server to watch" in capsys.readouterr().err


# --- whose growth: another client's or tether's ----------------------------------------------

OTHERS = 200  # connections the "other client" opens and holds during the run


def held_until(released: threading.Event) -> ThreadServer:
    """Keep-alive; every response waits (10 s at most) for ``released``: the run cannot end
    before the other client has opened its connections."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (await read_request(reader)) is not None:
            conn.count_request()
            for _ in range(1000):  # 10 s at most
                if released.is_set():
                    break
                await asyncio.sleep(0.01)
            writer.write(response(200, b"ok"))
            await writer.drain()

    return ThreadServer(handler)


@contextmanager
def another_client_leaking(server: ThreadServer, released: threading.Event) -> Iterator[None]:
    """Once the run's first request has arrived (after the watch's baseline), open and hold
    :data:`OTHERS` connections to ``server``, then release its responses; close them all when
    the block ends."""
    held: list[socket.socket] = []

    def leak() -> None:
        try:
            if server.wait_until(lambda: server.requests >= 1, timeout=10):
                held.extend(
                    socket.create_connection((server.host, server.port), 5) for _ in range(OTHERS)
                )
                # The kernel's table, which the watch reads, holds them all before any reply.
                server.wait_until(lambda: port.read(server.port)["open"] >= OTHERS, timeout=5)
        finally:
            released.set()

    thread = threading.Thread(target=leak, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(15)
        for sock in held:
            sock.close()


def run_watching(server: ThreadServer, tmp_path: Path, *more: str) -> dict[str, Any]:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/", "expect": {"status": 200}}\n')
    out = tmp_path / "summary.json"
    args = ["run", str(records), "-t", server.url, "-q", "--json", str(out), "-c", "2"]
    assert main([*args, "--watch", f"port:{server.port}", "--watch-interval", "0.1", *more]) == 0
    watch: dict[str, Any] = json.loads(out.read_text())["watch"]
    return watch


def test_another_clients_leak_is_not_called_tethers(tmp_path: Path) -> None:
    released = threading.Event()
    with held_until(released) as server, another_client_leaking(server, released):
        watch = run_watching(server, tmp_path, "-n", "50")
    [verdict] = watch["leak_verdicts"]
    assert f"server open connections (port {server.port}) grew from 0 to" in verdict
    assert "while tether's own open connections never rose above 2" in verdict
    assert verdict.endswith("the growth came from another client of this server, not from tether")
    [source] = watch["sources"]
    assert source["figures"]["open"]["last"] >= OTHERS
    assert source["figures"]["tether_open"]["peak"] <= 2


def test_tethers_own_leak_is_called_tethers(tmp_path: Path) -> None:
    released = threading.Event()
    released.set()  # no other client: nothing to wait for
    with held_until(released) as server:
        watch = run_watching(server, tmp_path, "-n", "100", "--leak")
    [verdict] = watch["leak_verdicts"]
    assert "and tether's own open connections grew with it from 0 to 100" in verdict
    assert "the growth is tether's, its connections are not being reused or closed" in verdict
    assert "other client" not in verdict
