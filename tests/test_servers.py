"""The test servers themselves, checked with the stdlib only (sockets, http.client): not tether."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import ssl
from pathlib import Path

import pytest
import trustme

from servers import (
    ConnInfo,
    ServerCrashed,
    ThreadServer,
    chunked,
    keepalive_handler,
    read_request,
    reset,
    response,
)


def recv_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


# --- pure helpers ---------------------------------------------------------------------------


def test_response_adds_content_length() -> None:
    assert response(200, b"hi") == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    assert response(404, headers=[("X-A", "1")]) == (
        b"HTTP/1.1 404 Not Found\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"
    )
    assert response(200, b"x", reason="Fine").startswith(b"HTTP/1.1 200 Fine\r\n")


def test_response_keeps_explicit_framing() -> None:
    raw = response(200, b"abc", [("content-length", "10")])
    assert raw == b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"
    raw = response(200, chunked([b"a"]), [("Transfer-Encoding", "chunked")])
    assert b"Content-Length" not in raw
    assert response(204) == b"HTTP/1.1 204 No Content\r\n\r\n"
    assert response(304) == b"HTTP/1.1 304 Not Modified\r\n\r\n"


def test_chunked() -> None:
    assert chunked([b"hello", b"", b"x" * 16]) == (
        b"5\r\nhello\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"
    )
    assert chunked([], [("X-Sum", "1")]) == b"0\r\nX-Sum: 1\r\n\r\n"


def test_read_request() -> None:
    async def go() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(
            b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 3\r\n\r\nabc"
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        reader.feed_eof()
        first = await read_request(reader)
        assert first is not None
        assert (first.method, first.target, first.version) == ("POST", "/p?q=1", "HTTP/1.1")
        assert first.headers == {"host": "h", "x-a": "1, 2", "content-length": "3"}
        assert first.raw_headers[1:3] == (("X-A", "1"), ("x-a", "2"))
        assert first.body == b"abc"
        second = await read_request(reader)
        assert second is not None and second.body == b""
        assert await read_request(reader) is None

        partial = asyncio.StreamReader()
        partial.feed_data(b"GET / HT")
        partial.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError):
            await read_request(partial)

        bad = asyncio.StreamReader()
        bad.feed_data(b"NONSENSE\r\n\r\n")
        with pytest.raises(ValueError):
            await read_request(bad)

    asyncio.run(go())


# --- the threaded server --------------------------------------------------------------------


def test_keepalive_serves_three_requests_on_one_connection() -> None:
    with ThreadServer(keepalive_handler(b"pong")) as srv:
        assert srv.url == f"http://127.0.0.1:{srv.port}" and srv.host == "127.0.0.1"
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
        for _ in range(3):
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"pong")
        conn.request("HEAD", "/")
        head = conn.getresponse()
        assert head.getheader("Content-Length") == "4" and head.read() == b""
        conn.close()
        assert srv.wait_until(lambda: srv.open_now == 0)
        assert srv.accepted == 1
        assert srv.requests == 4
        assert srv.conn_requests() == [4]
        assert srv.peak_open == 1
        assert srv.errors == []


def test_counters_over_several_connections() -> None:
    with ThreadServer(keepalive_handler()) as srv:
        socks = [socket.create_connection((srv.host, srv.port), timeout=5) for _ in range(3)]
        assert srv.wait_until(lambda: srv.open_now == 3)
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert recv_all(s).endswith(b"\r\n\r\nok")
            s.close()
        assert srv.wait_until(lambda: srv.open_now == 0)
        assert (srv.accepted, srv.peak_open, srv.requests) == (3, 3, 3)
        assert [c.index for c in srv.conns] == [1, 2, 3]


def test_conn_info_index_and_requests() -> None:
    seen: list[tuple[int, int]] = []

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            conn.count_request()
            seen.append((conn.index, conn.requests))
            writer.write(response(200, req.body))

    with ThreadServer(handler) as srv:
        for _ in range(2):
            c = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
            for body in (b"a", b"bb"):
                c.request("POST", "/", body=body)
                assert c.getresponse().read() == body
            c.close()
        assert srv.wait_until(lambda: srv.requests == 4)
    assert seen == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_reset_gives_the_client_connection_reset() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        await read_request(reader)
        conn.count_request()
        reset(writer)

    with ThreadServer(handler) as srv:
        with socket.create_connection((srv.host, srv.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with pytest.raises(ConnectionResetError):
                s.recv(100)
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
        conn.request("GET", "/")
        with pytest.raises(ConnectionResetError):
            conn.getresponse()
        assert srv.wait_until(lambda: srv.open_now == 0)
        assert srv.errors == []


def test_handler_returning_closes_the_connection() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        await read_request(reader)
        writer.write(response(200, b"once"))

    with ThreadServer(handler) as srv, socket.create_connection((srv.host, srv.port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_all(s).endswith(b"once")  # then EOF


def test_exit_closes_open_connections() -> None:
    async def idle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        await reader.read()  # until the client closes: forever here

    with ThreadServer(idle) as srv:
        socks = [socket.create_connection((srv.host, srv.port), timeout=5) for _ in range(2)]
        assert srv.wait_until(lambda: srv.open_now == 2)
        port = srv.port
    for s in socks:
        with contextlib.suppress(ConnectionResetError):  # a reset is closed too
            assert s.recv(10) == b""  # EOF; a connection left open times out (5 s) instead
        s.close()
    assert srv.open_now == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert srv.errors == []


def test_handler_errors_are_recorded_and_client_gone_errors_swallowed() -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        if conn.index == 1:
            raise ConnectionResetError("client went away")
        raise KeyError("a bug")

    with ThreadServer(handler, expect_errors=True) as srv:
        for _ in range(2):
            with socket.create_connection((srv.host, srv.port), timeout=5) as s:
                assert s.recv(10) == b""
        assert srv.wait_until(lambda: len(srv.errors) == 1)
    assert isinstance(srv.errors[0], KeyError)


def test_a_handler_crash_fails_the_test_unless_expected() -> None:
    # A crash closes the connection, which is what many engine tests expect of a faulty
    # server: without this the client's "error handled" would pass on a broken test server.
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        raise KeyError("a bug in the test server")

    with pytest.raises(ServerCrashed, match="KeyError"), ThreadServer(handler) as srv:
        with socket.create_connection((srv.host, srv.port), timeout=5) as s:
            assert s.recv(10) == b""
        assert srv.wait_until(lambda: len(srv.errors) == 1)


def test_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with ThreadServer(keepalive_handler(b"secure"), ssl=server_ctx) as srv:
        assert srv.url == f"https://127.0.0.1:{srv.port}"
        conn = http.client.HTTPSConnection(srv.host, srv.port, timeout=5, context=client_ctx)
        for _ in range(2):
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"secure"
        conn.close()
        assert srv.wait_until(lambda: srv.open_now == 0)
        assert (srv.accepted, srv.requests) == (1, 2)
        assert srv.errors == []
