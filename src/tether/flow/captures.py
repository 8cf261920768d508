"""A record's ``capture`` key: what each variable is taken from, read from a record and
taken from a response. Pure: an outcome in, values out.

Sources: ``{"json": "$.token"}`` (the JSONPath subset of ``--ignore-json-path``; ``[*]`` and
``.*`` take the first), ``{"header": "Location"}``, ``{"cookie": "sid"}`` (the value the
response's Set-Cookie gives that cookie), ``{"regex": "order=(\\\\d+)"}`` (its first group,
or the whole match when it has none, over the body as UTF-8) and ``{"status": true}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from tether.capture import JsonPath, parse_json_path
from tether.errors import InputError
from tether.flow.cookies import parse_set_cookie
from tether.flow.template import BUILTINS
from tether.model import CaptureRule, CaptureSource

__all__ = ["SOURCES", "from_object", "json_path", "set_cookie_values", "take"]

SOURCES: tuple[CaptureSource, ...] = ("json", "header", "cookie", "regex", "status")
_NAME = re.compile(r"[A-Za-z_][\w.-]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def from_object(value: Any) -> tuple[CaptureRule, ...]:
    """The rules of a record's ``capture`` object; ValueError with the sentence."""
    if not isinstance(value, dict) or not value:
        raise ValueError(
            '"capture" must be an object of variable name to source, such as '
            '{"token": {"json": "$.token"}}'
        )
    return tuple(_rule(name, spec) for name, spec in value.items())


def _rule(name: str, spec: Any) -> CaptureRule:
    field = f"capture.{name}"
    if not _NAME.fullmatch(name) or name in BUILTINS:
        raise ValueError(f'"{field}": a variable is named with letters, digits, "_", "." and "-"')
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in SOURCES:
        raise ValueError(
            f'"{field}" must name one source: {{"json": "$.path"}}, {{"header": "Name"}}, '
            f'{{"cookie": "name"}}, {{"regex": "(...)"}} or {{"status": true}}'
        )
    source, what = next(iter(spec.items()))
    if source == "status":
        if what is not True:
            raise ValueError(f'"{field}.status" must be true')
        return CaptureRule(name, "status")
    if not isinstance(what, str) or not what:
        raise ValueError(f'"{field}.{source}" must be a non-empty string')
    _valid(field, source, what)
    return CaptureRule(name, source, what.lower() if source == "header" else what)


def _valid(field: str, source: str, what: str) -> None:
    if source == "json":
        try:
            parse_json_path(what, f'"{field}.json"')
        except InputError as exc:
            raise ValueError(str(exc)) from None
    elif source == "regex":
        try:
            re.compile(what)
        except re.error as exc:
            raise ValueError(f'"{field}.regex" is not a valid regular expression: {exc}') from None
    elif source == "header" and not _HEADER_NAME.fullmatch(what):
        raise ValueError(f'"{field}.header" is not a header name: {what!r}')


def take(
    rule: CaptureRule, status: int, headers: Mapping[str, str], body: bytes | None
) -> str | None:
    """The value ``rule`` takes from a response (its status, headers and the body kept),
    or None when it finds nothing."""
    source = rule.source
    if source == "status":
        return str(status)
    if source == "header":
        return headers.get(rule.what)
    if source == "cookie":
        return cookie_value(set_cookie_values(headers), rule.what)
    if body is None:
        return None
    if source == "json":
        return json_value(body, json_path(rule.what))
    return regex_value(body, _pattern(rule.what))


def set_cookie_values(headers: Mapping[str, str]) -> list[str]:
    """Each Set-Cookie value of a response, apart (its values hold commas)."""
    every = getattr(headers, "every", None)
    if every is not None:
        values: list[str] = every("set-cookie")
        return values
    found = headers.get("set-cookie")
    return [] if found is None else [found]


def cookie_value(set_cookies: list[str], name: str) -> str | None:
    """The value the last of ``set_cookies`` naming cookie ``name`` gives it."""
    value = None
    for text in set_cookies:
        cookie = parse_set_cookie(text)
        if cookie is not None and cookie.name == name:
            value = cookie.value
    return value


def json_value(body: bytes, path: JsonPath) -> str | None:
    """What ``path`` names in a JSON body: a string as it is, anything else as JSON text;
    None when the body is not JSON or the path names nothing."""
    try:
        # Decoded first: json.loads of bytes looks for their encoding at every call.
        doc: Any = json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError among them: a JSON body is UTF-8 (RFC 8259)
        return None
    except RecursionError:  # nested past what json.loads reads: a server's, not the run's
        return None
    for step in path:
        if isinstance(doc, dict):
            if step is None:
                doc = next(iter(doc.values()), _MISSING)
            else:
                doc = doc.get(step, _MISSING) if isinstance(step, str) else _MISSING
        elif isinstance(doc, list) and (step is None or isinstance(step, int)):
            index = 0 if step is None else step
            doc = doc[index] if index < len(doc) else _MISSING
        else:
            return None
        if doc is _MISSING:
            return None
    if doc is None:
        return None
    return doc if isinstance(doc, str) else json.dumps(doc, separators=(",", ":"))


_MISSING = object()


def regex_value(body: bytes, pattern: re.Pattern[str]) -> str | None:
    """The first match's first group (the match itself when there is no group)."""
    found = pattern.search(body.decode("utf-8", "replace"))
    if found is None:
        return None
    value = found.group(1) if pattern.groups else found.group(0)
    return value


@lru_cache(maxsize=256)
def json_path(text: str) -> JsonPath:
    """A ``json`` capture's path, parsed (once per text)."""
    return parse_json_path(text, "capture")


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)
