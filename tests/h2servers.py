"""Real HTTP/2 servers for the tests, on 127.0.0.1: no mocks.

- :class:`H2Server`: a small HTTP/2 server built on the h2 library (the server side of the
  same state machine tether's client drives), h2c with prior knowledge or TLS, that counts
  what only a server can see: the most streams open at once on each connection, and the
  streams and connections it served. Its behaviour is set by :class:`H2Behaviour` (a
  SETTINGS_MAX_CONCURRENT_STREAMS, a small INITIAL_WINDOW_SIZE given back late, responses
  held open, streams reset or refused).
- :func:`start_h2_nginx`: nginx with an ``http2`` listener over TLS (ALPN h2 and http/1.1)
  and an h2c (prior-knowledge) one, certificates from trustme; its stub_status on the plain
  listener.
- :func:`go_h2_server`: Go's net/http over TLS, which speaks HTTP/2 there by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trustme
from h2.errors import ErrorCodes

from servers import HOST, ConnInfo, NginxFactory, NginxServer, ThreadServer, free_port, require

# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """A trustme CA and a certificate it issued for 127.0.0.1, as files."""

    ca: trustme.CA
    cacert: str  # the CA's PEM: what ``--cacert`` is given
    cert: str  # the server's certificate chain and key, in one PEM
    key: str  # the server's key alone


def make_certs(directory: Path) -> Certs:
    """A new CA and a certificate for 127.0.0.1, written under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert(HOST)
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    issued.private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    issued.private_key_pem.write_to_path(str(paths["key"]))
    return Certs(ca, str(paths["ca"]), str(paths["cert"]), str(paths["key"]))


def server_context(certs: Certs, alpn: tuple[str, ...] = ("h2",)) -> ssl.SSLContext:
    """A server's TLS context for ``certs`` that picks from ``alpn``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert)
    context.set_alpn_protocols(list(alpn))
    return context


# --- an HTTP/2 server on the h2 library -----------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One path's answer: its status, its fields (sent as given: a ``content-length`` only
    if listed), its body in DATA frames of ``chunk`` bytes, and trailers if any."""

    status: int = 200
    fields: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    chunk: int = 16_384
    trailers: tuple[tuple[bytes, bytes], ...] = ()


def framed(status: int, body: bytes, *fields: tuple[bytes, bytes]) -> Route:
    """A route whose body is framed by a content-length."""
    return Route(status, (*fields, (b"content-length", str(len(body)).encode())), body)


@dataclass
class H2Behaviour:
    """What :class:`H2Server` does.

    - ``max_streams``: its SETTINGS_MAX_CONCURRENT_STREAMS (None: not said, unlimited).
    - ``initial_window``: its INITIAL_WINDOW_SIZE, what a client may send on a stream
      before it gives more; request body bytes are given back ``window_delay`` seconds after
      they arrive (a client sending a larger body waits: a flow-control stall).
    - ``hold``: seconds each response waits before it is sent (so that streams overlap);
      ``slow``: seconds a response to a path under ``/slow/`` waits.
    - ``body``: what every response carries (200); ``/rst/CODE`` is reset with that error
      code name instead, and a path under ``/refuse/`` is refused (REFUSED_STREAM) the first
      time it is asked, and then answered.
    - ``routes``: paths answered as their :class:`Route` says instead.
    """

    max_streams: int | None = None
    initial_window: int = 65_535
    window_delay: float = 0.0
    hold: float = 0.0
    slow: float = 0.0
    body: bytes = b"hello\n"
    routes: dict[str, Route] = field(default_factory=dict)


class H2Server(ThreadServer):
    """An HTTP/2 server (see the module's docstring): h2c with prior knowledge, or TLS with
    ALPN ``h2`` when given a context. Thread-safe counters: ``peak_streams`` (the most
    streams open at once on any one connection: from a request's HEADERS until its
    response's END_STREAM or a reset), ``streams``, and ThreadServer's ``accepted``."""

    def __init__(
        self, behaviour: H2Behaviour | None = None, ssl: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(self._serve, ssl=ssl)
        self.behaviour = behaviour or H2Behaviour()
        self._counts_lock = threading.Lock()
        self._peak = 0
        self._streams = 0
        self._refused: set[str] = set()
        self._heads: list[list[tuple[bytes, bytes]]] = []

    def __enter__(self) -> H2Server:
        self.start()
        return self

    @property
    def peak_streams(self) -> int:
        with self._counts_lock:
            return self._peak

    @property
    def streams(self) -> int:
        with self._counts_lock:
            return self._streams

    @property
    def heads(self) -> list[list[tuple[bytes, bytes]]]:
        """Every request's header fields as they arrived, pseudo-header fields first."""
        with self._counts_lock:
            return list(self._heads)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        served = _Served(self, writer, info)
        writer.write(served.start())
        try:
            while data := await reader.read(65_536):
                served.received(data)
                await writer.drain()
        finally:
            served.stop()

    def _opened(self, now_open: int, head: list[tuple[bytes, bytes]]) -> None:
        with self._counts_lock:
            self._streams += 1
            self._peak = max(self._peak, now_open)
            self._heads.append(head)

    def forget_refused(self) -> None:
        """Refuse each path under /refuse/ once again, as if just started."""
        with self._counts_lock:
            self._refused.clear()

    def _refuses(self, path: str) -> bool:
        """Whether ``path`` is refused now: the first time each one under /refuse/ is."""
        with self._counts_lock:
            first = path.startswith("/refuse/") and path not in self._refused
            self._refused.add(path)
            return first


@dataclass
class _Served:
    """One connection of an :class:`H2Server`."""

    server: H2Server
    writer: asyncio.StreamWriter
    info: ConnInfo
    open: set[int] = field(default_factory=set)
    paths: dict[int, str] = field(default_factory=dict)  # of requests whose body is coming
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)

    def start(self) -> bytes:
        b = self.server.behaviour
        codes = h2.settings.SettingCodes
        settings = {codes.INITIAL_WINDOW_SIZE: b.initial_window}
        if b.max_streams is not None:
            settings[codes.MAX_CONCURRENT_STREAMS] = b.max_streams
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        self.h2.initiate_connection()
        return self.h2.data_to_send()

    def received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.open.add(event.stream_id)
                self.server._opened(len(self.open), list(event.headers))
                path = dict(event.headers)[b":path"].decode()
                if event.stream_ended:
                    self._answer(event.stream_id, path)
                else:
                    self.paths[event.stream_id] = path
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in self.paths:
                self._answer(event.stream_id, self.paths.pop(event.stream_id))
            elif isinstance(event, h2.events.DataReceived):
                self._later(
                    self.server.behaviour.window_delay,
                    self._acknowledge,
                    event.stream_id,
                    event.flow_controlled_length,
                )
            elif isinstance(event, h2.events.StreamReset):
                self.open.discard(event.stream_id)
        self._flush()

    def _later(self, delay: float, what: object, *args: object) -> None:
        async def run() -> None:
            if delay:
                await asyncio.sleep(delay)
            with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
                what(*args)  # type: ignore[operator]
                self._flush()

        task = asyncio.ensure_future(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _acknowledge(self, stream_id: int, size: int) -> None:
        self.h2.acknowledge_received_data(size, stream_id)

    def _answer(self, stream_id: int, path: str) -> None:
        b = self.server.behaviour
        wait = b.slow if path.startswith("/slow/") else b.hold
        self._later(wait, self._respond, stream_id, path)

    def _respond(self, stream_id: int, path: str) -> None:
        self.info.count_request()
        self.open.discard(stream_id)
        if path.startswith("/rst/"):
            self.h2.reset_stream(stream_id, ErrorCodes[path[5:].upper()])
            return
        if self.server._refuses(path):
            self.h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        route = self.server.behaviour.routes.get(path)
        if route is not None:
            self._route(stream_id, route)
            return
        body = self.server.behaviour.body
        head = [(b":status", b"200"), (b"content-length", str(len(body)).encode())]
        self.h2.send_headers(stream_id, head)
        self.h2.send_data(stream_id, body, end_stream=True)

    def _route(self, stream_id: int, route: Route) -> None:
        head = [(b":status", str(route.status).encode()), *route.fields]
        ends = not route.body and not route.trailers
        self.h2.send_headers(stream_id, head, end_stream=ends)
        body = route.body
        while body:
            piece, body = body[: route.chunk], body[route.chunk :]
            self.h2.send_data(stream_id, piece, end_stream=not body and not route.trailers)
        if route.trailers:
            self.h2.send_headers(stream_id, list(route.trailers), end_stream=True)

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()


# --- nginx over HTTP/2 ----------------------------------------------------------------------


@dataclass(frozen=True)
class H2Nginx:
    """A real nginx with three listeners: ``url`` (plain HTTP/1.1, where ``/status`` is read
    from), ``tls_url`` (``ssl http2``: ALPN h2, or http/1.1) and ``h2c_url`` (``http2`` on
    plain TCP: HTTP/2 with prior knowledge only)."""

    nginx: NginxServer
    tls_url: str
    h2c_url: str
    cacert: str

    def stub_status(self) -> dict[str, int]:
        """nginx's counters (every listener's), read over the plain listener: the read is
        one connection and one request of its own (see :meth:`NginxServer.stub_status`)."""
        return self.nginx.stub_status()


def start_h2_nginx(factory: NginxFactory, certs: Certs, server: str = "") -> H2Nginx:
    """nginx (from the ``nginx_factory`` fixture) with HTTP/2 listeners; ``server`` is more
    for its server block (``keepalive_requests 100;``, ``http2_max_concurrent_streams 5;``)."""
    tls, h2c = free_port(), free_port()
    listeners = (
        f"listen {HOST}:{tls} ssl http2; listen {HOST}:{h2c} http2; "
        f"ssl_certificate {certs.cert}; ssl_certificate_key {certs.key}; "
    )
    nginx = factory(server=listeners + server)
    return H2Nginx(nginx, f"https://{HOST}:{tls}", f"http://{HOST}:{h2c}", certs.cacert)


# --- Go's net/http over TLS -----------------------------------------------------------------

GO_H2_SERVER = Path(__file__).parent / "go" / "h2server.go"


@dataclass(frozen=True)
class GoH2:
    """Go's net/http serving ``url`` over TLS, with its own counts at ``stats_url``."""

    url: str
    stats_url: str
    cacert: str

    def stats(self) -> dict[str, int]:
        """The server's counts: ``accepted`` (TLS connections), ``h2`` and ``http1``
        (requests over each), read over a plain listener of its own."""
        with urllib.request.urlopen(self.stats_url, timeout=5) as resp:
            found: dict[str, int] = json.loads(resp.read())
            return found


@contextlib.contextmanager
def go_h2_server(build_dir: Path, certs: Certs) -> Iterator[GoH2]:
    """Build and start ``go/h2server.go`` (Go's net/http over TLS); stop it by its PID.
    Skips without Go (fails under CI, as nginx does)."""
    go = shutil.which("go")
    require("Go", None if go else "Go not installed (Debian: golang-go)")
    assert go is not None
    binary = build_dir / "h2server"
    env = {**os.environ, "GO111MODULE": "off", "GOCACHE": str(build_dir / "cache")}
    env["GOPATH"] = str(build_dir / "gopath")
    build = [go, "build", "-o", str(binary), str(GO_H2_SERVER)]
    subprocess.run(build, env=env, check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen([str(binary), certs.cert, certs.key], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        tls, stats = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        yield GoH2(f"https://{tls}", f"http://{stats}/stats", certs.cacert)
    finally:
        proc.terminate()
        proc.wait(10)
