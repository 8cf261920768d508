"""The doctor's findings in words, with the client settings that follow. Pure."""

from __future__ import annotations

from typing import Any, Literal

from tether.doctor.measure import Findings
from tether.doctor.servers import settings_for

# The findings a server setting decides: ServerSettings' fields.
SettingOf = Literal["requests_per_connection", "idle_timeout"]

__all__ = ["advice", "report"]


def advice(found: Findings) -> list[str]:
    """Plain sentences: what the server does, and what a client should do about it."""
    if found.error is not None:
        return [f"the server could not be asked: {found.error}"]
    if not found.keep_alive:
        return [
            "The server closes every connection after one response: each request pays for a "
            "new connection (and leaves a socket in TIME_WAIT). No client setting helps; turn "
            "keep-alive on in the server if it is yours."
        ]
    said = ["The server keeps connections alive between requests."]
    said.append(_idle(found))
    if found.requests_per_connection is not None:
        said.append(_per_connection(found))
    if found.closes_after_error is not None:
        said.append(_after_error(found))
    elif found.error_status:
        said.append(
            f"A request for a missing path was answered {found.error_status}: whether an "
            "error response closes the connection could not be tried."
        )
    return said


def _idle(found: Findings) -> str:
    timeout = found.idle_timeout_s
    setting = _setting(found, "idle_timeout")
    if timeout is None:
        return (
            f"An idle connection was still open after {found.idle_wait_s:g} s (the wait's "
            f"limit): the server's keep-alive timeout{setting} is longer, or none."
        )
    below = round(max(timeout - 1.0, timeout * 0.8), 1)
    return (
        f"An idle connection is closed by the server after about {timeout:g} s{setting}. "
        f"Set the client's idle timeout below that (about {below:g} s: Go's IdleConnTimeout, "
        f"tether's --idle-timeout), else a request sent just as the server closes the "
        "connection fails (the stale-connection race; only idempotent requests may be "
        "retried)."
    )


def _per_connection(found: Findings) -> str:
    n = found.requests_per_connection
    if found.request_limit_reached:
        return f"One connection carried more than {n:,} requests (the limit asked for)."
    return (
        f"The server closes a connection after {n:,} requests"
        f"{_setting(found, 'requests_per_connection')}: "
        f"a well-pooled client opens about one connection per {n:,} requests, and must "
        "expect the close on the last response."
    )


def _setting(found: Findings, finding: SettingOf) -> str:
    """The setting behind ``finding`` on the server the Server header names, as
    `` (nginx: keepalive_timeout)``; nothing for an unknown server or one without such a
    setting: naming another server's setting would send the reader to the wrong manual."""
    server = settings_for(found.server_header)
    name: str | None = getattr(server, finding) if server is not None else None
    return f" ({server.name}: {name})" if server is not None and name else ""


def _after_error(found: Findings) -> str:
    status = found.error_status
    if found.closes_after_error:
        return (
            f"The server closes the connection after an error response ({status}): every "
            "such error costs the client a new connection."
        )
    return f"An error response ({status}) leaves the connection open for the next request."


def report(found: Findings) -> dict[str, Any]:
    """The doctor's document (what ``--json`` writes)."""
    return {
        "url": found.url,
        "status": found.status,
        "error": found.error,
        "server_header": found.server_header,
        "server_software": _software(found),
        "keep_alive": found.keep_alive,
        "requests_per_connection": found.requests_per_connection,
        "request_limit_reached": found.request_limit_reached,
        "idle_timeout_s": found.idle_timeout_s,
        "idle_wait_s": found.idle_wait_s,
        "error_status": found.error_status,
        "closes_after_error": found.closes_after_error,
        "advice": advice(found),
    }


def _software(found: Findings) -> str | None:
    server = settings_for(found.server_header)
    return server.name if server is not None else None
