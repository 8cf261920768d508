"""Real local servers for the tests: no mocks.

:class:`ThreadServer` is a raw asyncio TCP (or TLS) server on 127.0.0.1 whose behaviour is an
async handler written by the test, with the HTTP/1.1 building blocks :func:`read_request`,
:func:`response`, :func:`chunked`, :func:`reset` and :func:`keepalive_handler`. It counts
connections and requests so tests can check connection reuse.

:class:`NginxServer` / :func:`start_nginx` run a real nginx on a free port (used by the
``nginx`` and ``nginx_factory`` fixtures in ``conftest.py``).

Import from tests as ``from servers import ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl as ssl_module
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024

# --- HTTP/1.1 building blocks --------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request as read by :func:`read_request`.

    ``headers`` has lower-case names; repeated headers are joined with ", ".
    ``raw_headers`` keeps every header line as sent, in order; ``head`` the request line and
    header lines through the blank line, byte for byte as they arrived.
    """

    method: str
    target: str
    version: str
    headers: dict[str, str]
    raw_headers: tuple[tuple[str, str], ...]
    body: bytes
    head: bytes = b""


async def read_request(reader: asyncio.StreamReader, max_head: int = MAX_HEAD) -> Request | None:
    """Read one HTTP/1.x request head and its Content-Length body.

    Returns None at a clean EOF before any byte of a request. Raises
    ``asyncio.IncompleteReadError`` on EOF inside a request and ``ValueError`` on a malformed or
    too large head (over ``max_head`` bytes, or over the stream's limit, 64 KiB by default).
    Chunked request bodies are not supported (``ValueError``).
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    except asyncio.LimitOverrunError as exc:
        raise ValueError("request head too large") from exc
    if len(head) > max_head:
        raise ValueError("request head too large")
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError(f"bad request line {lines[0]!r}")
    method, target, version = parts
    raw: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"bad header line {line!r}")
        value = value.strip(" \t")
        raw.append((name, value))
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ValueError("chunked request bodies are not supported here")
    length = int(headers.get("content-length", "0") or "0")
    body = await reader.readexactly(length) if length else b""
    return Request(method, target, version, headers, tuple(raw), body, head)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response(
    status: int,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    reason: str | None = None,
) -> bytes:
    """Build an HTTP/1.1 response: status line, headers, blank line, body.

    Adds ``Content-Length: len(body)`` unless ``headers`` has a Content-Length or
    Transfer-Encoding already (then ``body`` is sent as given, e.g. from :func:`chunked`), or the
    status is 1xx, 204 or 304, which carry no body. ``reason`` defaults to the standard phrase.
    """
    names = {name.lower() for name, _ in headers}
    lines = [f"HTTP/1.1 {status} {reason if reason is not None else _reason(status)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    no_body_status = status < 200 or status in (204, 304)
    if not names & {"content-length", "transfer-encoding"} and not no_body_status:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(chunks: list[bytes], trailers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A chunked transfer-coding body: each non-empty chunk, the last chunk, trailers, CRLF.

    Use with ``response(200, chunked([...]), [("Transfer-Encoding", "chunked")])``.
    """
    out = bytearray()
    for chunk in chunks:
        if chunk:
            out += b"%x\r\n%s\r\n" % (len(chunk), chunk)
    out += b"0\r\n"
    for name, value in trailers:
        out += f"{name}: {value}\r\n".encode("latin-1")
    out += b"\r\n"
    return bytes(out)


def reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection so the peer sees a TCP RST (SO_LINGER on, timeout 0).

    Anything still buffered for writing is dropped.
    """
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- the threaded server -------------------------------------------------------------------


class ConnInfo:
    """What a handler knows about its connection.

    ``index`` is the 1-based accept order on the server, ``requests`` the requests served on
    this connection so far (bumped by :meth:`count_request`), ``peer`` the client address.
    """

    def __init__(self, server: ThreadServer, index: int, peer: tuple[str, int]) -> None:
        self.server = server
        self.index = index
        self.peer = peer
        self.requests = 0

    def count_request(self) -> int:
        """Count one request served, on this connection and on the server; returns this
        connection's count."""
        self.requests += 1
        self.server._bump_requests()
        return self.requests

    def __repr__(self) -> str:
        return f"ConnInfo(index={self.index}, requests={self.requests})"


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, ConnInfo], Awaitable[None]]

# Errors that mean "the client went away": not a handler bug.
_QUIET = (ConnectionError, asyncio.IncompleteReadError, ssl_module.SSLError)


class ServerCrashed(AssertionError):
    """A test server's handler raised: the test's server is broken, not (only) the client."""

    def __init__(self, errors: Sequence[BaseException]) -> None:
        shown = "; ".join(f"{type(e).__name__}: {e}" for e in errors[:3])
        super().__init__(f"test server handler failed {len(errors)} time(s): {shown}")
        self.errors = list(errors)


class ThreadServer:
    """An asyncio server on 127.0.0.1 (port 0) in its own event loop and daemon thread.

    ``with ThreadServer(handler) as srv:`` starts it; leaving the block closes the listener
    and every open client connection and joins the thread (bounded; ``RuntimeError`` if it
    does not stop). The handler is called once per connection as
    ``await handler(reader, writer, conn_info)``; when it returns the connection is closed.
    Client-gone errors (``ConnectionError``, ``IncompleteReadError``, ``SSLError``) are
    swallowed; any other exception is appended to ``errors``, and leaving the ``with`` block
    then fails the test (:class:`ServerCrashed`) unless ``expect_errors=True``: a handler that
    crashes closes its connection, which looks exactly like the server fault many engine tests
    expect, so a broken test server must not pass for a working client.

    Counters, safe to read from any thread: ``accepted``, ``open_now``, ``peak_open``,
    ``requests``. ``conns`` lists the :class:`ConnInfo` of every accepted connection.
    """

    def __init__(
        self,
        handler: Handler,
        ssl: ssl_module.SSLContext | None = None,
        expect_errors: bool = False,
    ) -> None:
        self.handler = handler
        self.ssl = ssl
        self.expect_errors = expect_errors
        self.host = HOST
        self.port = 0
        self.errors: list[BaseException] = []
        self.conns: list[ConnInfo] = []
        self._lock = threading.Lock()
        self._accepted = 0
        self._open_now = 0
        self._peak_open = 0
        self._requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # counters

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, or ``https://`` when serving TLS."""
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._accepted

    @property
    def open_now(self) -> int:
        """Connections whose handler has not returned yet."""
        with self._lock:
            return self._open_now

    @property
    def peak_open(self) -> int:
        """The most connections open at once."""
        with self._lock:
            return self._peak_open

    @property
    def requests(self) -> int:
        """Requests counted by handlers (:meth:`ConnInfo.count_request`)."""
        with self._lock:
            return self._requests

    def conn_requests(self) -> list[int]:
        """Requests served on each connection, in accept order."""
        with self._lock:
            return [c.requests for c in self.conns]

    def _bump_requests(self) -> None:
        with self._lock:
            self._requests += 1

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` until true or ``timeout`` seconds pass; returns its last value.

        For counters that change just after the client sees something (e.g. ``open_now``
        dropping after the client closed).
        """
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    # lifecycle

    def start(self) -> ThreadServer:
        """Start the loop thread and wait (10 s at most) until the port is listening."""
        self._thread = threading.Thread(target=self._run, name="ThreadServer", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("ThreadServer did not start within 10 s")
        if self._startup_error is not None:
            raise RuntimeError("ThreadServer failed to start") from self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, and join the thread (``timeout`` s)."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already gone
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"ThreadServer thread did not stop within {timeout} s")
        self._thread = None

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        except RuntimeError:
            if exc is None:
                raise
        if exc is None:
            self.raise_errors()

    def raise_errors(self) -> None:
        """Raise :class:`ServerCrashed` if a handler failed, unless errors are expected."""
        if self.errors and not self.expect_errors:
            raise ServerCrashed(self.errors)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(self._on_loop_error)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            self._startup_error = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError | asyncio.IncompleteReadError):
            return
        self.errors.append(
            exc if isinstance(exc, BaseException) else RuntimeError(str(context.get("message")))
        )

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._on_conn, self.host, 0, ssl=self.ssl)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            for writer in list(self._writers):
                writer.transport.abort()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=2)
            # let the transports run their connection_lost callbacks (which close the sockets)
            for _ in range(3):
                await asyncio.sleep(0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        with self._lock:
            self._accepted += 1
            self._open_now += 1
            self._peak_open = max(self._peak_open, self._open_now)
            info = ConnInfo(self, self._accepted, writer.get_extra_info("peername"))
            self.conns.append(info)
        try:
            await self.handler(reader, writer, info)
        except _QUIET:
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping
        except Exception as exc:
            self.errors.append(exc)
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            with self._lock:
                self._open_now -= 1
            # Keep the writer listed until its socket is really closed (a close may wait to
            # flush, or for TLS close_notify), so that stopping the server can abort it.
            try:
                await writer.wait_closed()
                self._writers.discard(writer)
            except asyncio.CancelledError:
                pass  # the server is stopping; it aborts what is still listed
            except Exception:
                self._writers.discard(writer)  # lost with an error: closed too
            self._tasks.discard(task)


def json_server(
    make: Callable[[str], dict[str, object]], headers: Sequence[tuple[str, str]] = ()
) -> ThreadServer:
    """Keep-alive; answers each request with the JSON document ``make(target)``, ``headers``
    and a Date header that changes on every response (as a volatile header does)."""
    stamps = itertools.count()

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            extra = [("Content-Type", "application/json"), *headers, ("Date", f"t{next(stamps)}")]
            writer.write(response(200, json.dumps(make(req.target)).encode(), extra))
            await writer.drain()

    return ThreadServer(handler)


def keepalive_handler(
    body: bytes = b"ok", status: int = 200, headers: Sequence[tuple[str, str]] = ()
) -> Handler:
    """A handler serving every request on the connection with the same response until EOF.

    Counts each request. HEAD gets the headers only. Honours ``Connection: close`` from the
    client (answers with ``Connection: close`` and closes), and HTTP/1.0 without keep-alive.
    """

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while True:
            req = await read_request(reader)
            if req is None:
                return
            conn.count_request()
            connection = req.headers.get("connection", "").lower()
            close = "close" in connection or (
                req.version == "HTTP/1.0" and "keep-alive" not in connection
            )
            extra = [("Connection", "close")] if close else []
            data = response(status, body, [*headers, *extra])
            if req.method == "HEAD" and body:
                data = data[: -len(body)]
            writer.write(data)
            await writer.drain()
            if close:
                return

    return handler


def endless_head_handler(
    path: str = "/endless", seconds: float = 5.0, sent: list[int] | None = None
) -> Handler:
    """Keep-alive; answers ``path`` with ``HTTP/1.1 200 OK`` and then header lines with no
    end (for ``seconds`` at most, then it closes: a bound for the test, not a head's end),
    appending to ``sent`` how many bytes it wrote before the client went away. Every other
    request gets a 200 with ``X-A: v``."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            conn.count_request()
            if req.target != path:
                writer.write(response(200, b"ok", [("X-A", "v")]))
                await writer.drain()
                continue
            writer.write(b"HTTP/1.1 200 OK\r\n")
            total, end = 17, time.monotonic() + seconds
            lines = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 40) for i in range(64))
            try:
                while time.monotonic() < end:
                    writer.write(lines)
                    await writer.drain()
                    total += len(lines)
            finally:
                if sent is not None:
                    sent.append(total)
            return

    return handler


# --- nginx ----------------------------------------------------------------------------------

BIG_SIZE = 1024 * 1024


def find_nginx() -> str | None:
    """The nginx binary: ``shutil.which("nginx")``, else ``/usr/sbin/nginx`` if executable."""
    path = shutil.which("nginx")
    if path:
        return path
    if os.access("/usr/sbin/nginx", os.X_OK):
        return "/usr/sbin/nginx"
    return None


# --- real components: which test used which, and none missing under CI ----------------------

REAL_COMPONENTS = ("nginx", "Go", "chromium", "Dask", "Prometheus")
USED_BY: dict[str, set[str]] = {name: set() for name in REAL_COMPONENTS}
"""Node ids of the tests that used each real component (conftest reports the counts)."""


def used(component: str, nodeid: str | None = None) -> None:
    """Note that the running test (or ``nodeid``) uses ``component``."""
    current = nodeid or os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    if current:
        USED_BY[component].add(current)


def require(component: str, missing: str | None) -> None:
    """Go on if ``missing`` is None; else skip the test, saying what is missing, or under CI
    (env ``CI`` set) fail it: CI must never go green on tests that did not run."""
    used(component)
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{missing}, and CI must not skip the {component} tests", pytrace=False)
    pytest.skip(missing)


def require_nginx(finder: Callable[[], str | None] = find_nginx) -> str:
    """The nginx binary, or skip the test; under CI (env ``CI`` set) fail instead of skipping."""
    path = finder()
    require("nginx", None if path else "nginx not installed (Debian: nginx-light)")
    assert path is not None
    return path


BROWSER_DIR = Path(__file__).parent / "browser"


def record_har(page_url: str, har: Path) -> None:
    """A HAR of Debian's chromium (driven by playwright-core) opening ``page_url``. Skips
    without node, chromium or playwright-core (fails under CI, as nginx does)."""
    node, chromium = _browser()
    script = str(BROWSER_DIR / "record_har.js")
    env = {**os.environ, "CHROMIUM": chromium}
    done = subprocess.run(
        [node, script, page_url, str(har)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def open_in_browser(page_url: str, screenshot: Path) -> dict[str, Any]:
    """What Debian's chromium finds on ``page_url`` (see ``browser/check_page.js``)."""
    node, chromium = _browser()
    script = str(BROWSER_DIR / "check_page.js")
    env = {**os.environ, "CHROMIUM": chromium}
    done = subprocess.run(
        [node, script, page_url, str(screenshot)], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _browser() -> tuple[str, str]:
    node, chromium = shutil.which("node"), shutil.which("chromium")
    ready = node and chromium and (BROWSER_DIR / "node_modules").is_dir()
    require("chromium", None if ready else "node, chromium or playwright-core missing "
            "(scripts/ensure-browser)")  # fmt: skip
    assert node is not None and chromium is not None
    return node, chromium


@dataclass
class DaskCluster:
    """A scheduler and workers on 127.0.0.1, each its own process (see :func:`dask_cluster`)."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


@contextlib.contextmanager
def dask_cluster(directory: Path, workers: int) -> Iterator[DaskCluster]:
    """Start ``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1 (no
    nanny, so a killed worker stays dead); stop them by their PIDs."""
    try:
        from distributed import Client
    except ImportError:
        require("Dask", "distributed is not installed (pip install tether[cluster])")
    else:
        used("Dask")

    info = directory / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", HOST, "--port", "0",
         "--no-dashboard", "--scheduler-file", str(info)], **quiet,
    )  # fmt: skip
    started: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 30
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        address = json.loads(info.read_text())["address"]
        for _ in range(workers):
            started.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--host",
                        HOST,
                        "--nthreads",
                        "2",
                        "--no-nanny",
                        "--no-dashboard",
                    ],
                    **quiet,
                )
            )
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=30)
        yield DaskCluster(address, scheduler, started)
    finally:
        for proc in [*started, scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*started, scheduler]:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


GO_PPROF_SERVER = Path(__file__).parent / "go" / "pprofserver.go"


@contextlib.contextmanager
def go_pprof_server(build_dir: Path) -> Iterator[str]:
    """Build and start the Go net/http server with pprof (see ``go/pprofserver.go``); yield
    its URL; stop it by its PID. Skips without Go (fails under CI, as nginx does)."""
    go = shutil.which("go")
    require("Go", None if go else "Go not installed (Debian: golang-go)")
    assert go is not None
    binary = build_dir / "pprofserver"
    env = {**os.environ, "GO111MODULE": "off", "GOCACHE": str(build_dir / "cache")}
    env["GOPATH"] = str(build_dir / "gopath")
    build = [go, "build", "-o", str(binary), str(GO_PPROF_SERVER)]
    subprocess.run(build, env=env, check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://{proc.stdout.readline().strip()}"
    finally:
        proc.terminate()
        proc.wait(10)


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
scrape_configs:
  - job_name: tether
    static_configs:
      - targets: ["{target}"]
"""


@dataclass
class PrometheusServer:
    """A real Prometheus on 127.0.0.1 (see :func:`prometheus_server`): its URL, and instant
    queries through its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result vector of ``/api/v1/query?query=EXPR`` at this moment."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The one value ``expr`` gives now, or None while it gives none."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


@contextlib.contextmanager
def prometheus_server(
    directory: Path, target: str, interval: str = "1s"
) -> Iterator[PrometheusServer]:
    """Debian's Prometheus on a free 127.0.0.1 port, scraping ``target`` (HOST:PORT) every
    ``interval``, its storage in ``directory``; stopped by its PID. Skips without it (fails
    under CI, as nginx does)."""
    binary = shutil.which("prometheus")
    require("Prometheus", None if binary else "Prometheus not installed (Debian: prometheus)")
    assert binary is not None
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(interval=interval, target=target))
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address={HOST}:{port}",
    ]
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    server = PrometheusServer(f"http://{HOST}:{port}", proc)
    try:
        _wait_ready(server, directory / "prometheus.log")
        _wait_scraping(server, target)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_ready(server: PrometheusServer, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server.process.poll() is None:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"Prometheus did not start: {log.read_text()[-2000:]}")


def _wait_scraping(server: PrometheusServer, target: str) -> None:
    """Until Prometheus has tried ``target`` once (down, before tether serves it): it hands
    new targets to its scrapers up to 5 s after it starts, which would leave a short run
    unscraped until its end."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{server.url}/api/v1/targets", timeout=5) as answer:
            active = json.load(answer)["data"]["activeTargets"]
        tried = [
            t for t in active if t["labels"]["instance"] == target and t["health"] != "unknown"
        ]
        if tried:
            return
        time.sleep(0.1)
    raise AssertionError(f"Prometheus never scraped {target}")


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def big_body() -> bytes:
    """The exact 1 MiB served at ``/big``: bytes 0..255 repeated."""
    return bytes(range(256)) * (BIG_SIZE // 256)


_STUB_RE = re.compile(
    r"Active connections:\s*(\d+)\s*server accepts handled requests\s*(\d+)\s+(\d+)\s+(\d+)"
    r"\s*Reading:\s*(\d+)\s*Writing:\s*(\d+)\s*Waiting:\s*(\d+)"
)


def parse_stub_status(text: str) -> dict[str, int]:
    """Parse nginx's stub_status page into active, accepts, handled, requests, reading,
    writing, waiting."""
    m = _STUB_RE.search(text)
    if not m:
        raise ValueError(f"not a stub_status page: {text!r}")
    keys = ("active", "accepts", "handled", "requests", "reading", "writing", "waiting")
    return dict(zip(keys, map(int, m.groups()), strict=True))


def nginx_config(
    prefix: Path, port: int, http: str = "", server: str = "", locations: str = ""
) -> str:
    """The nginx.conf text for :func:`start_nginx` (see there)."""
    user = "user root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    return f"""\
daemon off;
master_process on;
worker_processes 1;
{user}pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body_temp;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi_temp;
    uwsgi_temp_path {prefix}/uwsgi_temp;
    scgi_temp_path {prefix}/scgi_temp;
    default_type application/octet-stream;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    {http}
    server {{
        listen {HOST}:{port};
        server_name localhost;
        {server}
        location = /status {{ stub_status; }}
        location / {{ default_type text/plain; return 200 "hello\\n"; }}
        location /r/ {{ return 302 https://example.org$request_uri; }}
        location = /big {{ alias {prefix}/big.bin; }}
        location = /echo-method {{ default_type text/plain; return 200 "$request_method"; }}
        {locations}
    }}
}}
"""


class NginxServer:
    """A real nginx master + one worker on 127.0.0.1:``port``, started by :func:`start_nginx`.

    Locations: ``= /status`` (stub_status), ``/`` (200 ``hello\\n``, text/plain), ``/r/...``
    (302 to ``https://example.org/r/...``), ``= /big`` (the 1 MiB :func:`big_body`),
    ``= /echo-method`` (200, the request method as body).
    """

    def __init__(self, binary: str, prefix: Path, port: int, proc: subprocess.Popen[bytes]):
        self.binary = binary
        self.prefix = prefix
        self.port = port
        self.host = HOST
        self.url = f"http://{HOST}:{port}"
        self.proc = proc
        self.pid = proc.pid

    def stub_status(self) -> dict[str, int]:
        """nginx's own counters: active, accepts, handled, requests, reading, writing, waiting.

        Fetched with urllib from ``/status`` on a new connection (urllib sends
        ``Connection: close``), so each call is itself one connection and one request, and the
        numbers it returns already include it: between two calls, ``accepts``/``handled`` and
        ``requests`` grow by 1 more than the test's own traffic, and ``active`` and
        ``writing`` count the status fetch itself. Callers subtract it.
        """
        with urllib.request.urlopen(f"{self.url}/status", timeout=5) as resp:
            return parse_stub_status(resp.read().decode())

    def error_log(self) -> str:
        """The text of nginx's error log (notice level) so far."""
        try:
            return (self.prefix / "error.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        """True while the master process is alive."""
        return self.proc.poll() is None

    def stop(self) -> None:
        """Graceful stop (SIGQUIT, 5 s), then SIGTERM (3 s), then SIGKILL to its process
        group (nginx is started in a session of its own, so that group is nginx's only)."""
        proc = self.proc
        for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGTERM, 3.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def __repr__(self) -> str:
        return f"NginxServer(url={self.url!r}, pid={self.pid})"


def start_nginx(
    prefix: Path,
    http: str = "",
    server: str = "",
    locations: str = "",
    binary: str | None = None,
    attempts: int = 3,
) -> NginxServer:
    """Start nginx in the empty directory ``prefix`` on a free port and wait until it accepts.

    ``http`` is extra directives for the http block, ``server`` for the server block (put
    ``keepalive_requests``/``keepalive_timeout`` overrides there: the http block already sets
    ``keepalive_requests 100000; keepalive_timeout 75s;``), ``locations`` extra location blocks.
    Waits at most 10 s for the port (the readiness probe is one connection nginx counts in
    ``accepts``). Retries on a new port if the chosen one was taken meanwhile.
    """
    binary = binary or require_nginx()
    prefix.mkdir(parents=True, exist_ok=True)
    big = prefix / "big.bin"
    if not big.exists():
        big.write_bytes(big_body())
    last_error = ""
    for _ in range(attempts):
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_config(prefix, port, http, server, locations))
        (prefix / "error.log").write_text("")
        with open(prefix / "stderr.log", "wb") as err:
            proc = subprocess.Popen(
                [binary, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        nginx = NginxServer(binary, prefix, port, proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection((HOST, port), timeout=1):
                    return nginx
            except OSError:
                time.sleep(0.05)
        nginx.stop()
        stderr = (prefix / "stderr.log").read_text(errors="replace")
        last_error = f"{stderr}\n{nginx.error_log()}".strip()
        if "Address already in use" not in last_error:
            break
    raise RuntimeError(f"nginx did not start in {prefix}:\n{last_error}")


NginxFactory = Callable[..., NginxServer]
"""The ``nginx_factory`` fixture's type: ``(http="", server="", locations="") -> NginxServer``."""


# --- a capturing echo server: what the client really sent -----------------------------------

Responder = Callable[[Request], bytes]
"""Makes the whole response (see :func:`response`) to one request, for :class:`EchoServer`."""


@dataclass(frozen=True)
class Captured:
    """One request as :class:`EchoServer` received it.

    ``head`` is the request line and the header lines through the blank line, byte for byte
    as they arrived; ``body`` the Content-Length body that followed; ``request`` the same
    bytes parsed by :func:`read_request`; ``conn`` the 1-based index of its connection.
    """

    head: bytes
    body: bytes
    request: Request
    conn: int

    @property
    def raw(self) -> bytes:
        """Head and body, exactly as received."""
        return self.head + self.body

    @property
    def target(self) -> str:
        """The request-target of the request line (path and query, as sent)."""
        return self.request.target

    def values(self, name: str) -> list[str]:
        """Every value sent for header ``name`` (any case), in order. Unlike
        ``request.headers`` this does not join repeats: a header sent twice shows twice."""
        key = name.lower()
        return [value for sent, value in self.request.raw_headers if sent.lower() == key]


async def read_captured(reader: asyncio.StreamReader, conn: int) -> Captured | None:
    """Read one request keeping its exact bytes (by :func:`read_request`, so the capture and
    every other test server agree on what a request is); None at a clean EOF before one."""
    request = await read_request(reader)
    return None if request is None else Captured(request.head, request.body, request, conn)


def echo_ok(request: Request) -> bytes:
    """The default answer: 200 with the body ``echo`` (headers only for HEAD)."""
    return response(200, b"" if request.method == "HEAD" else b"echo")


class EchoServer(ThreadServer):
    """A keep-alive server that records the bytes of every request and then answers it.

    ``routes`` maps a request-target's path (its query left out) to a :data:`Responder` or to
    fixed response bytes, e.g. ``{"/a": response(307, b"", [("Location", "/b")])}``; other
    paths get ``default`` (:func:`echo_ok` unless given). A request that says
    ``Connection: close`` is answered with ``Connection: close`` and its connection closed,
    as a real server does. Each request is captured before it is answered, so once the client
    has its response, :attr:`captured` holds the request.
    """

    def __init__(
        self,
        routes: dict[str, Responder | bytes] | None = None,
        default: Responder = echo_ok,
    ) -> None:
        super().__init__(self._serve)
        self.routes = dict(routes or {})
        self.default = default
        self._captured: list[Captured] = []
        self._captured_lock = threading.Lock()

    def __enter__(self) -> EchoServer:
        self.start()
        return self

    @property
    def captured(self) -> list[Captured]:
        """Every request received so far, in arrival order (a copy)."""
        with self._captured_lock:
            return list(self._captured)

    def only(self) -> Captured:
        """The one request received; AssertionError naming what came if that is not one."""
        seen = self.captured
        assert len(seen) == 1, f"expected one request, got {[c.head for c in seen]}"
        return seen[0]

    def answer(self, request: Request) -> bytes:
        """The response bytes for ``request``: its route's, else the default's."""
        route = self.routes.get(request.target.split("?", 1)[0], self.default)
        data = route if isinstance(route, bytes) else route(request)
        if "close" in request.headers.get("connection", "").lower():
            # Say so on the response too: ``Connection: close`` goes right after the status line.
            status_line, _, rest = data.partition(b"\r\n")
            data = status_line + b"\r\nConnection: close\r\n" + rest
        return data

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (got := await read_captured(reader, conn.index)) is not None:
            conn.count_request()
            with self._captured_lock:
                self._captured.append(got)
            writer.write(self.answer(got.request))
            await writer.drain()
            if "close" in got.request.headers.get("connection", "").lower():
                return
