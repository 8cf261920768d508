"""The demo service: a small URL shortener that counts its own connections.

It stands in for "a new web service" a developer is validating. It speaks HTTP/1.1 over
asyncio Protocols with httptools' request parser (uvloop when installed), keeps connections
alive by default, honours ``Connection: close`` and HTTP/1.0, and answers one request at a
time per connection (pipelined requests are parsed from the same buffer and answered in
order).

Routes:

``GET|HEAD /r/<code>``
    ``302 Found`` with ``Location: <target>`` and a 4096-byte HTML body; 404 for an unknown
    code. The table is fixed: ``c0000`` .. ``c0999``, code ``c{i:04d}`` -> target
    ``https://example.org/page/<i>`` (see :func:`demo_links`), plus whatever ``/shorten``
    added to this server.
``GET|HEAD /_stats``
    JSON ``{"open", "open_excluding_self", "peak_open", "accepted", "requests"}``.
``POST /_stats/reset``
    Resets ``peak_open`` to the current ``open``, and ``accepted`` and ``requests`` to 0;
    answers with the new stats.
``GET|HEAD /_stats/process``
    JSON ``{"fds", "fd_limit", "rss_bytes"}``: what the process the server runs in holds
    right now (see :func:`process_usage`), each ``null`` where the system does not say.
``POST /shorten``
    JSON body ``{"url": "http(s)://..."}`` -> ``201`` with ``Location: /r/<code>`` and a JSON
    body ``{"code", "url", "short"}``. New codes are ``s0000``, ``s0001``, ... per server.

Counting (see :class:`ServerStats`): ``open`` is the number of client connections open right
now, *including* the one the ``/_stats`` request arrives on; ``open_excluding_self`` is that
minus one. ``accepted`` counts connections accepted since the last reset, and ``requests``
counts requests answered since the last reset, *not* counting the ``/_stats...`` control
requests themselves, so after a reset it equals the number of requests a harness sent.

The server never logs per request and never times idle connections out: a client that
leaks connections keeps them open here, which is what the demo makes visible.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from typing import Any, Final, cast

import httptools

__all__ = [
    "BODY_SIZE",
    "DEMO_CODES",
    "DemoServer",
    "ServerStats",
    "demo_links",
    "demo_target",
    "main",
    "new_event_loop",
    "parse_vmrss",
    "process_usage",
    "redirect_body",
    "serve_in_thread",
]

DEMO_CODES: Final = 1000
"""How many codes the fixed table holds: ``c0000`` .. ``c0999``."""

BODY_SIZE: Final = 4096
"""Size in bytes of every redirect body."""

MAX_REQUEST_BODY: Final = 64 * 1024
"""Larger request bodies get ``413`` and the connection is closed."""

_SERVER_NAME: Final = b"tether-demo"
_STATS_PATH: Final = "/_stats"
_RESET_PATH: Final = "/_stats/reset"
_PROCESS_PATH: Final = "/_stats/process"
_SHORTEN_PATH: Final = "/shorten"
_REDIRECT_PREFIX: Final = "/r/"


def demo_target(i: int) -> str:
    """The target of table entry ``i`` (code ``c{i:04d}``)."""
    return f"https://example.org/page/{i}"


def demo_links() -> dict[str, str]:
    """The fixed table, code -> target, in order: ``{"c0000": ".../page/0", ...}``."""
    return {f"c{i:04d}": demo_target(i) for i in range(DEMO_CODES)}


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is installed, else asyncio's default."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


# --------------------------------------------------------------------------- responses

_REASONS: Final = {
    100: "Continue",
    200: "OK",
    201: "Created",
    302: "Found",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    500: "Internal Server Error",
}

# What follows the prebuilt head (which ends with the last header's CRLF).
_END_KEEP_ALIVE: Final = b"\r\n"
_END_KEEP_ALIVE_10: Final = b"Connection: keep-alive\r\n\r\n"
_END_CLOSE: Final = b"Connection: close\r\n\r\n"


def _head(status: int, headers: Sequence[tuple[str, str]], length: int) -> bytes:
    """Status line and headers, each line ending in CRLF, without the final empty line."""
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    lines.append(f"Content-Length: {length}\r\nServer: {_SERVER_NAME.decode()}\r\n")
    return "".join(lines).encode("latin-1")


def redirect_body(target: str) -> bytes:
    """The HTML body of a redirect to ``target``: exactly :data:`BODY_SIZE` bytes of ASCII.

    Deterministic: the same target always gives the same bytes. Targets so long that the
    page would not fit get a longer body (never truncated).
    """
    href = escape(target, quote=True)
    start = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>302 Found</title></head>\n'
        f'<body><h1>Found</h1><p>Moved to <a href="{href}">{href}</a>.</p>\n<!-- '
    )
    end = " -->\n</body></html>\n"
    room = BODY_SIZE - len(start) - len(end)
    filler = "tether demo padding " * (max(room, 0) // 20 + 1)
    return (start + filler[: max(room, 0)] + end).encode("ascii", "xmlcharrefreplace")


@cache
def _redirect_parts(target: str) -> tuple[bytes, bytes]:
    """Prebuilt ``(head, body)`` of the 302 for ``target``; cached, so built once per target."""
    body = redirect_body(target)
    head = _head(302, [("Location", target), ("Content-Type", "text/html")], len(body))
    return head, body


# --------------------------------------------------------------------------- stats


@dataclass(slots=True)
class ServerStats:
    """The server's own counts. Mutated only on the server's event loop thread.

    Reading the fields from another thread is safe (each is a plain ``int``), though a
    :meth:`snapshot` taken there may mix values from either side of one event.
    """

    open: int = 0
    """Client connections open right now."""
    peak_open: int = 0
    """Highest ``open`` since the last reset (or since start)."""
    accepted: int = 0
    """Connections accepted since the last reset."""
    requests: int = 0
    """Requests answered since the last reset, not counting ``/_stats`` and its reset."""

    def snapshot(self, *, on_own_connection: bool = False) -> dict[str, int]:
        """The counts as the ``/_stats`` JSON object.

        ``open_excluding_self`` is ``open`` minus one when the snapshot is taken for a
        request arriving on one of the counted connections (``on_own_connection``).
        """
        own = 1 if on_own_connection and self.open > 0 else 0
        return {
            "open": self.open,
            "open_excluding_self": self.open - own,
            "peak_open": self.peak_open,
            "accepted": self.accepted,
            "requests": self.requests,
        }

    def reset(self) -> None:
        """``peak_open`` back to ``open``, ``accepted`` and ``requests`` to zero."""
        self.peak_open = self.open
        self.accepted = 0
        self.requests = 0

    def _opened(self) -> None:
        self.open += 1
        self.accepted += 1
        self.peak_open = max(self.peak_open, self.open)

    def _closed(self) -> None:
        self.open -= 1


# --------------------------------------------------------------------------- the process

# Where the kernel lists this process's open descriptors: Linux's, then the BSDs' and macOS's.
_FD_DIRS: Final = ("/proc/self/fd", "/dev/fd")


def open_fds() -> int | None:
    """How many file descriptors this process has open, or None where no directory lists
    them."""
    for where in _FD_DIRS:
        try:
            names = os.listdir(where)
        except OSError:
            continue
        return len(names) - 1  # listing the directory opened one more descriptor: its own
    return None


def fd_limit() -> int | None:
    """The soft limit on open file descriptors: past it the server can accept no new
    connection. None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def parse_vmrss(status: str) -> int | None:
    """Resident memory in bytes from the text of ``/proc/<pid>/status`` (its ``VmRSS:``
    line, in kB), or None without one."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "VmRSS":
            kilobytes, _, unit = value.strip().partition(" ")
            return int(kilobytes) * 1024 if unit == "kB" else None
    return None


def resident_bytes() -> int | None:
    """This process's resident memory now, or None where ``/proc`` does not say (the
    getrusage figure is a lifetime peak, which cannot show memory given back)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            return parse_vmrss(status.read())
    except OSError:
        return None


def process_usage() -> dict[str, int | None]:
    """What this process holds now, as the ``/_stats/process`` JSON object."""
    return {"fds": open_fds(), "fd_limit": fd_limit(), "rss_bytes": resident_bytes()}


# --------------------------------------------------------------------------- protocol


class _Connection(asyncio.Protocol):
    """One client connection. Parsing and answering are synchronous, so responses to
    pipelined requests go out in order without any queue."""

    __slots__ = (
        "_body",
        "_body_size",
        "_closing",
        "_expect_continue",
        "_parser",
        "_server",
        "_transport",
        "_url",
    )

    def __init__(self, server: DemoServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser: Any = httptools.HttpRequestParser(self)
        self._closing = False
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._expect_continue = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence a cast, not a check.
        self._transport = cast(asyncio.Transport, transport)
        self._server._connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server._connection_lost(self)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade/CONNECT are not supported; anything already answered stays answered.
            self.close()
        except httptools.HttpParserError:
            if not self._closing:
                self._write(_plain(400, "bad request\n"), head=False, keep_alive=False)

    def eof_received(self) -> bool | None:
        # Answers are written as soon as a request is complete, so there is nothing left to
        # send for a half-closed client: let the transport close itself.
        return None

    def pause_writing(self) -> None:
        # A client that pipelines without reading gets back-pressure instead of a
        # growing buffer here.
        if self._transport is not None and not self._closing:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._body_size = 0
        self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"expect" and value.strip().lower() == b"100-continue":
            self._expect_continue = True

    def on_headers_complete(self) -> None:
        if self._expect_continue and not self._closing and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size <= MAX_REQUEST_BODY:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._closing:
            return  # a pipelined request after one that closed the connection
        parser = self._parser
        method: bytes = parser.get_method()
        keep_alive: bool = parser.should_keep_alive()
        http10 = parser.get_http_version() == "1.0"
        try:
            if self._body_size > MAX_REQUEST_BODY:
                response = _plain(413, "request body too large\n")
                keep_alive = False
            else:
                response = self._server._respond(method, self._url, b"".join(self._body))
        except Exception:  # a bug in a handler must not kill the parser
            response = _plain(500, "internal error\n")
            keep_alive = False
        self._write(response, head=method == b"HEAD", keep_alive=keep_alive, http10=http10)

    # helpers

    def _write(
        self, response: _Response, *, head: bool, keep_alive: bool, http10: bool = False
    ) -> None:
        transport = self._transport
        if transport is None or self._closing:
            return
        if not keep_alive:
            end = _END_CLOSE
        elif http10:
            end = _END_KEEP_ALIVE_10
        else:
            end = _END_KEEP_ALIVE
        if end is _END_KEEP_ALIVE and not head and response.whole is not None:
            transport.write(response.whole)
        elif head:
            transport.write(response.head + end)
        else:
            transport.write(b"".join((response.head, end, response.body)))
        if not keep_alive:
            self.close()

    def close(self) -> None:
        """Close after what was written has been sent."""
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close now, dropping anything unsent."""
        self._closing = True
        if self._transport is not None:
            self._transport.abort()


@dataclass(frozen=True, slots=True)
class _Response:
    head: bytes
    body: bytes
    whole: bytes | None = None
    """``head + CRLF + body`` when prebuilt (the common keep-alive case)."""


def _plain(status: int, text: str) -> _Response:
    body = text.encode()
    return _Response(
        _head(status, [("Content-Type", "text/plain; charset=utf-8")], len(body)), body
    )


def _json(status: int, value: object, extra: Sequence[tuple[str, str]] = ()) -> _Response:
    body = (json.dumps(value) + "\n").encode()
    headers = [*extra, ("Content-Type", "application/json")]
    return _Response(_head(status, headers, len(body)), body)


def _not_allowed(allow: str) -> _Response:
    body = b"method not allowed\n"
    headers = [("Allow", allow), ("Content-Type", "text/plain; charset=utf-8")]
    return _Response(_head(405, headers, len(body)), body)


_NOT_FOUND: Final = _plain(404, "not found\n")


# --------------------------------------------------------------------------- server


class DemoServer:
    """The demo URL shortener. Use from one event loop: :meth:`start`, then :meth:`stop`."""

    def __init__(self) -> None:
        self.stats = ServerStats()
        """Live counts; see :class:`ServerStats`."""
        self._links: dict[str, str] = demo_links()
        self._prebuilt: dict[str, _Response] = {}
        self._next_short = 0
        self._connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    @property
    def links(self) -> dict[str, str]:
        """A copy of the current code -> target table."""
        return dict(self._links)

    def prebuild(self) -> None:
        """Build every response of the fixed table now (about 8 MB), so that the memory the
        process holds later grows with its connections, not with a cache filling up."""
        for code in demo_links():
            self._redirect(code)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 picks a free port) and return the bound port."""
        if self._server is not None:
            raise RuntimeError("DemoServer already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, backlog=1024
        )
        sockets = self._server.sockets
        bound: int = sockets[0].getsockname()[1]
        return bound

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening and close every client connection.

        Connections get ``grace`` seconds to flush what was written to them; any still
        open after that (a client that never reads) are aborted. Safe to call twice.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for conn in list(self._connections):
            conn.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._connections and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self._connections):
            conn.abort()
        await server.wait_closed()
        # Let aborted transports deliver connection_lost.
        for _ in range(100):
            if not self._connections:
                break
            await asyncio.sleep(0.01)

    # called by _Connection

    def _connection_made(self, conn: _Connection) -> None:
        self._connections.add(conn)
        self.stats._opened()

    def _connection_lost(self, conn: _Connection) -> None:
        if conn in self._connections:
            self._connections.remove(conn)
            self.stats._closed()

    def _respond(self, method: bytes, url: bytes, body: bytes) -> _Response:
        path = url.split(b"?", 1)[0].decode("latin-1")
        if path.startswith(_REDIRECT_PREFIX):
            self.stats.requests += 1
            if method not in (b"GET", b"HEAD"):
                return _not_allowed("GET, HEAD")
            return self._redirect(path[len(_REDIRECT_PREFIX) :])
        if path == _STATS_PATH:
            if method not in (b"GET", b"HEAD"):
                return _not_allowed("GET, HEAD")
            return _json(200, self.stats.snapshot(on_own_connection=True))
        if path == _RESET_PATH:
            if method != b"POST":
                return _not_allowed("POST")
            self.stats.reset()
            return _json(200, self.stats.snapshot(on_own_connection=True))
        if path == _PROCESS_PATH:
            if method not in (b"GET", b"HEAD"):
                return _not_allowed("GET, HEAD")
            return _json(200, process_usage())
        self.stats.requests += 1
        if path == _SHORTEN_PATH:
            if method != b"POST":
                return _not_allowed("POST")
            return self._shorten(body)
        return _NOT_FOUND

    def _redirect(self, code: str) -> _Response:
        response = self._prebuilt.get(code)
        if response is None:
            target = self._links.get(code)
            if target is None:
                return _NOT_FOUND
            head, body = _redirect_parts(target)
            response = _Response(head, body, head + b"\r\n" + body)
            self._prebuilt[code] = response
        return response

    def _shorten(self, body: bytes) -> _Response:
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"error": "body must be JSON"})
        url = value.get("url") if isinstance(value, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _json(400, {"error": 'expected {"url": "http(s)://..."}'})
        if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in url):
            return _json(400, {"error": "url must be printable ASCII without spaces"})
        code = f"s{self._next_short:04d}"
        self._next_short += 1
        self._links[code] = url
        short = _REDIRECT_PREFIX + code
        return _json(201, {"code": code, "url": url, "short": short}, [("Location", short)])


# --------------------------------------------------------------------------- running it


def serve_in_thread(port: int = 0, host: str = "127.0.0.1") -> tuple[int, Callable[[], None]]:
    """Run a :class:`DemoServer` in a daemon thread with its own event loop.

    Returns ``(bound_port, stop)``. ``stop()`` closes the server and every connection,
    stops the loop and joins the thread; calling it again does nothing.
    """
    loop = new_event_loop()
    server = DemoServer()
    ready: concurrent.futures.Future[int] = concurrent.futures.Future()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                bound = loop.run_until_complete(server.start(host, port))
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(bound)
            loop.run_forever()
            loop.run_until_complete(server.stop())  # no-op unless stop() timed out
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="tether-demo-server", daemon=True)
    thread.start()
    bound = ready.result(timeout=30)
    lock = threading.Lock()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        with lock:
            if stopped:
                return
            stopped = True
        if thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(server.stop(), loop)
            with contextlib.suppress(concurrent.futures.TimeoutError):
                future.result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    return bound, stop


async def _serve_until_signalled(host: str, port: int) -> None:
    server = DemoServer()
    server.prebuild()
    bound = await server.start(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"listening on http://{shown}:{bound}", flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tether.demo.server [--host H] [--port P]``.

    Prints exactly one line, ``listening on http://H:PORT`` (flushed), then serves until
    SIGINT or SIGTERM and returns 0.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tether.demo.server", description="Run tether's demo URL shortener."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free one)")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve_until_signalled(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
