"""What a URL must be to go on a request line, and what its ``user:password@`` part means:
the rules that the records' readers and the engine share, written once."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

__all__ = ["VISIBLE", "basic_auth", "host_port", "unsendable"]

VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
"""What a request-target may hold as it is: visible ASCII (anything else is
percent-encoded, see :func:`unsendable`)."""


def unsendable(url: str) -> tuple[int, str] | None:
    """(position, character) of the first character of ``url`` that cannot go on a request
    line as it is, or None. Only visible ASCII can: a space ends the request-target, CR or
    LF would end the request line itself (urllib drops them silently, so a URL that held
    them would be sent as some other URL), and anything else must be percent-encoded."""
    for position, char in enumerate(url):
        if not "!" <= char <= "~":
            return position, char
    return None


def basic_auth(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its ``user:password@`` part, and that part as the Authorization
    header a client sends for it (curl and Go do), percent-escapes decoded; the URL alone
    when it has none."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    token = base64.b64encode(credentials.encode()).decode("ascii")
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl(), ("Authorization", f"Basic {token}")


def host_port(text: str) -> tuple[str, int] | None:
    """``127.0.0.1:9464`` or ``[::1]:9464`` as (host, port), a port from 0 to 65535; None
    for anything else (each flag that listens says its own sentence, and whether port 0,
    any free one, will do)."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return None
    return host, int(port)
