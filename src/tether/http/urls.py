"""What a URL must be to go on a request line, and what its ``user:password@`` part means:
the rules that the records' readers and the engine share, written once."""

from __future__ import annotations

import base64
from urllib.parse import unquote, urlsplit

__all__ = ["VISIBLE", "basic_auth", "unsendable"]

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
