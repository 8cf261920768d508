"""Which server setting decides each keep-alive finding, by the product a ``Server`` header
names. Pure data and one lookup.

Only servers that name themselves in ``Server`` by default can be told apart here: Node.js
http (server.keepAliveTimeout, server.maxRequestsPerSocket) and Go net/http (Server.IdleTimeout)
send no ``Server`` header, so the doctor names no setting for them, nor for a header it does
not know (the advice then speaks of "the server's" timeout or limit). A server without a
setting for a finding (gunicorn has no per-connection request limit) has ``None`` there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SETTINGS", "ServerSettings", "settings_for"]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """A server's name as people say it, and its keep-alive settings' names."""

    name: str
    requests_per_connection: str | None  # the setting that closes after N requests
    idle_timeout: str | None  # the setting that closes an idle connection


# The product token (lower case) of a Server header, as each server sends it by default:
# "nginx/1.22.1", "Apache/2.4.62 (Debian)", "gunicorn", "uvicorn", "Caddy", "envoy", ...
SETTINGS: dict[str, ServerSettings] = {
    "nginx": ServerSettings("nginx", "keepalive_requests", "keepalive_timeout"),
    "openresty": ServerSettings("OpenResty (nginx)", "keepalive_requests", "keepalive_timeout"),
    "apache": ServerSettings("Apache httpd", "MaxKeepAliveRequests", "KeepAliveTimeout"),
    "apache-coyote": ServerSettings(
        "Tomcat", "the Connector's maxKeepAliveRequests", "the Connector's keepAliveTimeout"
    ),
    "lighttpd": ServerSettings(
        "lighttpd", "server.max-keep-alive-requests", "server.max-keep-alive-idle"
    ),
    "gunicorn": ServerSettings("gunicorn", None, "--keep-alive"),
    "uvicorn": ServerSettings("uvicorn", None, "--timeout-keep-alive"),
    "aiohttp": ServerSettings("aiohttp", None, "keepalive_timeout"),
    "caddy": ServerSettings("Caddy", None, "the global servers { timeouts { idle } }"),
    "envoy": ServerSettings(
        "Envoy",
        "common_http_protocol_options.max_requests_per_connection",
        "common_http_protocol_options.idle_timeout",
    ),
    "kestrel": ServerSettings("Kestrel", None, "Limits.KeepAliveTimeout"),
}

# A product token: the name before an optional "/version"; comments in parentheses are not
# products ("Apache/2.4.62 (Debian) OpenSSL/3.0.13" names Apache, then OpenSSL).
_PRODUCT = re.compile(r"\([^)]*\)|([^\s/()]+)(?:/\S*)?")


def settings_for(server_header: str | None) -> ServerSettings | None:
    """The settings of the first product in ``server_header`` this table knows, else None
    (no header, or a server it does not know: better no name than a wrong one)."""
    for match in _PRODUCT.finditer(server_header or ""):
        product = match.group(1)
        if product and product.lower() in SETTINGS:
            return SETTINGS[product.lower()]
    return None
