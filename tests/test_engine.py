"""The engine against small real servers that misbehave on purpose (see servers.py)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
import threading
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence

import pytest
import trustme
import uvloop

from servers import (
    ConnInfo,
    EchoServer,
    Handler,
    ThreadServer,
    chunked,
    read_request,
    reset,
    response,
)
from tether import Client, ClientOptions, CloseReason, Expect, Outcome, Record, check
from tether.model import BodyExpect

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


def get(path: str = "/", method: str = "GET", body: bytes = b"", **expect: object) -> Record:
    return Record(method, path, body=body, expect=Expect(**expect))  # type: ignore[arg-type]


def fetch_all(
    url: str,
    records: Sequence[Record],
    options: ClientOptions | None = None,
    pause: float = 0.0,
) -> tuple[list[Outcome], Client]:
    """Send records one after the other on one client, pausing between them."""

    async def go() -> tuple[list[Outcome], Client]:
        client = Client(options, target=url)
        outcomes = []
        async with client:
            for i, record in enumerate(records):
                if i and pause:
                    await asyncio.sleep(pause)
                outcomes.append(await client.fetch(record))
        return outcomes, client

    return uvloop.run(go())


def serve_each(
    respond: Callable[[Reader, Writer, ConnInfo, int], Awaitable[bool]],
) -> Handler:
    """A keep-alive handler: ``respond(reader, writer, conn, n)`` answers request ``n`` of the
    connection (1-based) and returns False to end the connection."""

    async def handler(reader: Reader, writer: Writer, conn: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            n = conn.count_request()
            if not await respond(reader, writer, conn, n) or req.method == "":
                return

    return handler


async def ok(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
    writer.write(response(200, b"hello"))
    await writer.drain()
    return True


def test_one_connection_carries_every_request() -> None:
    with ThreadServer(serve_each(ok)) as srv:
        outcomes, client = fetch_all(srv.url, [get()] * 5)
        assert srv.accepted == 1
        assert srv.requests == 5
    assert [o.reused for o in outcomes] == [False, True, True, True, True]
    assert {o.conn_id for o in outcomes} == {1}
    assert client.ledger.opened == 1
    assert all(o.status == 200 and o.error is None for o in outcomes)


def test_server_idle_close_is_noticed_without_error() -> None:
    """The server closes a keep-alive connection after 1 s idle; we wait 2 s: the pool sees
    the close while the connection is parked and simply dials anew."""

    async def idle_close(reader: Reader, writer: Writer, conn: ConnInfo) -> None:
        while True:
            try:
                req = await asyncio.wait_for(read_request(reader), 1.0)
            except TimeoutError:
                return  # idle for 1 s: close
            if req is None:
                return
            conn.count_request()
            writer.write(response(200, b"hi"))
            await writer.drain()

    with ThreadServer(idle_close) as srv:
        outcomes, client = fetch_all(srv.url, [get(), get()], pause=2.0)
        assert srv.accepted == 2
    assert [o.error for o in outcomes] == [None, None]
    assert client.ledger.closed[CloseReason.SERVER_IDLE] == 1
    assert client.ledger.retried_stale == 0


def lazy_idle_close(idle: float) -> Handler:
    """A server whose idle timer is checked only when the next request arrives: a request
    on a connection idle longer than ``idle`` gets the connection closed, unanswered. That
    is the keep-alive race made deterministic: to the client the connection looked alive."""

    async def handler(reader: Reader, writer: Writer, conn: ConnInfo) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while (await read_request(reader)) is not None:
            if conn.requests and loop.time() - last > idle:
                return
            conn.count_request()
            writer.write(response(200, b"hi"))
            await writer.drain()
            last = loop.time()

    return handler


def test_stale_connection_retried_once_for_get() -> None:
    with ThreadServer(lazy_idle_close(1.0)) as srv:
        outcomes, client = fetch_all(srv.url, [get(), get()], pause=2.0)
        assert srv.accepted == 2
    second = outcomes[1]
    assert second.error is None and second.status == 200
    assert second.retried and not second.reused
    assert client.ledger.retried_stale == 1
    assert client.ledger.closed[CloseReason.STALE] == 1


def test_stale_connection_not_retried_for_post() -> None:
    post = get(method="POST", body=b"x=1")
    with ThreadServer(lazy_idle_close(1.0)) as srv:
        outcomes, client = fetch_all(srv.url, [post, post], pause=2.0)
        assert srv.accepted == 1
    assert outcomes[1].error_kind == "stale"
    assert "reused connection" in (outcomes[1].error or "")
    assert client.ledger.retried_stale == 0


def test_post_with_idempotency_key_is_retried() -> None:
    post = Record("POST", "/", headers=(("Idempotency-Key", "k1"),), body=b"x=1")
    with ThreadServer(lazy_idle_close(1.0)) as srv:
        outcomes, client = fetch_all(srv.url, [post, post], pause=2.0)
    assert outcomes[1].error is None and outcomes[1].retried
    assert client.ledger.retried_stale == 1


def test_reset_in_the_middle_of_a_body() -> None:
    async def rst(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        if conn.index == 1:
            writer.write(response(200, b"x" * 100, [("Content-Length", "10000")]))
            await writer.drain()
            await asyncio.sleep(0.1)
            reset(writer)
            return False
        return await ok(reader, writer, conn, n)

    with ThreadServer(serve_each(rst)) as srv:
        outcomes, client = fetch_all(srv.url, [get(), get()])
    assert outcomes[0].error_kind == "closed"
    assert "reset the connection during the body" in (outcomes[0].error or "")
    assert outcomes[1].status == 200  # the run goes on, on a new connection
    assert client.ledger.closed[CloseReason.SERVER_RESET] == 1


def test_response_header_timeout() -> None:
    async def silent(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        await asyncio.sleep(60)  # past any bound below: only the timeout ends the request
        return False

    options = ClientOptions(response_header_timeout=0.3)
    with ThreadServer(serve_each(silent)) as srv:
        outcomes, client = fetch_all(srv.url, [get()], options)
    assert outcomes[0].error_kind == "timeout"
    assert "no response headers within 0.3s" in (outcomes[0].error or "")
    assert 0.3 <= outcomes[0].latency < 10  # generous: a shared machine may be slow
    assert client.ledger.closed[CloseReason.TIMEOUT] == 1


def test_total_timeout_while_body_trickles() -> None:
    async def trickle(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        writer.write(response(200, b"", [("Content-Length", "100")]))
        for _ in range(50):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.1)
        return False

    options = ClientOptions(timeout=0.5, drain_timeout=0)
    with ThreadServer(serve_each(trickle)) as srv:
        outcomes, _ = fetch_all(srv.url, [get()], options)
    assert outcomes[0].error_kind == "timeout"
    assert "not complete within 0.5s" in (outcomes[0].error or "")


def trickle_body(pieces: int) -> Handler:
    """Headers at once, then a body of ``pieces`` bytes, one every 0.1 s."""

    async def respond(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        writer.write(response(200, b"", [("Content-Length", str(pieces))]))
        for _ in range(pieces):
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(b"x")
        await writer.drain()
        return True

    return respond


def test_header_timeout_ends_when_the_headers_are_in() -> None:
    options = ClientOptions(response_header_timeout=0.3, drain_timeout=0)
    with ThreadServer(serve_each(trickle_body(8))) as srv:
        outcomes, client = fetch_all(srv.url, [get()], options)
    assert outcomes[0].error is None and outcomes[0].body_size == 8
    assert outcomes[0].latency >= 0.8
    assert client.ledger.closed_undrained == 0


def test_a_body_slower_than_the_drain_timeout_is_closed_undrained() -> None:
    options = ClientOptions(response_header_timeout=5, drain_timeout=0.3)
    with ThreadServer(serve_each(trickle_body(300))) as srv:  # 30 s of body
        outcomes, client = fetch_all(srv.url, [get()], options)
    assert outcomes[0].error is None and outcomes[0].body_truncated
    assert 0.3 <= outcomes[0].latency < 10  # generous: a shared machine may be slow
    assert client.ledger.closed_undrained == 1


BIG = 50 * 1024 * 1024


def big_body_handler(*, declare_length: bool) -> Handler:
    """Answers with a 50 MiB body (with a Content-Length, or chunked), then serves on."""
    piece = b"z" * (1 << 20)

    async def respond(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        if n > 1 or conn.index > 1:
            return await ok(reader, writer, conn, n)
        if declare_length:
            writer.write(response(200, b"", [("Content-Length", str(BIG))]))
        else:
            writer.write(response(200, b"", [("Transfer-Encoding", "chunked")]))
        for _ in range(BIG // len(piece)):
            writer.write(piece if declare_length else b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        if not declare_length:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    return serve_each(respond)


@pytest.mark.parametrize("declare_length", [True, False])
def test_huge_body_closes_undrained_with_flat_memory(declare_length: bool) -> None:
    record = get(body=b"", status=(200,))
    tracemalloc.start()
    try:
        with ThreadServer(big_body_handler(declare_length=declare_length)) as srv:
            outcomes, client = fetch_all(srv.url, [record, get()])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    first = outcomes[0]
    assert first.status == 200 and first.body_truncated and first.error is None
    assert client.ledger.closed_undrained == 1
    assert client.ledger.opened == 2  # the second request needed a new connection
    assert outcomes[1].status == 200
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak:,} bytes"


def test_huge_body_kept_for_a_check_stays_within_max_body() -> None:
    # A body a check needs is read past the drain limit, up to max_body, and no further.
    record = Record("GET", "/", expect=Expect(body=(BodyExpect("contains", "never"),)))
    options = ClientOptions(max_body=1024 * 1024)
    tracemalloc.start()
    try:
        with ThreadServer(big_body_handler(declare_length=False)) as srv:
            outcomes, _ = fetch_all(srv.url, [record], options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcomes[0].body is not None and len(outcomes[0].body) == 1024 * 1024
    mismatches = check(record.expect, outcomes[0])
    assert mismatches and "not read to its end" in mismatches[0].got
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak:,} bytes"


def test_huge_body_under_a_raised_limit_is_drained_and_reused() -> None:
    options = ClientOptions(drain_limit=64 * 1024 * 1024, drain_timeout=30)
    sha = Record("GET", "/", expect=Expect(body=(BodyExpect("sha256", "0" * 64),)))
    tracemalloc.start()
    try:
        with ThreadServer(big_body_handler(declare_length=True)) as srv:
            outcomes, client = fetch_all(srv.url, [sha, get()], options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcomes[0].body_size == BIG and not outcomes[0].body_truncated
    assert outcomes[0].body_sha256 == hashlib.sha256(b"z" * BIG).hexdigest()
    assert outcomes[1].reused and client.ledger.opened == 1
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak:,} bytes"


def raw(data: bytes, *, close: bool = False) -> Handler:
    """Answer every request with these exact bytes."""

    async def respond(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        writer.write(data)
        await writer.drain()
        return not close

    return serve_each(respond)


def test_malformed_status_line_is_a_protocol_error() -> None:
    with ThreadServer(raw(b"HTTP/1.1 abc Nope\r\nContent-Length: 0\r\n\r\n")) as srv:
        outcomes, client = fetch_all(srv.url, [get()])
    assert outcomes[0].error_kind == "protocol"
    assert "invalid response" in (outcomes[0].error or "")
    assert client.ledger.closed[CloseReason.PROTOCOL] == 1


def test_content_length_larger_than_the_body() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"
    with ThreadServer(raw(data, close=True)) as srv:
        outcomes, _ = fetch_all(srv.url, [get()])
    assert outcomes[0].error_kind == "closed"
    assert "closed the connection during the body" in (outcomes[0].error or "")


def test_head_with_content_length_does_not_eat_the_next_response() -> None:
    async def respond(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        else:
            writer.write(response(200, b"world"))
        await writer.drain()
        return True

    records = [get(method="HEAD"), Record("GET", "/", expect=_body_equals("world"))]
    with ThreadServer(serve_each(respond)) as srv:
        outcomes, client = fetch_all(srv.url, records)
    assert outcomes[0].status == 200 and outcomes[0].body_size == 0
    assert outcomes[1].body == b"world" and outcomes[1].reused
    assert check(records[1].expect, outcomes[1]) == []
    assert client.ledger.opened == 1


def _body_equals(text: str) -> Expect:
    return Expect(body=(BodyExpect("equals", text),))


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_keep_the_connection(status: int) -> None:
    async def respond(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        if n == 1:
            # 304 may repeat the Content-Length the full response would have had.
            extra = [("Content-Length", "42")] if status == 304 else []
            writer.write(response(status, b"", extra))
        else:
            writer.write(response(200, b"after"))
        await writer.drain()
        return True

    records = [get(), Record("GET", "/", expect=_body_equals("after"))]
    with ThreadServer(serve_each(respond)) as srv:
        outcomes, client = fetch_all(srv.url, records)
    assert outcomes[0].status == status and outcomes[0].error is None
    assert outcomes[1].body == b"after" and outcomes[1].reused
    assert client.ledger.opened == 1


def test_http10_close_delimited_body() -> None:
    data = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"all of it" * 1000
    record = Record("GET", "/", expect=_body_equals("all of it" * 1000))
    with ThreadServer(raw(data, close=True)) as srv:
        outcomes, client = fetch_all(srv.url, [record, record])
        assert srv.accepted == 2
    assert all(o.error is None and o.body_size == 9000 for o in outcomes)
    assert check(record.expect, outcomes[0]) == []
    assert client.ledger.closed[CloseReason.SERVER_CLOSE] == 2


def test_connection_close_header_closes_after_the_body() -> None:
    data = response(200, b"bye", [("Connection", "close")])
    with ThreadServer(raw(data, close=True)) as srv:
        outcomes, client = fetch_all(srv.url, [get(), get()])
        assert srv.accepted == 2
    assert [o.reused for o in outcomes] == [False, False]
    assert client.ledger.closed_by_server == 2


def test_chunked_body_with_trailers() -> None:
    body = chunked([b"hello ", b"chunked ", b"world"], [("X-Checksum", "abc")])
    data = response(200, body, [("Transfer-Encoding", "chunked"), ("Trailer", "X-Checksum")])
    record = Record("GET", "/", expect=_body_equals("hello chunked world"))
    with ThreadServer(raw(data)) as srv:
        outcomes, client = fetch_all(srv.url, [record, record])
    assert [check(record.expect, o) for o in outcomes] == [[], []]
    assert outcomes[1].reused and client.ledger.opened == 1
    assert "x-checksum" not in outcomes[0].headers  # a trailer is not a header


def test_interim_100_continue_is_not_the_answer() -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\n" + response(201, b"made", [("Location", "/x")])
    with ThreadServer(raw(data)) as srv:
        outcomes, client = fetch_all(srv.url, [get(method="POST", body=b"a"), get()])
    assert [o.status for o in outcomes] == [201, 201]
    assert outcomes[0].headers["location"] == "/x"
    assert client.ledger.opened == 1


def test_disable_keep_alives_sends_close_and_opens_one_per_request() -> None:
    # Read back on the server side: each request says "Connection: close", each on its own
    # connection (the echo server then closes it, as a real server does).
    with EchoServer() as srv:
        outcomes, client = fetch_all(srv.url, [get()] * 3, ClientOptions(disable_keep_alives=True))
    sent = [(c.conn, c.values("Connection")) for c in srv.captured]
    assert sent == [(1, ["close"]), (2, ["close"]), (3, ["close"])]
    assert client.ledger.opened == 3
    assert client.ledger.closed[CloseReason.KEEP_ALIVE_OFF] == 3
    assert not any(o.reused for o in outcomes)


def redirector(hops: int) -> Handler:
    async def respond(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        if n <= hops:
            writer.write(response(302, b"moved", [("Location", f"/hop{n}")]))
        else:
            writer.write(response(200, b"landed"))
        await writer.drain()
        return True

    return serve_each(respond)


def test_redirects_not_followed_by_default() -> None:
    with ThreadServer(redirector(2)) as srv:
        outcomes, _ = fetch_all(srv.url, [get()])
    assert outcomes[0].status == 302 and outcomes[0].redirects == 0


def test_redirects_followed_and_counted() -> None:
    with ThreadServer(redirector(2)) as srv:
        outcomes, client = fetch_all(srv.url, [get()], ClientOptions(follow_redirects=3))
    assert outcomes[0].status == 200 and outcomes[0].redirects == 2
    assert outcomes[0].url.endswith("/hop2")
    assert client.ledger.opened == 1


def test_too_many_redirects_is_an_error() -> None:
    with ThreadServer(redirector(5)) as srv:
        outcomes, _ = fetch_all(srv.url, [get()], ClientOptions(follow_redirects=2))
    assert outcomes[0].error_kind == "redirects"


def test_idle_timeout_closes_parked_connections() -> None:
    with ThreadServer(serve_each(ok)) as srv:
        outcomes, client = fetch_all(srv.url, [get(), get()], ClientOptions(idle_timeout=0.2), 0.6)
        assert srv.accepted == 2
    assert client.ledger.closed[CloseReason.IDLE_TIMEOUT] == 1
    assert not outcomes[1].reused


def run_concurrently(url: str, n: int, workers: int, options: ClientOptions) -> Client:
    async def go() -> Client:
        client = Client(options, target=url)
        async with client:

            async def worker() -> None:
                for _ in range(n):
                    out = await client.fetch(get())
                    assert out.error is None, out.error

            await asyncio.gather(*(worker() for _ in range(workers)))
        return client

    return uvloop.run(go())


async def slow_ok(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
    await asyncio.sleep(0.005)
    return await ok(reader, writer, conn, n)


def test_max_conns_per_host_makes_requests_wait() -> None:
    options = ClientOptions(max_conns_per_host=2, max_idle_per_host=2)
    with ThreadServer(serve_each(slow_ok)) as srv:
        client = run_concurrently(srv.url, 10, 6, options)
        assert srv.accepted == 2 and srv.requests == 60
    assert client.ledger.peak_open == 2


def test_idle_pool_smaller_than_the_workers_discards_connections() -> None:
    """urllib3's "Connection pool is full, discarding connection", reproduced and counted."""
    options = ClientOptions(max_idle_per_host=1)
    with ThreadServer(serve_each(slow_ok)) as srv:
        client = run_concurrently(srv.url, 10, 4, options)
    assert client.ledger.closed[CloseReason.POOL_FULL] > 0
    assert client.ledger.opened > 4


def test_leak_mode_leaves_connections_open_on_the_server() -> None:
    async def go(url: str, srv: ThreadServer) -> list[int]:
        seen = []
        async with Client(ClientOptions(leak=True), target=url) as client:
            for _ in range(20):
                await client.fetch(get())
                seen.append(srv.open_now)
            assert client.ledger.opened == 20
        return seen

    with ThreadServer(serve_each(ok)) as srv:
        seen = uvloop.run(go(srv.url, srv))
        assert srv.accepted == 20
        assert srv.wait_until(lambda: srv.open_now == 0)
    assert seen[-1] >= 19  # the server still holds (nearly) every one of them
    assert seen == sorted(seen)


def test_connection_refused_is_a_connect_error() -> None:
    with ThreadServer(serve_each(ok)) as srv:
        url = srv.url
    outcomes, client = fetch_all(url, [get()])
    assert outcomes[0].error_kind == "connect"
    assert client.ledger.connect_failed == 1 and client.ledger.opened == 0


@pytest.fixture(scope="module")
def tls_server_ca() -> trustme.CA:
    return trustme.CA()


def tls_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_tls_self_signed_refused_by_default(tls_server_ca: trustme.CA) -> None:
    with ThreadServer(serve_each(ok), ssl=tls_context(tls_server_ca)) as srv:
        outcomes, _ = fetch_all(srv.url, [get()])
    assert outcomes[0].error_kind == "connect"
    assert "certificate verification failed" in (outcomes[0].error or "")


def test_tls_accepted_with_cacert(tls_server_ca: trustme.CA, tmp_path: object) -> None:
    from pathlib import Path

    pem = Path(str(tmp_path)) / "ca.pem"
    tls_server_ca.cert_pem.write_to_path(str(pem))
    with ThreadServer(serve_each(ok), ssl=tls_context(tls_server_ca)) as srv:
        assert srv.url.startswith("https://")
        outcomes, client = fetch_all(srv.url, [get()] * 3, ClientOptions(cacert=str(pem)))
    assert [o.status for o in outcomes] == [200] * 3
    assert client.ledger.opened == 1


def test_tls_insecure_skips_verification(tls_server_ca: trustme.CA) -> None:
    with ThreadServer(serve_each(ok), ssl=tls_context(tls_server_ca)) as srv:
        outcomes, _ = fetch_all(srv.url, [get()], ClientOptions(insecure=True))
    assert outcomes[0].status == 200


def test_non_ascii_header_values_are_sent_as_utf8() -> None:
    seen: list[str] = []

    async def echo(reader: Reader, writer: Writer, conn: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            seen.append(req.headers["x-name"])
            writer.write(response(200, b""))
            await writer.drain()

    record = Record("GET", "/#fragment", headers=(("X-Name", "café"),))
    with ThreadServer(echo) as srv:
        outcomes, _ = fetch_all(srv.url, [record])
    assert outcomes[0].status == 200 and outcomes[0].url.endswith("/")
    assert seen == ["café".encode().decode("latin-1")]


def test_unfollowable_redirect_is_the_servers_error() -> None:
    data = response(302, b"", [("Location", "ftp://example.org/x")])
    with ThreadServer(raw(data)) as srv:
        outcomes, _ = fetch_all(srv.url, [get()], ClientOptions(follow_redirects=2))
    assert outcomes[0].error_kind == "protocol"
    assert "cannot follow redirect" in (outcomes[0].error or "")


def test_connect_timeout() -> None:
    """A listener whose accept queue is full: Linux drops further SYNs, so connect hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(3)]
    try:
        for s in fillers:
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
        outcomes, client = fetch_all(
            f"http://127.0.0.1:{port}", [get()], ClientOptions(connect_timeout=0.3)
        )
    finally:
        for s in [*fillers, listener]:
            s.close()
    assert outcomes[0].error_kind == "connect"
    assert "timed out" in (outcomes[0].error or "")
    assert client.ledger.connect_failed == 1


def test_connection_state_shows_in_its_repr() -> None:
    async def go(url: str) -> tuple[list[str], list[str]]:
        async with Client(target=url) as client:
            for _ in range(3):
                await client.fetch(get())
            idle = [repr(c) for c in client.pool.connections()]
            fetching = asyncio.ensure_future(client.fetch(get(path="/slow")))
            assert await asyncio.to_thread(arrived.wait, 10)  # the server holds its answer
            busy = [repr(c) for c in client.pool.connections()]
            answer.set()
            await fetching
        return idle, busy

    # The fourth response waits until the client has looked: no clock decides what it sees.
    arrived, answer = threading.Event(), threading.Event()

    async def respond(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        if n == 4:
            arrived.set()
            await asyncio.to_thread(answer.wait, 10)
        return await ok(reader, writer, conn, n)

    with ThreadServer(serve_each(respond)) as srv:
        idle, busy = uvloop.run(go(srv.url))
    assert idle == [f"<Connection #1 127.0.0.1:{srv.port} IDLE requests=3>"]
    assert busy == [f"<Connection #1 127.0.0.1:{srv.port} ACTIVE requests=4>"]


def test_a_switch_of_protocols_is_a_protocol_error() -> None:
    """llhttp stops at a 101 with ``Connection: upgrade`` by raising HttpParserUpgrade, which
    is not an HttpParserError: it used to escape the protocol (a traceback in the log) and
    the request ended as "server closed the connection during the headers"."""

    async def upgrade(reader: Reader, writer: Writer, conn: ConnInfo, n: int) -> bool:
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n")
        writer.write(b"Upgrade: websocket\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)
        return False

    with ThreadServer(serve_each(upgrade)) as srv:
        outcomes, client = fetch_all(srv.url, [get()])
    assert outcomes[0].error_kind == "protocol"
    assert "switched protocols" in (outcomes[0].error or "")
    assert client.ledger.closed == {CloseReason.PROTOCOL: 1}


def test_a_records_connection_close_ends_its_connection() -> None:
    """RFC 9112 9.6: a client that sends ``Connection: close`` sends nothing more on that
    connection. A server that ignores it (this one keeps every connection open) used to get
    the next request on the same connection; the close is counted as the request's."""
    closing = Record("GET", "/", headers=(("Connection", "close"),))
    with ThreadServer(serve_each(ok)) as srv:
        outcomes, client = fetch_all(srv.url, [closing, closing, get()])
        assert srv.accepted == 3
    assert [o.reused for o in outcomes] == [False, False, False]
    assert all(o.error is None for o in outcomes)
    assert client.ledger.closed[CloseReason.REQUEST_CLOSE] == 2
