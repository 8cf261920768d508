"""The client's settings, named after Go's http.Transport because that is what people who
meet connection leaks already know. Pure data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

GO_DEFAULT_MAX_IDLE_PER_HOST = 2

# The drain limit of what reads whole bodies rather than drains them: tether record's
# capture, tether diff's comparison, the watch's status pages and goroutine dumps. A body
# larger than this is left unread and its connection closed, as with any drain limit.
WHOLE_BODY_DRAIN_LIMIT = 64 << 20


def default_of(options: type[Any], name: str) -> Any:
    """The default of the field ``name`` of the dataclass ``options``: where the command
    line and ``tether.run`` take theirs, so that each default is written once, on its
    dataclass. (A ``slots=True`` dataclass keeps no field default as a class attribute.)"""
    for field in dataclasses.fields(options):
        if field.name != name:
            continue
        if field.default is not dataclasses.MISSING:
            return field.default
        if field.default_factory is not dataclasses.MISSING:
            return field.default_factory()
        raise TypeError(f"{options.__name__}.{name} has no default")
    raise TypeError(f"{options.__name__} has no field {name!r}")


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Pool and request settings. Durations are seconds; 0 turns a timeout or limit off.

    - ``max_idle_per_host``: idle connections kept per (scheme, host, port, TLS); beyond it a
      returned connection is closed (Go's MaxIdleConnsPerHost; urllib3's "pool is full").
      ``None``: the run's concurrency, or Go's default of 2 for a client on its own.
    - ``max_idle``: idle connections kept in all (Go's MaxIdleConns); 0 = no limit.
    - ``max_conns_per_host``: connections open at once per key, busy or idle; a request beyond
      it waits for one (Go's MaxConnsPerHost); 0 = no limit.
    - ``idle_timeout``: an idle connection older than this is closed, never reused
      (Go's IdleConnTimeout). Keep it below the server's keep-alive timeout.
    - ``connect_timeout``, ``response_header_timeout`` (from the request written to the
      response's headers read), ``timeout`` (whole request, redirects and retry included).
    - ``disable_keep_alives``: one request per connection, ``Connection: close`` sent.
    - ``follow_redirects``: at most this many hops; 0 = return the redirect itself.
    - ``drain_limit`` / ``drain_timeout``: a body is read to its end only up to this many
      bytes and this long after its headers; past either the connection is closed instead
      and counted as closed undrained.
    - ``max_body``: the drain limit of a body that the checks need (an expectation on the
      body: equals, contains, sha256, json), which must be read whole to be judged at all:
      a hash of the first 256 KiB is no hash of the body. Hashed as it comes in, or kept
      (up to this much per request in flight) when the check needs the text.
    - ``max_response_header_bytes``: the most bytes a response's head may take, from its
      first byte to the blank line that ends it, interim 1xx heads included (as Go's
      MaxResponseHeaderBytes counts since Go 1.24); past it the request fails
      (HeadersTooLarge) and the connection is closed. 0 = no limit. The default, 1 MiB,
      is the limit Go's server puts on request heads (DefaultMaxHeaderBytes), many times
      what real servers send (a few KiB; Node's own client refuses over 16 KiB), and a
      tenth of Go's Transport's 10 MiB: what a head that never ends can make tether hold
      is bounded per connection (times -c), while no real response is refused.
    - ``insecure`` skips TLS verification; ``cacert`` trusts a CA file instead of the system's.
    - ``leak`` reproduces the failure tether exists for: bodies are left unread and
      connections are never returned nor closed until the run ends (over HTTP/2: streams
      answered at their headers, their flow-control windows never given back).
    - ``http2``: offer HTTP/2 by ALPN (``h2``, then ``http/1.1``) on https URLs, as Go's
      client does; http URLs stay HTTP/1.1. ``http2_prior_knowledge``: speak HTTP/2 on
      http URLs from the first byte (h2c, no Upgrade), and offer it on https ones too.
    """

    max_idle_per_host: int | None = None
    max_idle: int = 0
    max_conns_per_host: int = 0
    idle_timeout: float = 90.0
    connect_timeout: float = 10.0
    response_header_timeout: float = 0.0
    timeout: float = 30.0
    disable_keep_alives: bool = False
    follow_redirects: int = 0
    drain_limit: int = 256 * 1024
    drain_timeout: float = 5.0
    max_body: int = WHOLE_BODY_DRAIN_LIMIT
    max_response_header_bytes: int = 1 << 20
    insecure: bool = False
    cacert: str | None = None
    leak: bool = False
    user_agent: str = "tether/0.1"
    http2: bool = False
    http2_prior_knowledge: bool = False

    def speaks_h2(self, scheme: str) -> bool:
        """Whether a connection for a URL of ``scheme`` starts as HTTP/2 (for https: offers
        it by ALPN, and speaks it if the server picks it)."""
        if scheme == "https":
            return self.http2 or self.http2_prior_knowledge
        return self.http2_prior_knowledge
