"""Turning a record into a request: target joining, URL splitting, the request head as
data (and its encodings), the redirect and retry rules. Pure functions; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

from tether.errors import InputError
from tether.http.urls import VISIBLE, basic_auth, unsendable
from tether.model import BodyNeed, Record

if TYPE_CHECKING:
    from tether.engine._compiled import Job

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


def redirect_url(current: Url, location: str) -> Url:
    """Where a redirect's Location points, relative references resolved against ``current``.
    A space or a byte past ASCII in it is percent-encoded, as browsers do, rather than put on
    the request line raw. Header values are read as latin-1, one character per byte, so
    encoding them back as latin-1 escapes exactly the bytes the server sent."""
    escaped = quote(location, safe=VISIBLE, encoding="latin-1", errors="strict")
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


Fields = tuple[tuple[str, str], ...]
H2Fields = tuple[tuple[bytes, bytes], ...]

# RFC 9113 8.2.2: fields that mean something only to one HTTP/1.1 connection, and make an
# HTTP/2 request malformed. TE is the exception, allowed as "trailers" alone.
_CONNECTION_SPECIFIC = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)


class RequestHead:
    """One request as data: method, target, authority, the header fields tether sends (its
    defaults, the record's own, the framing: every rule of which fields go out is
    :func:`request_head`'s), and the body. Made once per record; each protocol encodes it
    its own way, and the encodings are kept: :attr:`http11`, the bytes HTTP/1.1 (and the
    compiled path) writes, made at once since most runs send them; :meth:`h2_fields`, the
    fields HTTP/2 sends, made when first asked."""

    __slots__ = ("_h2", "authority", "body", "closes", "fields", "http11", "method", "target")

    def __init__(
        self, method: str, target: str, authority: str, fields: Fields, body: bytes, closes: bool
    ) -> None:
        self.method = method
        self.target = target
        self.authority = authority  # the Host field's value (a record's own Host wins)
        self.fields = fields  # in the order they are sent, Host among them
        self.body = body
        self.closes = closes  # it says ``Connection: close``: its connection ends with it
        lines = [f"{method} {target} HTTP/1.1"]
        lines.extend([f"{name}: {value}" for name, value in fields])
        # UTF-8, as curl sends it: records may hold non-ASCII header values.
        self.http11 = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
        self._h2: H2Fields | None = None

    def h2_fields(self, scheme: str) -> H2Fields:
        """The fields as HTTP/2 sends them: ``:method``, ``:scheme``, ``:authority`` (the
        Host field) and ``:path`` first, every other name lower-cased, and the
        connection-specific fields left out (RFC 9113 8.2.2, 8.3.1). One scheme per request
        (its URL's), so the first answer is kept."""
        if self._h2 is None:
            fields: list[tuple[bytes, bytes]] = [
                (b":method", self.method.encode()),
                (b":scheme", scheme.encode()),
                (b":authority", self.authority.encode("utf-8")),
                (b":path", self.target.encode("utf-8")),
            ]
            for name, value in self.fields:
                key = name.lower()
                if key == "host" or key in _CONNECTION_SPECIFIC:
                    continue
                if key == "te" and value.strip(" \t").lower() != "trailers":
                    continue
                fields.append((key.encode(), value.strip(" \t").encode("utf-8")))
            self._h2 = tuple(fields)
        return self._h2

    def __repr__(self) -> str:
        return f"<RequestHead {self.method} {self.authority}{self.target}>"


def request_head(
    method: str,
    url: Url,
    headers: Fields,
    body: bytes,
    *,
    user_agent: str,
    close: bool,
) -> RequestHead:
    """The request to send for a record (or a redirect's next hop). The record's own headers
    win over the defaults (Host, User-Agent), but never over the framing: the body's length
    is ours to send (see :func:`framing_problem`), and a record's Content-Length or
    Transfer-Encoding is left out. ``close`` (keep-alive off) says ``Connection: close``."""
    given = {name.lower(): value for name, value in reversed(headers)}  # the first one wins
    fields: list[tuple[str, str]] = []
    authority = given.get("host")
    if authority is None:
        authority = url.authority
        fields.append(("Host", authority))
    if "user-agent" not in given and user_agent:
        fields.append(("User-Agent", user_agent))
    if body or method in _BODY_METHODS:
        fields.append(("Content-Length", str(len(body))))
    if close:
        fields.append(("Connection", "close"))
    fields.extend(header for header in headers if header[0].lower() not in _FRAMING)
    return RequestHead(
        method, url.target, authority.strip(" \t"), tuple(fields), body, asks_close(headers)
    )


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


class Prepared:
    """A record made ready to send, once (a cycled record is not parsed nor encoded again):
    its URL resolved, its :class:`RequestHead`, what of the body the checks need; the
    engine's own form of it for a compiled send path, when it has one; and ``token``, the
    sender's object for it, which the engine hands back where it takes the next request
    itself (see :meth:`tether.engine.client.Client.cycle`). What
    :meth:`tether.engine.client.Client.plan` gives the run."""

    __slots__ = ("key", "native", "need", "record", "request", "token", "url", "url_text")

    def __init__(
        self, record: Record, url: Url, key: tuple[object, ...], request: RequestHead
    ) -> None:
        self.record = record
        self.url = url
        self.url_text = str(url)
        self.key = key
        self.request = request
        self.need: BodyNeed = record.expect.body_need
        self.native: Job | None = None
        self.token: Any = None  # the sender's own, of whatever kind it likes

    def __repr__(self) -> str:
        return f"<Prepared {self.request.method} {self.url_text}>"
