"""The embedded demo service: routes, keep-alive, and its own connection counts."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tether.demo import records_path
from tether.demo.make_records import records_lines, records_text
from tether.demo.server import BODY_SIZE, demo_links, redirect_body, serve_in_thread


@pytest.fixture
def port(demo_port: int) -> int:
    return demo_port


def _conn(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=5)


def _call(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request(method, path, body=body)
    response = conn.getresponse()
    return response, response.read()


def _stats(conn: http.client.HTTPConnection) -> dict[str, int]:
    response, body = _call(conn, "GET", "/_stats")
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    value: dict[str, int] = json.loads(body)
    return value


def _reset(conn: http.client.HTTPConnection) -> dict[str, int]:
    response, body = _call(conn, "POST", "/_stats/reset")
    assert response.status == 200
    value: dict[str, int] = json.loads(body)
    return value


def _wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a fresh socket and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_redirect(port: int) -> None:
    conn = _conn(port)
    try:
        response, body = _call(conn, "GET", "/r/c0001")
        assert response.status == 302
        assert response.reason == "Found"
        assert response.getheader("Location") == "https://example.org/page/1"
        assert response.getheader("Content-Type") == "text/html"
        assert int(response.getheader("Content-Length", "")) == len(body)
        assert 3500 <= len(body) <= 5000
        assert b'Moved to <a href="https://example.org/page/1">' in body
        assert body == redirect_body("https://example.org/page/1")
        # Same code, same bytes: deterministic.
        _, again = _call(conn, "GET", "/r/c0001")
        assert again == body
    finally:
        conn.close()


def test_table_is_deterministic() -> None:
    links = demo_links()
    assert len(links) == 1000
    assert list(links)[:2] == ["c0000", "c0001"]
    assert links["c0999"] == "https://example.org/page/999"
    assert all(len(redirect_body(t)) == BODY_SIZE for t in list(links.values())[::97])


def test_unknown_code_and_path(port: int) -> None:
    conn = _conn(port)
    try:
        response, body = _call(conn, "GET", "/r/nope")
        assert response.status == 404
        assert 0 < len(body) < 100
        response, _ = _call(conn, "GET", "/elsewhere")
        assert response.status == 404
        response, _ = _call(conn, "DELETE", "/r/c0001")
        assert response.status == 405
        assert response.getheader("Allow") == "GET, HEAD"
        # Still usable after errors.
        response, _ = _call(conn, "GET", "/r/c0002?utm=x")
        assert response.status == 302
        assert response.getheader("Location") == "https://example.org/page/2"
    finally:
        conn.close()


def test_head_has_length_but_no_body(port: int) -> None:
    conn = _conn(port)
    try:
        response, body = _call(conn, "HEAD", "/r/c0003")
        assert response.status == 302
        assert body == b""
        assert int(response.getheader("Content-Length", "")) == BODY_SIZE
        # Nothing stray followed the head: the next answer parses cleanly.
        response, body = _call(conn, "GET", "/r/c0004")
        assert response.status == 302
        assert len(body) == BODY_SIZE
    finally:
        conn.close()
    raw = _raw_exchange(port, b"HEAD /r/c0005 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert rest == b""
    assert f"Content-Length: {BODY_SIZE}".encode() in head


def test_keep_alive_reuses_one_connection(port: int) -> None:
    control = _conn(port)
    try:
        reset = _reset(control)
        assert reset["accepted"] == 0
        assert reset["requests"] == 0
        conn = _conn(port)
        try:
            for i in range(3):
                response, _ = _call(conn, "GET", f"/r/c{i:04d}")
                assert response.status == 302
                assert response.getheader("Connection") is None
        finally:
            conn.close()
        stats = _stats(control)
        assert stats["accepted"] == 1
        assert stats["requests"] == 3
    finally:
        control.close()


def test_unread_responses_leak_connections(port: int) -> None:
    control = _conn(port)
    leaked: list[socket.socket] = []
    try:
        _reset(control)
        for i in range(10):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            leaked.append(sock)
            sock.sendall(f"GET /r/c{i:04d} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert _wait_for(lambda: _stats(control)["requests"] >= 10)
        stats = _stats(control)
        assert stats["open"] >= 11  # the ten, plus the one asking
        assert stats["open_excluding_self"] == stats["open"] - 1
        assert stats["open_excluding_self"] >= 10
        assert stats["peak_open"] >= 11
        assert stats["accepted"] == 10
        assert stats["requests"] == 10
    finally:
        for sock in leaked:
            sock.close()
    try:
        assert _wait_for(lambda: _stats(control)["open"] == 1)
        after = _stats(control)
        assert after["open_excluding_self"] == 0
        assert after["peak_open"] >= 11
        reset = _reset(control)
        assert reset["peak_open"] == 1
    finally:
        control.close()


def test_http10_closes(port: int) -> None:
    raw = _raw_exchange(port, b"GET /r/c0007 HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"\r\nConnection: close" in head
    assert b"\r\nLocation: https://example.org/page/7\r\n" in head
    assert len(body) == BODY_SIZE


def test_http10_keep_alive_honoured(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /r/c0001 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = b""
        while len(data) < BODY_SIZE or b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head = data.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nConnection: keep-alive" in head


def test_connection_close_header(port: int) -> None:
    raw = _raw_exchange(port, b"GET /r/c0008 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 302 Found\r\n")
    assert b"\r\nConnection: close" in raw.partition(b"\r\n\r\n")[0]


def test_pipelined_requests_answered_in_order(port: int) -> None:
    request = b"".join(f"GET /r/c{i:04d} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5))
    request += b"GET /r/c0042 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    request += b"GET /r/c0043 HTTP/1.1\r\nHost: x\r\n\r\n"  # after close: ignored
    raw = _raw_exchange(port, request)
    locations = [
        line.split(b": ", 1)[1].decode()
        for line in raw.split(b"\r\n")
        if line.startswith(b"Location: ")
    ]
    expected = [f"https://example.org/page/{i}" for i in [0, 1, 2, 3, 4, 42]]
    assert locations == expected
    assert raw.count(b"HTTP/1.1 302 Found\r\n") == 6


def test_bad_request(port: int) -> None:
    raw = _raw_exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_shorten(port: int) -> None:
    conn = _conn(port)
    try:
        payload = json.dumps({"url": "https://example.com/x"}).encode()
        response, body = _call(conn, "POST", "/shorten", payload)
        assert response.status == 201
        location = response.getheader("Location")
        created: dict[str, Any] = json.loads(body)
        assert location == created["short"]
        assert created["url"] == "https://example.com/x"
        response, _ = _call(conn, "GET", str(location))
        assert response.status == 302
        assert response.getheader("Location") == "https://example.com/x"
        response, _ = _call(conn, "POST", "/shorten", b"not json")
        assert response.status == 400
        response, _ = _call(conn, "POST", "/shorten", b'{"url": "ftp://x"}')
        assert response.status == 400
    finally:
        conn.close()


def test_stop_is_idempotent_and_closes_clients() -> None:
    bound, stop = serve_in_thread()
    sock = socket.create_connection(("127.0.0.1", bound), timeout=5)
    try:
        sock.sendall(b"GET /r/c0001 HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while len(data.partition(b"\r\n\r\n")[2]) < BODY_SIZE:
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 302")
        stop()
        stop()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(65536) == b""  # the server closed the kept-alive connection
    finally:
        sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", bound), timeout=1).close()


def test_records_file_matches_generator() -> None:
    path = records_path()
    assert path.name == "records.jsonl"
    text = path.read_text(encoding="utf-8")
    assert text == records_text()
    lines = text.splitlines()
    assert lines == list(records_lines())
    assert len(lines) == 1000
    first = json.loads(lines[0])
    assert first == {
        "method": "GET",
        "url": "/r/c0000",
        "expect": {"status": 302, "headers": {"Location": "https://example.org/page/0"}},
    }
    links = demo_links()
    wrong = []
    for line in lines:
        record = json.loads(line)
        code = record["url"].removeprefix("/r/")
        if record["expect"]["headers"]["Location"] != links[code]:
            wrong.append(code)
    assert wrong == ["c0100", "c0500", "c0900"]


def test_module_entry_point() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.demo.server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        bound = int(line.strip().rsplit(":", 1)[1])
        conn = _conn(bound)
        try:
            response, _ = _call(conn, "GET", "/r/c0009")
            assert response.getheader("Location") == "https://example.org/page/9"
        finally:
            conn.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
