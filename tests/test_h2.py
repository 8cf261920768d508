"""HTTP/2 (``--http2``, ``--http2-prior-knowledge``) against real servers: nginx over TLS and
h2c, Go's net/http over TLS, and a small server on the h2 library that counts what only a
server can (the most streams open at once). Every figure tether gives is held to the
server's own: nginx's stub_status, Go's counts, the h2 server's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import uvloop

import tether
from h2servers import Certs, GoH2, H2Behaviour, H2Nginx, H2Server, server_context
from helpers import redirect_record, shape_problems, write_records
from servers import NginxFactory, ThreadServer, keepalive_handler
from tether import CloseReason, Record
from tether.cli import main
from tether.document import H2Streams
from tether.engine.client import Client, compiled_path
from tether.engine.compiled import ENGINE
from tether.engine.options import ClientOptions
from tether.engine.request import request_head, split_url
from tether.model import Outcome


def deltas(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    """(accepts, requests) between two stub_status reads, without the second read itself."""
    return after["accepts"] - before["accepts"] - 1, after["requests"] - before["requests"] - 1


def fetch_all(
    url: str, records: list[Record], options: ClientOptions
) -> tuple[list[Outcome], Client]:
    """Each record fetched in turn on one client (closed at the end): outcomes and client."""

    async def go() -> tuple[list[Outcome], Client]:
        async with Client(options, target=url) as client:
            outcomes = [await client.fetch(record) for record in records]
        return outcomes, client

    return uvloop.run(go())


# --- 1. HTTP/2 over the same pool, records, checks and reports -------------------------------


def test_n_requests_at_c20_go_over_exactly_one_h2_connection(
    nginx_h2: H2Nginx, tmp_path: Path
) -> None:
    """2,000 checked requests, 20 in flight: nginx accepted one connection, tether opened
    one, and it carried them all as streams, many at once."""
    records = write_records(tmp_path / "r.jsonl", 2_000, redirect_record)
    before = nginx_h2.stub_status()
    summary = tether.run(
        records, target=nginx_h2.tls_url, concurrency=20, http2=True, cacert=nginx_h2.cacert
    )
    accepts, requests = deltas(before, nginx_h2.stub_status())
    doc = summary.to_dict()
    assert accepts == summary.ledger.opened == 1
    assert requests == summary.ok == 2_000 and summary.errors == 0
    assert doc["connections"]["protocol"] == {"h2": 2_000}
    h2 = doc["connections"]["h2"]
    assert h2 is not None and h2["connections"] == 1 and h2["streams"] == 2_000
    assert 1 < h2["peak_concurrent_streams"] <= 20  # multiplexed, never past -c
    assert doc["connections"]["reused"] + doc["connections"]["opened"] == 2_000
    assert doc["engine"] == ENGINE  # the compiled path speaks HTTP/2 too, when built


def test_h2c_with_prior_knowledge(nginx_h2: H2Nginx, tmp_path: Path) -> None:
    """nginx's ``listen ... http2`` on plain TCP speaks HTTP/2 only: with prior knowledge
    every request is answered over one connection; without it, none is."""
    records = write_records(tmp_path / "r.jsonl", 500, redirect_record)
    before = nginx_h2.stub_status()
    summary = tether.run(
        records, target=nginx_h2.h2c_url, concurrency=10, http2_prior_knowledge=True
    )
    accepts, requests = deltas(before, nginx_h2.stub_status())
    assert accepts == summary.ledger.opened == 1 and requests == summary.ok == 500
    assert summary.ledger.carried == {"h2": 500}

    plain = tether.run(records, target=nginx_h2.h2c_url, requests=3)
    assert plain.ok == 0 and plain.errors == 3  # HTTP/1.1 bytes to an h2c-only port


def test_a_go_net_http_server_speaks_h2_over_tls(go_h2: GoH2, tmp_path: Path) -> None:
    """Go's net/http negotiates h2 by ALPN on its own: it counts one connection accepted and
    every request over HTTP/2."""
    records = write_records(tmp_path / "r.jsonl", 500, lambda i: {"url": f"/{i}"})
    before = go_h2.stats()
    summary = tether.run(records, target=go_h2.url, concurrency=10, http2=True, cacert=go_h2.cacert)
    after = go_h2.stats()
    assert after["accepted"] - before["accepted"] == summary.ledger.opened == 1
    assert after["h2"] - before["h2"] == summary.ok == 500
    assert after["http1"] == before["http1"]
    assert summary.ledger.h2.peak > 1


def test_alpn_falls_back_to_http11_when_the_server_picks_it(h2_certs: Certs) -> None:
    """A TLS server that speaks HTTP/1.1 only: ``--http2`` offers h2, the server picks
    http/1.1, and the requests go over HTTP/1.1 (each outcome says so)."""
    context = server_context(h2_certs, alpn=("http/1.1",))
    options = ClientOptions(http2=True, cacert=h2_certs.cacert)
    with ThreadServer(keepalive_handler(b"plain"), ssl=context) as srv:
        outcomes, client = fetch_all(srv.url, [Record("GET", "/")] * 3, options)
    assert [(o.status, o.protocol, o.error) for o in outcomes] == [(200, "http/1.1", None)] * 3
    assert client.ledger.opened == 1 and client.ledger.carried == {"http/1.1": 3}
    assert client.ledger.h2.connections == 0


def test_an_h2_outcome_says_its_protocol(h2_certs: Certs) -> None:
    context = server_context(h2_certs)
    options = ClientOptions(http2=True, cacert=h2_certs.cacert)
    with H2Server(ssl=context) as srv:
        outcomes, _ = fetch_all(srv.url, [Record("GET", "/")] * 2, options)
    assert [(o.status, o.protocol, o.reused) for o in outcomes] == [
        (200, "h2", False),
        (200, "h2", True),
    ]
    assert outcomes[0].body_size == len(b"hello\n") and outcomes[0].headers["content-length"] == "6"


def test_the_compiled_path_speaks_http2_too() -> None:
    """A compiled send path is made for HTTP/2 runs as for HTTP/1.1 ones (when built)."""

    async def paths() -> list[object]:
        return [
            compiled_path(ClientOptions(**{flag: True}), 10)
            for flag in ("http2", "http2_prior_knowledge")
        ]

    made = uvloop.run(paths())
    assert [path is not None for path in made] == [ENGINE == "compiled"] * 2


def test_request_heads_become_h2_fields() -> None:
    """Pseudo-header fields first, Host as :authority, names in lower case, and the fields
    that only mean something to one HTTP/1.1 connection left out (RFC 9113 8.2.2)."""
    headers = (
        ("Host", "api.example.org"),
        ("Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("Upgrade", "h2c"),
        ("TE", "gzip"),
        ("X-Trace", "abc"),
    )
    request = request_head(
        "POST", split_url("https://x/a?b=1"), headers, b"{}", user_agent="t/1", close=True
    )
    assert request.h2_fields("https") == (
        (b":method", b"POST"),
        (b":scheme", b"https"),
        (b":authority", b"api.example.org"),
        (b":path", b"/a?b=1"),
        (b"user-agent", b"t/1"),
        (b"content-length", b"2"),
        (b"x-trace", b"abc"),
    )
    assert request.body == b"{}"


def test_the_server_gets_the_records_headers_as_h2_fields() -> None:
    """What the server received: the record's Host as :authority, no connection-specific
    field (an HTTP/2 server refuses a request with one as malformed), names in lower case."""
    headers = (
        ("Host", "api.example.org"),
        ("Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("Upgrade", "websocket"),
        ("X-Trace", "abc"),
    )
    record = Record("GET", "/x?y=1", headers=headers)
    with H2Server() as srv:
        outcomes, _ = fetch_all(srv.url, [record], ClientOptions(http2_prior_knowledge=True))
        (head,) = srv.heads
    assert outcomes[0].status == 200
    assert head == [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"api.example.org"),
        (b":path", b"/x?y=1"),
        (b"user-agent", b"tether/0.1"),
        (b"x-trace", b"abc"),
    ]


def test_keep_alive_off_and_connection_close_end_an_h2_connection() -> None:
    """One request per connection with keep-alive off; a record's Connection: close ends
    its connection once its response is in, as over HTTP/1.1."""
    records = [Record("GET", "/")] * 3
    with H2Server() as srv:
        off = ClientOptions(http2_prior_knowledge=True, disable_keep_alives=True)
        _, client = fetch_all(srv.url, records, off)
        assert client.ledger.opened == srv.accepted == 3
        assert client.ledger.closed[CloseReason.KEEP_ALIVE_OFF] == 3
        closing = [Record("GET", "/", headers=(("Connection", "close"),)), *records]
        _, client = fetch_all(srv.url, closing, ClientOptions(http2_prior_knowledge=True))
    assert client.ledger.opened == 2 and client.ledger.closed[CloseReason.REQUEST_CLOSE] == 1


def test_a_request_body_waits_for_the_servers_window(h2_certs: Certs) -> None:
    """A server that lets 4 KiB in at a time and gives its window back 50 ms late: a 64 KiB
    body goes out whole, and the waits are counted and timed as flow-control stalls."""
    behaviour = H2Behaviour(initial_window=4_096, window_delay=0.05)
    body = bytes(range(256)) * 256
    record = Record("POST", "/upload", body=body)
    with H2Server(behaviour) as srv:
        outcomes, client = fetch_all(srv.url, [record], ClientOptions(http2_prior_knowledge=True))
    assert outcomes[0].status == 200 and outcomes[0].error is None
    h2 = client.ledger.h2
    assert h2.flow_stalls >= 1 and h2.flow_stall_s >= 0.05


# --- the pool: one connection per key, another only when its streams are all busy ----------


def test_a_server_allowing_5_streams_never_sees_a_sixth() -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS 5, each response held 100 ms, 20 requests in flight:
    the server's own count of streams open at once on a connection never passes 5, and the
    pool opened a connection for each 5 busy streams."""
    behaviour = H2Behaviour(max_streams=5, hold=0.1)
    records = [Record("GET", f"/{i}") for i in range(60)]
    with H2Server(behaviour) as srv:
        summary = tether.run(records, target=srv.url, concurrency=20, http2_prior_knowledge=True)
        accepted = srv.accepted
    assert srv.peak_streams == 5 == summary.ledger.h2.peak
    assert summary.ok == 60 and summary.errors == 0
    assert summary.ledger.opened == accepted == 4


def test_nginx_with_5_concurrent_streams_refuses_none(
    nginx_factory: NginxFactory, h2_certs: Certs, tmp_path: Path
) -> None:
    """nginx resets a sixth stream with REFUSED_STREAM: none came."""
    from h2servers import start_h2_nginx

    server = start_h2_nginx(nginx_factory, h2_certs, "http2_max_concurrent_streams 5;")
    records = write_records(tmp_path / "r.jsonl", 300, redirect_record)
    before = server.stub_status()
    summary = tether.run(records, target=server.h2c_url, concurrency=20, http2_prior_knowledge=True)
    accepts, requests = deltas(before, server.stub_status())
    assert summary.ok == requests == 300 and summary.errors == 0
    assert summary.ledger.h2.reset_by_server == {} and summary.ledger.h2.retried == 0
    assert summary.ledger.h2.peak == 5
    assert accepts == summary.ledger.opened == 4


def test_at_one_connection_per_host_requests_wait_for_a_free_stream() -> None:
    """``--max-conns-per-host 1`` and a server allowing 5 streams: 20 requests in flight
    share the one connection, each waiting for a stream to end."""
    behaviour = H2Behaviour(max_streams=5, hold=0.02)
    records = [Record("GET", f"/{i}") for i in range(60)]
    with H2Server(behaviour) as srv:
        summary = tether.run(
            records,
            target=srv.url,
            concurrency=20,
            http2_prior_knowledge=True,
            max_conns_per_host=1,
        )
        accepted = srv.accepted
    assert summary.ok == 60 and summary.ledger.opened == accepted == 1
    assert srv.peak_streams == 5


def test_a_timeout_resets_its_stream_and_the_connection_carries_on() -> None:
    options = ClientOptions(http2_prior_knowledge=True, response_header_timeout=0.2)
    records = [Record("GET", "/slow/1"), Record("GET", "/")]
    with H2Server(H2Behaviour(slow=2.0)) as srv:
        outcomes, client = fetch_all(srv.url, records, options)
    assert [o.error_kind for o in outcomes] == ["timeout", None]
    assert client.ledger.opened == 1 and client.ledger.h2.reset_by_us == {"cancel": 1}


def test_an_idle_h2_connection_is_closed_at_the_idle_timeout() -> None:
    options = ClientOptions(http2_prior_knowledge=True, idle_timeout=0.2)

    async def go(url: str) -> tuple[list[str], Client]:
        async with Client(options, target=url) as client:
            first = await client.fetch(Record("GET", "/"))
            await asyncio.sleep(0.5)  # the sweep closes it meanwhile, unasked
            swept = client.ledger.closed[CloseReason.IDLE_TIMEOUT]
            second = await client.fetch(Record("GET", "/"))
        return [first.protocol, str(swept), second.protocol], client

    with H2Server() as srv:
        seen, client = uvloop.run(go(srv.url))
    assert seen == ["h2", "1", "h2"] and client.ledger.opened == 2


def test_the_open_model_shares_one_h2_connection(nginx_h2: H2Nginx) -> None:
    records = [Record("GET", f"/r/{i}") for i in range(20)]
    before = nginx_h2.stub_status()
    summary = tether.run(
        records, target=nginx_h2.h2c_url, rate=400, duration=1.0, http2_prior_knowledge=True
    )
    accepts, requests = deltas(before, nginx_h2.stub_status())
    assert summary.errors == 0 and requests == summary.requests >= 300
    assert accepts == summary.ledger.opened == 1


# --- 2. the ledger: GOAWAY, RST_STREAM, refused streams -------------------------------------


def test_goaway_is_survived_and_every_retry_counted(
    nginx_factory: NginxFactory, h2_certs: Certs, tmp_path: Path
) -> None:
    """nginx says GOAWAY after 100 requests on a connection (``keepalive_requests 100``):
    the streams up to its last stream id are answered, those above it were never processed
    and go again on a new connection. No GET fails; nginx served each request once."""
    from h2servers import start_h2_nginx

    server = start_h2_nginx(nginx_factory, h2_certs, "keepalive_requests 100;")
    records = write_records(tmp_path / "r.jsonl", 1_000, redirect_record)
    before = server.stub_status()
    summary = tether.run(
        records, target=server.tls_url, concurrency=20, http2=True, cacert=server.cacert
    )
    accepts, requests = deltas(before, server.stub_status())
    led = summary.ledger
    assert summary.ok == 1_000 and summary.errors == 0
    assert requests == 1_000  # none twice: the refused streams were not served
    assert accepts == led.opened == led.h2.goaway == led.closed[CloseReason.GOAWAY] == 10
    assert led.h2.retried > 0 and led.h2.streams == 1_000 + led.h2.retried
    assert led.carried == {"h2": 1_000}  # a refused stream carried nothing
    assert summary.retried == led.h2.retried  # each counted on its outcome too


def test_a_refused_stream_is_retried_when_it_may_be_replayed() -> None:
    """REFUSED_STREAM: a GET goes again (counted), a POST fails saying so."""
    records = [Record("GET", "/refuse/a"), Record("POST", "/refuse/b", body=b"x")]
    with H2Server() as srv:
        outcomes, client = fetch_all(srv.url, records, ClientOptions(http2_prior_knowledge=True))
    get, post = outcomes
    assert (get.status, get.retried, get.error) == (200, True, None)
    assert post.error_kind == "refused" and "not processed" in (post.error or "")
    assert client.ledger.h2.retried == 1 and client.ledger.retried_stale == 0
    assert client.ledger.h2.reset_by_server == {"refused_stream": 2}


def test_rst_stream_is_counted_by_error_code_and_the_connection_goes_on() -> None:
    records = [
        Record("GET", "/rst/internal_error"),
        Record("GET", "/"),
        Record("GET", "/rst/enhance_your_calm"),
    ]
    with H2Server() as srv:
        outcomes, client = fetch_all(srv.url, records, ClientOptions(http2_prior_knowledge=True))
    assert [o.error_kind for o in outcomes] == ["stream_reset", None, "stream_reset"]
    assert "internal_error" in (outcomes[0].error or "")
    assert client.ledger.h2.reset_by_server == {"internal_error": 1, "enhance_your_calm": 1}
    assert client.ledger.opened == 1


def test_the_summary_document_text_and_html_say_h2(nginx_h2: H2Nginx, tmp_path: Path) -> None:
    records = write_records(tmp_path / "r.jsonl", 50, redirect_record)
    doc_path, html, results = tmp_path / "s.json", tmp_path / "r.html", tmp_path / "out.jsonl"
    args = ["run", str(records), "-t", nginx_h2.tls_url, "--http2", "--cacert", nginx_h2.cacert]
    args += ["-c", "5", "--json", str(doc_path), "--html", str(html), "--results", str(results)]
    assert main(args) == 0
    doc = json.loads(doc_path.read_text())
    seen: set[str] = set()
    assert shape_problems(doc["connections"]["h2"], H2Streams, "h2", seen) == [] and seen
    assert doc["connections"]["protocol"] == {"h2": 50}
    assert "h2 streams" in html.read_text() and "h2 50 requests" in html.read_text()
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert {line["protocol"] for line in lines[:-1]} == {"h2"}
    assert lines[-1]["end"]["connections"]["h2"]["streams"] == 50
    rebuilt = tmp_path / "rebuilt.json"
    assert main(["report", str(results), "--format", "json", "-o", str(rebuilt)]) == 0
    again = json.loads(rebuilt.read_text())["connections"]
    assert (again["h2"], again["protocol"]) == (doc["connections"]["h2"], {"h2": 50})


def test_the_text_summary_says_h2(
    nginx_h2: H2Nginx, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 20, redirect_record)
    args = ["run", str(records), "-t", nginx_h2.h2c_url, "--http2-prior-knowledge"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "h2 20 requests" in out and "h2 streams" in out
    assert "1 connection carried 20 requests over h2" in out


# --- 3. every body read to the end; the leak's stall -----------------------------------------


def test_bodies_are_read_to_the_end_and_their_window_given_back(nginx_h2: H2Nginx) -> None:
    """Ten 1 MiB bodies, each ten times the connection's 64 KiB window, read whole over one
    connection: the window was given back as the bytes were read."""
    records = [Record("GET", "/big")] * 10
    summary = tether.run(
        records, target=nginx_h2.h2c_url, http2_prior_knowledge=True, drain_limit=2 << 20
    )
    assert summary.ok == 10 and summary.undrained_responses == 0
    assert summary.ledger.opened == 1 and summary.ledger.h2.reset_by_us == {}


def test_a_body_over_the_drain_limit_resets_its_stream_not_the_connection(
    nginx_h2: H2Nginx,
) -> None:
    records = [Record("GET", "/big")] * 3
    summary = tether.run(records, target=nginx_h2.h2c_url, http2_prior_knowledge=True)
    assert summary.ok == 3 and summary.undrained_responses == 3
    assert summary.ledger.h2.reset_by_us == {"cancel": 3}
    assert summary.ledger.opened == 1  # HTTP/1.1 closes each: see test_nginx_runs.py


def test_leak_mode_stalls_the_servers_streams(nginx_h2: H2Nginx, tmp_path: Path) -> None:
    """Leak mode over HTTP/2: bodies never read, windows never given back. The first 1 MiB
    body spends the connection's window, and every stream after it stalls on the server
    (nginx keeps up to 128 open per connection): the run says so in one sentence."""
    records = write_records(tmp_path / "r.jsonl", 300, lambda i: {"url": "/big"})
    summary = tether.run(
        records, target=nginx_h2.h2c_url, http2_prior_knowledge=True, leak=True, timeout=5
    )
    h2 = summary.ledger.h2
    assert summary.requests == 300 and h2.leaked == 300
    assert h2.unread_bytes >= 65_535 - 16_384  # the window the server had, spent
    assert h2.stalled == 300  # none could finish
    assert summary.ledger.opened == 3  # 128 stalled streams fill a connection
    from tether.report.text import verdict

    said = verdict(summary.to_dict())
    assert "Leak mode over HTTP/2: 300 responses answered at their headers" in said
    assert "so 300 streams stalled" in said and "over 3 connections" in said
    assert f"and {h2.unread_bytes:,} bytes never acknowledged" in said


def test_requests_waiting_for_a_dial_that_fails_fail_with_it() -> None:
    """Ten requests at once to a port nobody listens on: one dial, refused, and each request
    fails saying so (one dial a request would be a storm against a server that is down)."""
    from servers import free_port

    records = [Record("GET", "/")] * 10
    summary = tether.run(
        records,
        target=f"http://127.0.0.1:{free_port()}",
        concurrency=10,
        http2_prior_knowledge=True,
    )
    assert summary.error_kinds == {"connect": 10} and summary.ledger.connect_failed == 1


def test_settings_never_come(h2_certs: Certs) -> None:
    """A TLS server that picks h2 by ALPN but then says nothing: the dial fails within the
    connect timeout, saying why."""

    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: object
    ) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(5)

    context = server_context(h2_certs)
    options = ClientOptions(http2=True, cacert=h2_certs.cacert, connect_timeout=0.3)
    with ThreadServer(silent, ssl=context) as srv:
        outcomes, client = fetch_all(srv.url, [Record("GET", "/")], options)
    assert outcomes[0].error_kind == "connect" and "SETTINGS" in (outcomes[0].error or "")
    assert client.ledger.closed[CloseReason.TIMEOUT] == 1
