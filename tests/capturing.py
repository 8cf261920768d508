"""What the capture proxy's tests share: ``tether capture`` started as its own process (so
that SIGTERM, the records file and the exit are real), a raw client for the hostile ones,
and a small upstream that counts what reaches it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"


class Capturing:
    """A running ``tether capture``: ``port``, ``url``; :meth:`stop` ends it as SIGTERM
    does and returns what it said on stderr."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, first: str) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.said = first
        self.code: int | None = None

    def stop(self) -> str:
        """SIGTERM, then its exit; what it said."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout: float = 30) -> str:
        """Its exit (it stops by itself after --limit); what it said."""
        _, err = self.proc.communicate(timeout=timeout)
        self.code = self.proc.returncode
        self.said += err.decode()
        return self.said


@contextlib.contextmanager
def capturing(
    upstream: str, output: str | Path, *args: str, stdout: int | IO[bytes] | None = None
) -> Iterator[Capturing]:
    """``tether capture --upstream upstream -o output args`` on a free port, until the block
    ends (then SIGTERM, if it is still running)."""
    cmd = [sys.executable, "-m", "tether", "capture", "--listen", f"{HOST}:0"]
    cmd += ["--upstream", upstream, "-o", str(output), *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline().decode()
    if "listening on" not in first:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"capture did not start: {first}{err.decode()}")
    port = int(first.split("listening on http://")[1].split(",")[0].rsplit(":", 1)[1])
    running = Capturing(proc, port, first)
    try:
        yield running
    finally:
        if proc.poll() is None:
            running.stop()


def records(path: str | Path) -> list[dict[str, Any]]:
    """The records a capture wrote, each line whole."""
    text = Path(path).read_text()
    assert text == "" or text.endswith("\n"), "the last line is not whole"
    return [json.loads(line) for line in text.splitlines()]


def exchange(port: int, data: bytes, *, shut: bool = False, wait: float = 10.0) -> bytes:
    """Send ``data`` on a new connection (then half-close it, with ``shut``) and read until
    the server closes it or ``wait`` runs out."""
    with socket.create_connection((HOST, port), timeout=wait) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        got = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
        return got


def status_of(response: bytes) -> int:
    """The status of the first response in ``response`` (0: none)."""
    line = response.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def body_of(response: bytes) -> bytes:
    """The body of a single response (everything after its head)."""
    return response.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in response else b""


class _Answer(socketserver.BaseRequestHandler):
    server: CountingUpstream

    def handle(self) -> None:
        self.server.connections += 1
        buf = b""
        while True:
            try:
                chunk = self.request.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.server.requests += 1
                self.server.heads.append(head)
                if self.server.mode == "stall":
                    time.sleep(30)  # never answers while a test waits
                    return
                if self.server.mode == "mid-body":
                    self.request.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
                    )
                    return
                body = b"ok\n"
                self.request.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )


class CountingUpstream(socketserver.ThreadingTCPServer):
    """A small upstream on a free port that counts connections and requests: ``ok`` answers
    200 ``ok``; ``mid-body`` promises 100 bytes, sends 10 and closes; ``stall`` never
    answers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str = "ok") -> None:
        super().__init__((HOST, 0), _Answer)
        self.mode = mode
        self.connections = 0
        self.requests = 0
        self.heads: list[bytes] = []
        self.url = f"http://{HOST}:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()


def free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port
