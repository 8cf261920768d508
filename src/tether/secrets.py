"""Secrets in reports: the values of Authorization, Cookie, Set-Cookie and
Proxy-Authorization headers (and any named with ``--redact-header``) are masked wherever a
report or the results file would show them, unless ``--show-secrets``. Pure."""

from __future__ import annotations

__all__ = ["MASK", "SECRET_HEADERS", "masked", "secret_names"]

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
