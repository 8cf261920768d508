"""The nginx fixtures, checked with the stdlib only (http.client, sockets): not tether."""

from __future__ import annotations

import http.client
import socket

import pytest

from servers import NginxFactory, NginxServer, big_body, parse_stub_status, require_nginx


def get(conn: http.client.HTTPConnection, path: str, method: str = "GET") -> tuple[int, bytes]:
    conn.request(method, path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_one_connection_three_requests_moves_stub_status_by_one_and_three(
    nginx: NginxServer,
) -> None:
    before = nginx.stub_status()
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=5)
    for _ in range(3):
        assert get(conn, "/") == (200, b"hello\n")
    conn.close()
    after = nginx.stub_status()
    # The second status fetch is itself one connection and one request.
    assert after["accepts"] - before["accepts"] == 1 + 1
    assert after["handled"] - before["handled"] == 1 + 1
    assert after["requests"] - before["requests"] == 3 + 1
    assert after["writing"] >= 1  # the status fetch itself


def test_locations(nginx: NginxServer) -> None:
    assert nginx.url == f"http://127.0.0.1:{nginx.port}"
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=5)
    conn.request("GET", "/anything")
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"hello\n")
    assert resp.getheader("Content-Type") == "text/plain"
    assert resp.getheader("Connection") == "keep-alive"

    conn.request("GET", "/r/a/b?x=1")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 302
    assert resp.getheader("Location") == "https://example.org/r/a/b?x=1"

    assert get(conn, "/big") == (200, big_body())
    assert get(conn, "/echo-method", "DELETE") == (200, b"DELETE")
    assert get(conn, "/echo-method", "HEAD") == (200, b"")
    conn.close()

    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=5)
    status, body = get(conn, "/status")
    conn.close()
    assert status == 200 and parse_stub_status(body.decode())["active"] >= 1


def test_factory_with_extra_directives(nginx_factory: NginxFactory, nginx: NginxServer) -> None:
    short = nginx_factory(server="keepalive_requests 2; keepalive_timeout 1s;")
    assert short.port != nginx.port
    before = short.stub_status()
    with socket.create_connection(("127.0.0.1", short.port), timeout=5) as s:
        # Three pipelined requests: nginx answers two, closing after the second.
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.count(b"Connection: close") == 1
    after = short.stub_status()
    assert after["requests"] - before["requests"] == 2 + 1
    assert after["accepts"] - before["accepts"] == 1 + 1


def test_factory_server_stops(nginx_factory: NginxFactory) -> None:
    extra = nginx_factory()
    assert extra.running()
    extra.stop()
    assert not extra.running()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", extra.port), timeout=2).close()


def test_missing_nginx_skips_or_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_nginx(lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_nginx(lambda: None)
