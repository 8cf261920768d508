"""Turning a record into bytes on the wire: target joining, URL splitting, the request head.
Pure functions; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, urljoin, urlsplit

from tether.errors import InputError
from tether.http.urls import basic_auth, unsendable
from tether.model import BodyNeed, Record

# Go's Request.isReplayable: only these methods may be sent again after the request may have
# reached the server (unless the request carries an Idempotency-Key).
REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FRAMING = frozenset({"content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Url:
    """A split http(s) URL. ``key`` is the pool key without TLS settings. ``authorization``
    is what the URL's ``user:password@`` asks for, as an Authorization header value; it is
    never part of the URL as shown or reported."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    authorization: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        """(scheme, host, port): one pool per key."""
        return (self.scheme, self.host, self.port)

    @property
    def authority(self) -> str:
        """The Host header's value: the default port is left out, IPv6 is bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


def split_url(url: str) -> Url:
    """Split an absolute http(s) URL; raise InputError for anything else, and for a URL
    that cannot go on a request line as it is (see :func:`unsendable`)."""
    bad = unsendable(url)
    if bad is not None:
        position, char = bad
        raise InputError(f"bad URL {url!r}: {char!r} at position {position}; percent-encode it")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"bad URL {url!r}: need http:// or https:// and a host")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    auth = basic_auth(url)[1]
    return Url(parts.scheme, parts.hostname, port or default, target, auth and auth[1])


def resolve(url: str, base: Url | None) -> Url:
    """A record's URL: absolute as is, or a path appended to the target's path."""
    if url.startswith(("http://", "https://")):
        return split_url(url)
    if base is None:
        raise InputError(f"relative URL {url!r} needs a target (--target)")
    if not url.startswith("/"):
        # Glued to the target's path it would name another path ("/base" + "x"), or send a
        # request-target that is no path at all.
        raise InputError(f"relative URL {url!r} must start with '/'")
    prefix = base.target.split("?", 1)[0].rstrip("/")
    path = url.split("#", 1)[0]  # a fragment is never sent
    return replace(base, target=prefix + path)


def with_authorization(record: Record, url: Url) -> Record:
    """The record with the Authorization its URL's ``user:password@`` asks for, as curl and
    Go send it; a record's own Authorization header wins. Added to the record's headers, so
    that a redirect forwards it by the same rules as any credential."""
    if url.authorization is None:
        return record
    if any(name.lower() == "authorization" for name, _ in record.headers):
        return record
    return replace(record, headers=(*record.headers, ("Authorization", url.authorization)))


# Every visible ASCII character stays as it is; anything else is percent-encoded (as UTF-8).
_VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))


def redirect_url(current: Url, location: str) -> Url:
    """Where a redirect's Location points, relative references resolved against ``current``.
    A space or a byte past ASCII in it is percent-encoded, as browsers do, rather than put on
    the request line raw. Header values are read as latin-1, one character per byte, so
    encoding them back as latin-1 escapes exactly the bytes the server sent."""
    escaped = quote(location, safe=_VISIBLE, encoding="latin-1", errors="strict")
    return split_url(urljoin(str(current), escaped))


# Go's Client drops these on a redirect to a host that is neither the first one nor below it.
_CREDENTIALS = frozenset({"authorization", "www-authenticate", "cookie", "cookie2"})


def redirect_headers(
    headers: tuple[tuple[str, str], ...], first: Url, to: Url, location: str, keep_body: bool
) -> tuple[tuple[str, str], ...]:
    """A record's headers for the next hop, by Go's Client rules: Content-Length is made anew,
    and Content-Type goes with a dropped body; a record's Host stays only while the Location
    is relative (the same server); credentials and cookies go only to ``first``'s host or a
    subdomain of it (ports and schemes aside, as Go compares them)."""
    drop = {"content-length"}
    if not keep_body:
        drop.add("content-type")
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:
        drop.add("host")
    if not _domain_or_subdomain(to.host, first.host):
        drop |= _CREDENTIALS
    return tuple(h for h in headers if h[0].lower() not in drop)


def _domain_or_subdomain(sub: str, parent: str) -> bool:
    sub, parent = sub.lower(), parent.lower()
    if sub == parent:
        return True
    if ":" in sub or "%" in sub:  # an IPv6 address is nobody's subdomain
        return False
    return sub.endswith("." + parent)


def redirect_method(status: int, method: str) -> tuple[str, bool]:
    """(method, keep body) for the next hop, as browsers and Go do: 307/308 keep both;
    301/302/303 turn anything but HEAD into a GET without a body."""
    if status in (307, 308):
        return method, True
    return ("HEAD" if method == "HEAD" else "GET"), False


def encode_head(
    method: str,
    url: Url,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
    *,
    user_agent: str,
    close: bool,
) -> bytes:
    """The request head and body as bytes. The record's own headers win over defaults, but
    never over the framing: the body's length is ours to send (see :func:`framing_problem`),
    and a record's Content-Length or Transfer-Encoding is left out."""
    given = {name.lower() for name, _ in headers}
    lines = [f"{method} {url.target} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {url.authority}")
    if "user-agent" not in given and user_agent:
        lines.append(f"User-Agent: {user_agent}")
    if body or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in headers if name.lower() not in _FRAMING)
    # UTF-8, as curl sends it: records may hold non-ASCII header values.
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


# RFC 9113 8.2.2: fields that mean something only to one HTTP/1.1 connection, and make an
# HTTP/2 request malformed. TE is the exception, allowed as "trailers" alone.
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)

H2Fields = tuple[tuple[bytes, bytes], ...]


def h2_request(request: bytes, scheme: str) -> tuple[H2Fields, memoryview]:
    """A request as :func:`encode_head` writes it, as HTTP/2 sends it: the request line's
    method and target, with ``scheme``, as the ``:method``, ``:scheme`` and ``:path``
    pseudo-header fields, Host as ``:authority``, every other name lower-cased and the
    connection-specific fields left out (RFC 9113 8.2.2, 8.3.1); then the body (a view of
    ``request``, not a copy). Made from the HTTP/1.1 bytes so that the header rules (the
    defaults, the credentials, the framing) are :func:`encode_head`'s alone, whichever
    protocol carries the request."""
    end = request.find(b"\r\n\r\n")
    lines = request[:end].split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    authority = b""
    fields: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        raw, _, value = line.partition(b":")
        name, value = raw.lower(), value.strip(b" \t")
        if name == b"host":
            authority = authority or value
        elif name == b"te":
            if value.lower() == b"trailers":
                fields.append((name, value))
        elif name not in _CONNECTION_SPECIFIC:
            fields.append((name, value))
    pseudo = (
        (b":method", method),
        (b":scheme", scheme.encode()),
        (b":authority", authority),
        (b":path", target),
    )
    return (*pseudo, *fields), memoryview(request)[end + 4 :]


def framing_problem(headers: tuple[tuple[str, str], ...], body: bytes) -> str | None:
    """What is wrong with a record's own framing headers, or None. How a request is framed
    is tether's to say: a record's Content-Length other than its body's length would let the
    server read the rest of the body as another request (smuggled past the count), and
    tether sends no chunked bodies. A Content-Length that agrees (recorded traffic has them)
    is fine: the request goes out with the one tether writes."""
    for name, value in headers:
        key = name.lower()
        if key == "transfer-encoding":
            return (
                f"a Transfer-Encoding header ({value!r}) cannot be sent: tether frames every "
                "body with its Content-Length; drop the header"
            )
        if key == "content-length" and value.strip() != str(len(body)):
            return (
                f"Content-Length {value!r} is not the body's length ({len(body)} bytes): "
                "tether frames the body itself; drop the header or fix the body"
            )
    return None


def asks_close(headers: tuple[tuple[str, str], ...]) -> bool:
    """Whether a request's headers say ``Connection: close`` (RFC 9112 9.6: the client then
    sends nothing more on that connection)."""
    return any(
        name.lower() == "connection" and "close" in value.lower().replace(" ", "").split(",")
        for name, value in headers
    )


def is_replayable(method: str, headers: tuple[tuple[str, str], ...]) -> bool:
    """Go's rule for sending a request again after it may have reached the server."""
    if method in REPLAYABLE_METHODS:
        return True
    names = {name.lower() for name, _ in headers}
    return bool(names & {"idempotency-key", "x-idempotency-key"})


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record made ready to send: its URL resolved and its request bytes built, once (a
    cycled record is not parsed nor encoded again)."""

    record: Record
    url: Url
    url_text: str
    key: tuple[object, ...]
    head: bytes
    need: BodyNeed
    closes: bool = False  # the record says ``Connection: close``: its connection ends with it
