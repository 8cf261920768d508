"""The client's settings, named after Go's http.Transport because that is what people who
meet connection leaks already know. Pure data."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DRAIN_LIMIT = 256 * 1024
GO_DEFAULT_MAX_IDLE_PER_HOST = 2


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
    - ``insecure`` skips TLS verification; ``cacert`` trusts a CA file instead of the system's.
    - ``leak`` reproduces the failure tether exists for: bodies are left unread and
      connections are never returned nor closed until the run ends.
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
    drain_limit: int = DEFAULT_DRAIN_LIMIT
    drain_timeout: float = 5.0
    insecure: bool = False
    cacert: str | None = None
    leak: bool = False
    user_agent: str = "tether/0.1"
