"""A virtual user's cookie jar, kept as RFC 6265 has a user agent keep one: Set-Cookie
values of responses in (:meth:`CookieJar.store`), the Cookie header of the next request
out (:meth:`CookieJar.header`). Pure: the caller passes the time, so nothing here reads a
clock unless :func:`parse_set_cookie` is asked for a Max-Age without one.

No public suffix list: the jar talks to a load test's own service, not the open web, so a
server may set a cookie for any parent domain of its host. What a hostile server can do is
bounded instead: at most 50 cookies per domain, 3000 in all, 4096 characters per cookie.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

__all__ = ["CookieJar", "SetCookie", "default_path", "parse_set_cookie"]

_PER_DOMAIN = 50
_TOTAL = 3000
# RFC 6265 6.1 asks a user agent to keep cookies of at least 4096 bytes; longer ones are
# refused, so that 3000 cookies cannot hold more than about 12 MB.
_MAX_SIZE = 4096
_WSP = " \t"
# Control characters (tab apart): stored, they would go back into a Cookie header raw.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_EARLIEST = float("-inf")
# Max-Age is not bounded by the RFC; far beyond any load test's end, and still a float.
_FOREVER = 10**15

_Key = tuple[str, str, str]


class SetCookie(NamedTuple):
    """One Set-Cookie value as RFC 6265 5.2 reads it.

    ``expires`` is seconds since the epoch (Max-Age, when valid, wins over Expires; minus
    infinity when Max-Age is zero or less), None for a session cookie; ``max_age_seen``
    says it came from Max-Age. ``domain`` is lower-case without its leading dot and
    ``path`` starts with "/"; "" for either means the attribute was absent (or, for a
    path, not usable). ``same_site`` is the SameSite value as given, "" without one.
    """

    name: str
    value: str
    expires: float | None = None
    max_age_seen: bool = False
    domain: str = ""
    path: str = ""
    secure: bool = False
    http_only: bool = False
    same_site: str = ""


@dataclass(slots=True)
class _Attributes:
    expires: float | None = None
    max_age: float | None = None
    domain: str = ""
    path: str = ""
    secure: bool = False
    http_only: bool = False
    same_site: str = ""


def parse_set_cookie(text: str, now: float | None = None) -> SetCookie | None:
    """One Set-Cookie header value parsed as RFC 6265 section 5.2 says; None when the RFC
    says to ignore it (no "=" in the name-value pair, or an empty name).

    Attribute names are case-insensitive, unknown attributes are ignored and, of an
    attribute given twice, the last valid one counts. ``now`` (seconds since the epoch)
    is what Max-Age counts from; without it, the clock's time.
    """
    pair, _, unparsed = text.partition(";")
    name, equals, value = pair.partition("=")
    name = name.strip(_WSP)
    if not equals or not name:
        return None
    if "max-age" in unparsed.lower():
        attributes = _attributes(unparsed, now)
    else:
        attributes = _timeless(unparsed)  # a server sends the same attributes every time
    max_age = attributes.max_age
    return SetCookie(
        name,
        value.strip(_WSP),
        attributes.expires if max_age is None else max_age,
        max_age is not None,
        attributes.domain,
        attributes.path,
        attributes.secure,
        attributes.http_only,
        attributes.same_site,
    )


def _attributes(unparsed: str, now: float | None) -> _Attributes:
    attributes = _Attributes()
    for item in unparsed.split(";"):
        key, _, argument = item.partition("=")
        _apply(attributes, key.strip(_WSP).lower(), argument.strip(_WSP), now)
    return attributes


@lru_cache(maxsize=256)
def _timeless(unparsed: str) -> _Attributes:
    # Read once per distinct text: without Max-Age nothing in it depends on the clock (an
    # Expires date is a time of its own). Never changed once made: SetCookie copies it.
    return _attributes(unparsed, None)


def _apply(attributes: _Attributes, key: str, argument: str, now: float | None) -> None:
    if key == "expires":
        expires = _parse_date(argument)
        if expires is not None:
            attributes.expires = expires
    elif key == "max-age":
        max_age = _max_age(argument, now)
        if max_age is not None:
            attributes.max_age = max_age
    elif key == "domain":
        # An empty Domain is undefined behaviour; 5.2.3 says to ignore the attribute.
        if argument:
            attributes.domain = argument.removeprefix(".").lower()
    elif key == "path":
        attributes.path = argument if argument.startswith("/") else ""
    elif key == "secure":
        attributes.secure = True
    elif key == "httponly":
        attributes.http_only = True
    elif key == "samesite":
        attributes.same_site = argument


_DELTA = re.compile(r"-?[0-9]+")


def _max_age(argument: str, now: float | None) -> float | None:
    if not _DELTA.fullmatch(argument):
        return None
    digits = argument.lstrip("-0")
    if argument.startswith("-") or not digits:
        return _EARLIEST
    # int() refuses strings of more than 4300 digits: a hostile value must not raise.
    delta = _FOREVER if len(digits) > 15 else min(int(digits), _FOREVER)
    return (time.time() if now is None else now) + delta


_DATE_DELIMITER = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[^0-9].*)?", re.DOTALL)
_DAY = re.compile(r"([0-9]{1,2})(?:[^0-9].*)?", re.DOTALL)
_YEAR = re.compile(r"([0-9]{2,4})(?:[^0-9].*)?", re.DOTALL)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


_Moment = tuple[int, int, int, int, int, int]  # year, month, day, hour, minute, second


def _parse_date(text: str) -> float | None:
    # email.utils (RFC 5322 dates) reads some dates 5.1.1 cannot, such as a time without
    # seconds; it is asked only then, so a date 5.1.1 reads and refuses (February 30, a
    # year before 1601) stays refused either way.
    moment = _rfc6265_date(text)
    offset = 0
    if moment is None:
        found = _email_date(text)
        if found is None:
            return None
        moment, offset = found
    stamp = _utc(moment)
    return None if stamp is None else stamp - offset


def _rfc6265_date(text: str) -> _Moment | None:
    clock: tuple[int, int, int] | None = None
    day = month = year = None
    for token in filter(None, _DATE_DELIMITER.split(text)):
        if clock is None and (hms := _TIME.fullmatch(token)):
            clock = (int(hms[1]), int(hms[2]), int(hms[3]))
        elif day is None and (match := _DAY.fullmatch(token)):
            day = int(match[1])
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (match := _YEAR.fullmatch(token)):
            year = int(match[1])
    if clock is None or day is None or month is None or year is None:
        return None
    if year <= 69:
        year += 2000
    elif year <= 99:
        year += 1900
    return (year, month, day, *clock)


def _email_date(text: str) -> tuple[_Moment, int] | None:
    """The date and its zone's offset in seconds (none given is read as UTC, so that the
    result does not depend on the machine's time zone)."""
    try:
        parsed = email.utils.parsedate_tz(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    return (year, month, day, hour, minute, second), parsed[9] or 0


def _utc(moment: _Moment) -> float | None:
    year, month, day, hour, minute, second = moment
    if year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    try:
        # datetime refuses a day the month does not have (February 30), as 5.1.1 asks.
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    return stamp.timestamp()


class _Cookie(NamedTuple):
    # A tuple: a jar makes one per cookie a response sets, many a second in a flow run.
    name: str
    value: str
    domain: str
    path: str
    host_only: bool
    secure: bool
    expires: float | None
    created: int  # the jar's serial number when first stored: creation order

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now


class CookieJar:
    """The cookies one virtual user holds, stored and sent back as RFC 6265 5.3 and 5.4
    say. Times are floats the caller passes (such as time.time()); host names are compared
    without regard to case. :attr:`version` changes whenever the jar does.
    """

    __slots__ = ("_by_domain", "_cookies", "_memo", "_memo_of", "_serial", "_version")

    def __init__(self) -> None:
        # header()'s answers, while the jar is the version they were made of and no cookie
        # has expired since: a flow's users ask the same few at every request.
        self._memo: dict[tuple[str, str, str], str | None] = {}
        self._memo_of: tuple[int, float, bool] = (-1, 0.0, False)  # version, until, rooted
        # Both in the order cookies were last stored: the first is the one to evict.
        self._cookies: dict[_Key, _Cookie] = {}
        self._by_domain: dict[str, dict[_Key, None]] = {}
        self._serial = 0
        self._version = 0

    def __len__(self) -> int:
        """How many cookies the jar holds (expired ones not yet dropped included)."""
        return len(self._cookies)

    @property
    def version(self) -> int:
        """A number bumped on every change, so that a caller may keep a :meth:`header`
        result until it changes (or until the earliest expiry among the cookies passes)."""
        return self._version

    def clear(self) -> None:
        """Forget every cookie, as a new user's jar would be."""
        if self._cookies:
            self._cookies.clear()
            self._by_domain.clear()
            self._version += 1

    def store(self, values: Iterable[str], scheme: str, host: str, path: str, now: float) -> None:
        """Store the Set-Cookie ``values`` of one response to a request for
        ``scheme://host/path`` (``path`` the request target; its query does not count).

        A Domain the host does not domain-match makes the cookie refused (an IP address
        matches only itself), no Domain makes it host-only; no Path gives it the request's
        default path. A cookie already expired removes the stored one of its name, domain
        and path; any other replaces it, keeping its creation time. ``scheme`` does not
        matter: RFC 6265 lets a Secure cookie be set over http.
        """
        canonical = _canonical(host)
        request_path = _request_path(path)
        for text in values:
            parsed = parse_set_cookie(text, now)
            if parsed is not None:
                self._store_one(parsed, canonical, request_path, now)

    def header(self, scheme: str, host: str, path: str, now: float) -> str | None:
        """The Cookie header value for a request to ``scheme://host/path`` (RFC 6265 5.4),
        or None when no cookie applies: the cookies whose domain and path match, not
        expired (expired ones are dropped), Secure ones over https only; longer paths
        first, then earlier created; as ``name=value; name2=value2``.
        """
        version, until, rooted = self._memo_of
        if version != self._version or now >= until:
            self._memo.clear()
            self._memo_of = version, until, rooted = self._version, *self._validity()
        # Cookies all of path "/" match every path alike: one answer for the host's paths.
        key = (scheme, host, "/" if rooted else path)
        if key in self._memo:
            return self._memo[key]
        found = self._memo[key] = self._header(scheme, host, path, now)
        if self._memo_of[0] != self._version:  # expired cookies were dropped on the way
            self._memo.clear()
            self._memo_of = (-1, 0.0, False)
        return found

    def _validity(self) -> tuple[float, bool]:
        """When the first of the cookies expires (a memo of header() holds until then), and
        whether every one has the path "/"."""
        times = [c.expires for c in self._cookies.values() if c.expires is not None]
        rooted = all(c.path == "/" for c in self._cookies.values())
        return min(times, default=float("inf")), rooted

    def _header(self, scheme: str, host: str, path: str, now: float) -> str | None:
        canonical = _canonical(host)
        request_path = _request_path(path)
        secure = scheme.lower() == "https"
        chosen: list[_Cookie] = []
        expired: list[_Key] = []
        for domain in _domains_of(canonical):
            for key in self._by_domain.get(domain, ()):
                cookie = self._cookies[key]
                if cookie.expired(now):
                    expired.append(key)
                elif _applies(cookie, canonical, request_path, secure):
                    chosen.append(cookie)
        for key in expired:
            self._remove(key)
        if not chosen:
            return None
        chosen.sort(key=lambda cookie: (-len(cookie.path), cookie.created))
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in chosen)

    def _store_one(self, parsed: SetCookie, host: str, request_path: str, now: float) -> None:
        if not _storable(parsed):
            return
        place = _cookie_domain(parsed.domain, host)
        if place is None:
            return
        domain, host_only = place
        key = (parsed.name, domain, parsed.path or _default_path(request_path))
        old = self._cookies.get(key)
        if parsed.expires is not None and parsed.expires <= now:
            if old is not None:
                self._remove(key)
            return
        created = old.created if old is not None else self._next_serial()
        cookie = _Cookie(
            name=parsed.name,
            value=parsed.value,
            domain=domain,
            path=key[2],
            host_only=host_only,
            secure=parsed.secure,
            expires=parsed.expires,
            created=created,
        )
        if cookie == old:
            self._touch(key)
            return
        if old is not None:
            self._remove(key)
        self._insert(key, cookie)
        self._bound(domain, now)

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _insert(self, key: _Key, cookie: _Cookie) -> None:
        self._cookies[key] = cookie
        self._by_domain.setdefault(cookie.domain, {})[key] = None
        self._version += 1

    def _remove(self, key: _Key) -> None:
        cookie = self._cookies.pop(key)
        keys = self._by_domain[cookie.domain]
        del keys[key]
        if not keys:
            del self._by_domain[cookie.domain]
        self._version += 1

    def _touch(self, key: _Key) -> None:
        # The same cookie set again changes nothing a request sees, so no new version; it
        # only becomes the latest stored, the last to be evicted.
        self._cookies[key] = self._cookies.pop(key)
        keys = self._by_domain[key[1]]
        keys[key] = keys.pop(key)

    def _bound(self, domain: str, now: float) -> None:
        if len(self._by_domain[domain]) > _PER_DOMAIN:
            self._evict(list(self._by_domain[domain]), now, _PER_DOMAIN)
        if len(self._cookies) > _TOTAL:
            self._evict(list(self._cookies), now, _TOTAL)

    def _evict(self, keys: list[_Key], now: float, limit: int) -> None:
        # Expired cookies go first (5.3 evicts them before any other), then the oldest.
        live = []
        for key in keys:
            if self._cookies[key].expired(now):
                self._remove(key)
            else:
                live.append(key)
        for key in live[: max(0, len(live) - limit)]:
            self._remove(key)


def _storable(parsed: SetCookie) -> bool:
    text = parsed.name + parsed.value
    return len(text) <= _MAX_SIZE and _CONTROL.search(text) is None


def _canonical(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


@lru_cache(maxsize=1024)
def _is_ip(host: str) -> bool:
    # Cached: a flow's users ask it of the same few hosts at every response and request.
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _domain_match(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3, both sides already lower-case."""
    return host == domain or (host.endswith("." + domain) and not _is_ip(host))


def _cookie_domain(attribute: str, host: str) -> tuple[str, bool] | None:
    """(domain, host-only) for a cookie with Domain ``attribute`` set by ``host``; None
    when the host may not set it."""
    if not attribute:
        return host, True
    if not _domain_match(host, attribute):
        return None
    # An IP address named as its own domain is host-only in effect: a host name that ends
    # in it (1.10.0.0.1) is no subdomain of an address.
    return attribute, _is_ip(host)


def _domains_of(host: str) -> Iterator[str]:
    """Every domain ``host`` domain-matches: itself, then each parent."""
    yield host
    if _is_ip(host):
        return
    rest = host
    while "." in rest:
        rest = rest.split(".", 1)[1]
        if rest:
            yield rest


def _request_path(target: str) -> str:
    path = target.split("?", 1)[0].split("#", 1)[0]
    return path if path.startswith("/") else "/"


def default_path(target: str) -> str:
    """The path a cookie set by a response to ``target`` (a request target) without a Path
    of its own is given."""
    return _default_path(_request_path(target))


def _default_path(request_path: str) -> str:
    """RFC 6265 5.1.4: the request path up to its last "/" (not included), "/" at least."""
    head = request_path.rsplit("/", 1)[0]
    return head or "/"


def _path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4: the cookie's path is the request's or a whole-segment prefix."""
    if not request_path.startswith(cookie_path):
        return False
    return (
        len(request_path) == len(cookie_path)
        or cookie_path.endswith("/")
        or request_path[len(cookie_path)] == "/"
    )


def _applies(cookie: _Cookie, host: str, request_path: str, secure: bool) -> bool:
    if cookie.host_only and cookie.domain != host:
        return False
    if cookie.secure and not secure:
        return False
    return _path_match(request_path, cookie.path)
