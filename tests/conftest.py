"""Shared fixtures: real nginx servers (see ``servers.py`` for the machinery).

Without nginx (Go, chromium, Dask) their tests skip, except under CI (env ``CI`` set), where
they fail (see ``components.py``, which also counts the tests run against each).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from h2servers import Certs, GoH2, H2Nginx, go_h2_server, make_certs, start_h2_nginx
from servers import (
    NginxFactory,
    NginxServer,
    go_pprof_server,
    require_nginx,
    start_nginx,
)
from tether.demo.server import serve_in_thread

pytest_plugins = ["pytester", "components"]

# On a shared 2-core machine an example's time says nothing about the code: no deadline for
# any property test (a test's own @settings still adds to this profile).
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")


@pytest.fixture(scope="session")
def nginx_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxFactory]:
    """Start extra nginx servers: ``nginx_factory(http="", server="", locations="")``.

    Each call starts a new nginx (own directory and free port) with the standard locations of
    :class:`servers.NginxServer`; ``http``/``server`` are extra directives for the http/server
    block (``server="keepalive_requests 10; keepalive_timeout 1s;"`` overrides the defaults),
    ``locations`` extra location blocks. Returns a :class:`servers.NginxServer` (``url``,
    ``port``, ``stub_status()``, ``stop()``); all are stopped at the end of the session.
    """
    binary = require_nginx()
    started: list[NginxServer] = []

    def factory(http: str = "", server: str = "", locations: str = "") -> NginxServer:
        prefix = tmp_path_factory.mktemp("nginx")
        srv = start_nginx(prefix, http=http, server=server, locations=locations, binary=binary)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def go_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Go net/http server with net/http/pprof on 127.0.0.1; its URL."""
    with go_pprof_server(tmp_path_factory.mktemp("go")) as url:
        yield url


@pytest.fixture
def demo_port() -> Iterator[int]:
    """The embedded demo service in a thread of its own; its port."""
    port, stop = serve_in_thread()
    try:
        yield port
    finally:
        stop()


@pytest.fixture(scope="session")
def nginx(nginx_factory: NginxFactory) -> NginxServer:
    """One real nginx for the session, on a free 127.0.0.1 port.

    ``url``, ``port``, and ``stub_status() -> dict[str, int]`` (active, accepts, handled,
    requests, reading, writing, waiting). Each ``stub_status()`` call is itself one new
    connection and one request, already included in the numbers it returns: callers subtract
    it (two calls around some traffic add 1 to accepts and requests beyond that traffic).
    Keep-alive: ``keepalive_requests 100000; keepalive_timeout 75s``.
    """
    return nginx_factory()


@pytest.fixture(scope="session")
def h2_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A trustme CA and its certificate for 127.0.0.1, as files (``cacert`` for tether)."""
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def nginx_h2(nginx_factory: NginxFactory, h2_certs: Certs) -> H2Nginx:
    """One real nginx for the session with HTTP/2 listeners: ``tls_url`` (h2 by ALPN),
    ``h2c_url`` (prior knowledge), and its stub_status on the plain ``nginx.url``."""
    return start_h2_nginx(nginx_factory, h2_certs)


@pytest.fixture(scope="session")
def go_h2(tmp_path_factory: pytest.TempPathFactory, h2_certs: Certs) -> Iterator[GoH2]:
    """Go's net/http over TLS (HTTP/2 by ALPN), with its own counts (``stats()``)."""
    with go_h2_server(tmp_path_factory.mktemp("go-h2"), h2_certs) as server:
        yield server
