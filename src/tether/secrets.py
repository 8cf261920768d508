"""Secrets in reports: the values of Authorization, Cookie, Set-Cookie and
Proxy-Authorization headers (and any named with ``--redact-header``) are masked wherever a
report or the results file would show them, unless ``--show-secrets``; and in a URL shown
(:func:`mask_url`), its ``user:password@`` and the values of query parameters whose names
say they hold a credential (``token``, ``api_key``, ``sig``, ...), always. Pure."""

from __future__ import annotations

import re

__all__ = [
    "HIDDEN",
    "MASK",
    "SECRET_HEADERS",
    "is_placeholder",
    "mask_url",
    "masked",
    "placeholder",
    "placeholder_in",
    "secret_names",
]

SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})
MASK = "(secret: not shown; --show-secrets shows it)"


def secret_names(extra: tuple[str, ...] = (), show: bool = False) -> frozenset[str]:
    """The header names whose values are masked (none with ``show``)."""
    return frozenset() if show else SECRET_HEADERS | {name.lower() for name in extra}


def masked(field: str, value: str, secret: frozenset[str]) -> str:
    """``value`` as a report may show it: masked when ``field`` (a mismatch's or a diff's
    field, such as ``header authorization``) is a secret header's."""
    kind, _, name = field.partition(" ")
    if kind == "header" and name.lower() in secret and value != "(absent)":
        return MASK
    return value


_PLACEHOLDER = "(secret not recorded: tether run -H '{name}: VALUE' fills it)"


def placeholder(name: str) -> str:
    """What ``tether capture`` records in place of a secret header's value (without
    ``--keep-secrets``): the header named, and how a run fills it."""
    return _PLACEHOLDER.format(name=name)


def is_placeholder(name: str, value: str) -> bool:
    """Whether ``value`` is still the placeholder of header ``name`` (no run sends it: it
    would carry no credential, and the server's 401 would be counted as the service's)."""
    return value == placeholder(name)


def placeholder_in(headers: tuple[tuple[str, str], ...]) -> str | None:
    """The name of the first header whose value is still its placeholder, or None."""
    for name, value in headers:
        if is_placeholder(name, value):
            return name
    return None


HIDDEN = "***"

# scheme://userinfo@ : the userinfo (a password, or a token used as the user name) goes.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")
# ?name=value or &name=value, where the name says it is a credential.
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:[^=&#\s]*(?:token|secret|passw(?:or)?d|api[-_]?key|apikey|signature"
    r"|credential|session|auth)[^=&#\s]*|key|sig|pwd)=)[^&#\s]*"
)


def mask_url(text: str) -> str:
    """``text`` with any URL's ``user:password@`` and credential query values hidden."""
    return _SECRET_QUERY.sub(rf"\1{HIDDEN}", _USERINFO.sub(rf"\1{HIDDEN}@", text))
