"""The client's settings, named after Go's http.Transport because that is what people who
meet connection leaks already know. Pure data; each field declares the flag that sets it
(:mod:`tether.flags`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tether.flags import Kind, flag, internal

GO_DEFAULT_MAX_IDLE_PER_HOST = 2

# The drain limit of what reads whole bodies rather than drains them: tether record's
# capture, tether diff's comparison, the watch's status pages and goroutine dumps. A body
# larger than this is left unread and its connection closed, as with any drain limit.
WHOLE_BODY_DRAIN_LIMIT = 64 << 20


def default_of(options: type[Any], name: str) -> Any:
    """The default of the field ``name`` of the dataclass ``options``: where the command
    line and ``tether.run`` take theirs, so that each default is written once, on its
    dataclass. (A ``slots=True`` dataclass keeps no field default as a class attribute.)"""
    for each in dataclasses.fields(options):
        if each.name != name:
            continue
        if each.default is not dataclasses.MISSING:
            return each.default
        if each.default_factory is not dataclasses.MISSING:
            return each.default_factory()
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
    - ``settings_timeout``: how long an HTTP/2 server has to acknowledge the client's
      SETTINGS, from its own on; past it the connection ends (SETTINGS_TIMEOUT, RFC 9113
      6.5.3) and its requests fail. 10 s, as nghttp2's client and proxy wait. 0 = forever.
    """

    # None here and on the command line, meaning the same: as many as the run has workers
    # (or requests in flight); the help says so.
    max_idle_per_host: int | None = field(
        default=None,
        metadata=flag(
            "--max-idle-per-host",
            kind=Kind.NATURAL,
            default_in_words="concurrency",
            help="Idle connections kept per host.",
        ),
    )
    max_idle: int = field(
        default=0,
        metadata=flag(
            "--max-idle", kind=Kind.NATURAL, help="Idle connections kept in all (0: no limit)."
        ),
    )
    max_conns_per_host: int = field(
        default=0,
        metadata=flag(
            "--max-conns-per-host", kind=Kind.NATURAL, help="Connections per host (0: no limit)."
        ),
    )
    idle_timeout: float = field(
        default=90.0,
        metadata=flag(
            "--idle-timeout",
            kind=Kind.SECONDS,
            help="Close connections idle this long (0: never).",
        ),
    )
    connect_timeout: float = field(
        default=10.0,
        metadata=flag(
            "--connect-timeout", kind=Kind.SECONDS, help="Time to connect (5s, 500ms; 0: none)."
        ),
    )
    response_header_timeout: float = field(
        default=0.0,
        metadata=flag(
            "--response-header-timeout",
            kind=Kind.SECONDS,
            help="Time from request to response headers (0: none).",
        ),
    )
    timeout: float = field(
        default=30.0,
        metadata=flag(
            "--timeout",
            kind=Kind.SECONDS,
            help="Time for a whole request (30s, 500ms; 0: none).",
        ),
    )
    disable_keep_alives: bool = field(
        default=False,
        metadata=flag(
            "--disable-keep-alives", kind=Kind.SWITCH, help="One request per connection."
        ),
    )
    follow_redirects: int = field(
        default=0,
        metadata=flag(
            "--follow-redirects",
            kind=Kind.NATURAL,
            metavar="N",
            help="Follow up to N redirects (0: off).",
        ),
    )
    drain_limit: int = field(
        default=256 * 1024,
        metadata=flag(
            "--drain-limit", kind=Kind.SIZE, help="Read bodies up to this size, else close."
        ),
    )
    drain_timeout: float = field(
        default=5.0,
        metadata=flag(
            "--drain-timeout", kind=Kind.SECONDS, help="Time to read a body, else close."
        ),
    )
    max_body: int = field(
        default=WHOLE_BODY_DRAIN_LIMIT,
        metadata=flag(
            "--max-body",
            kind=Kind.SIZE,
            help="Read a body that an expectation checks up to this size, whatever --drain-limit.",
        ),
    )
    max_response_header_bytes: int = field(
        default=1 << 20,
        metadata=flag(
            "--max-response-header-bytes",
            kind=Kind.SIZE,
            help="Fail a response whose head is larger, and close it (0: no limit).",
        ),
    )
    insecure: bool = field(
        default=False,
        metadata=flag("--insecure", "-k", kind=Kind.SWITCH, help="Do not verify TLS certificates."),
    )
    cacert: str | None = field(
        default=None, metadata=flag("--cacert", kind=Kind.FILE, help="Trust this CA file.")
    )
    leak: bool = field(
        default=False,
        metadata=flag(
            "--leak",
            kind=Kind.SWITCH,
            help="Behave like a leaky client: never read bodies nor return connections.",
        ),
    )
    user_agent: str = field(
        default="tether/0.1",
        metadata=internal("sent when a record has none: its own header sets another"),
    )
    http2: bool = field(
        default=False,
        metadata=flag(
            "--http2",
            kind=Kind.SWITCH,
            help="Offer HTTP/2 by ALPN on https URLs (h2, then http/1.1).",
        ),
    )
    http2_prior_knowledge: bool = field(
        default=False,
        metadata=flag(
            "--http2-prior-knowledge",
            kind=Kind.SWITCH,
            help="Speak HTTP/2 from the first byte on http URLs (h2c).",
        ),
    )

    settings_timeout: float = field(
        default=10.0,
        metadata=internal("no server worth a flag takes seconds to acknowledge SETTINGS"),
    )

    def speaks_h2(self, scheme: str) -> bool:
        """Whether a connection for a URL of ``scheme`` starts as HTTP/2 (for https: offers
        it by ALPN, and speaks it if the server picks it)."""
        if scheme == "https":
            return self.http2 or self.http2_prior_knowledge
        return self.http2_prior_knowledge
