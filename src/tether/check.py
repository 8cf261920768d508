"""Compare a response with what its record expects. Pure: no I/O, no clock.

:func:`check` returns one :class:`~tether.model.Mismatch` per failed expectation. Field names:

* ``status``
* ``header <name>`` with the lower-case name, e.g. ``header location``
* ``body.equals``, ``body.contains``, ``body.sha256``
* ``body.json <path>`` with the JSON path of the first difference, e.g. ``body.json $.user.id``

Header rules: ``equals`` compares the exact string; ``regex`` uses :func:`re.search`, so a
pattern matches anywhere in the value unless it is anchored (``^...$``) by its author;
``absent`` means the header must not be in the response.

Body rules: ``equals`` and ``contains`` compare text (the body decoded as UTF-8, bad bytes
replaced); ``sha256`` compares the hex digest; ``json`` parses the body and matches the
expected value as a subset: every expected object key must be present and match (extra keys
are fine), lists must have the same length and match element by element, scalars must be
equal (``1`` matches ``1.0``, but ``true`` does not match ``1``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.http.heads import Headers, head_lower, header_key, one_header
from tether.model import (
    SUCCESS,
    SUCCESS_TEXT,
    BodyExpect,
    Expect,
    HeaderExpect,
    Mismatch,
    Outcome,
    Vouch,
)

__all__ = ["QuickCheck", "check", "quick_check"]

ABSENT = "(absent)"
_LIMIT = 200
# Show control characters as escapes so a value cannot break the report's layout.
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F]} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Missing:
    """Stands for an expected object key that the response does not have."""


_MISSING = _Missing()


def check(expect: Expect, outcome: Outcome) -> list[Mismatch]:
    """Every way ``outcome`` differs from ``expect``; empty when it meets it.

    An outcome with an error has no response to compare, so it yields no mismatches: errors are
    counted on their own.
    """
    # Runs once per request: the common cases (a status, a header) cost no extra call.
    if outcome.error is not None:
        return []
    found: list[Mismatch] = []
    if expect.status and outcome.status not in expect.status:
        found.append(_status_mismatch(expect.status, outcome.status))
    for header in expect.headers:
        mismatch = _header(header, outcome.headers)
        if mismatch is not None:
            found.append(mismatch)
    if expect.body:
        found.extend(_body(expect.body, outcome))
    return found


@dataclass(frozen=True, slots=True)
class QuickCheck:
    """An expectation compiled for the hot path: a status and header test on the response's
    status and raw head, with nothing decoded and nothing built. It only ever says "meets
    it" or "run :func:`check`", so a response it cannot vouch for is still checked in full
    (and its mismatches described). ``parsed``: see :func:`~tether.http.heads.plain_head`."""

    statuses: tuple[int, ...]
    equals: tuple[tuple[bytes, bytes, bytes], ...]  # (header key, value, b" value\r\n")
    absent: tuple[bytes, ...]
    parsed: bool = False

    @property
    def vouch(self) -> Vouch:
        """The expectation as plain data for a compiled send path to count responses by
        (header names lower-case, without the key's line start and colon)."""
        equals = tuple((key[1:-1], value) for key, value, _ in self.equals)
        return Vouch(self.statuses, equals, tuple(key[1:-1] for key in self.absent))

    def vouches(self, status: int, headers: Mapping[str, str]) -> bool:
        """:meth:`passes` for a response's headers: from the head's bytes when they came in
        one (HTTP/1.1), else (HTTP/2's fields, or a mapping) from the decoded values, as
        :func:`check` reads them. Runs once a response on the Python path."""
        if self.statuses and status not in self.statuses:
            return False
        if not (self.equals or self.absent):
            return True
        head = headers.head if type(headers) is Headers else b""
        return self._head_passes(head) if head else self._fields_pass(headers)

    def passes(self, status: int, head: bytes) -> bool:
        """True when the response surely meets the expectation; False: ask :func:`check`."""
        if self.statuses and status not in self.statuses:
            return False
        if not (self.equals or self.absent):
            return True
        return self._head_passes(head)

    def _head_passes(self, head: bytes) -> bool:
        lower = head_lower(head, self.parsed)
        if not lower:
            return False
        for key, value, usual in self.equals:
            at = lower.find(key)
            if at < 0 or lower.find(key, at + 1) >= 0:
                return False
            # The usual spelling, "Name: value", costs one comparison; any other is read out.
            if not head.startswith(usual, at + len(key)) and one_header(head, lower, key) != value:
                return False
        for key in self.absent:  # noqa: SIM110 (all() over a generator costs more, per response)
            if lower.find(key) >= 0:
                return False
        return True

    def _fields_pass(self, headers: Mapping[str, str]) -> bool:
        for key, value, _ in self.equals:
            if headers.get(key[1:-1].decode("latin-1")) != value.decode("latin-1"):
                return False
        return not any(key[1:-1].decode("latin-1") in headers for key in self.absent)


def quick_check(expect: Expect, parsed: bool = False) -> QuickCheck | None:
    """``expect`` compiled for :meth:`QuickCheck.passes`, or None when it has rules only
    :func:`check` can judge (a body, a regex, a value Latin-1 cannot spell)."""
    if expect.body:
        return None
    equals: list[tuple[bytes, bytes, bytes]] = []
    absent: list[bytes] = []
    for rule in expect.headers:
        if rule.rule == "absent":
            absent.append(header_key(rule.name))
        elif rule.rule == "equals" and _plain_value(rule.value):
            value = rule.value.encode("latin-1")
            equals.append((header_key(rule.name), value, b" " + value + b"\r\n"))
        else:
            return None
    return QuickCheck(expect.status, tuple(equals), tuple(absent), parsed)


def _plain_value(value: str) -> bool:
    # Headers decode as Latin-1 and strip whitespace, and a value ends at its line: one that
    # cannot come out of that unchanged is left to the full check.
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return value == value.strip() and "\r" not in value and "\n" not in value


def _status_mismatch(expected: tuple[int, ...], got: int) -> Mismatch:
    if expected == SUCCESS:
        want = SUCCESS_TEXT
    elif len(expected) == 1:
        want = str(expected[0])
    else:
        want = "one of " + ", ".join(map(str, expected))
    return Mismatch("status", want, str(got))


def _header(rule: HeaderExpect, headers: Mapping[str, str]) -> Mismatch | None:
    got = headers.get(rule.name)
    if got == rule.value and rule.rule == "equals":
        return None
    name = rule.name.lower()  # the model promises lower case; be safe if built by hand
    if name != rule.name:
        got = headers.get(name)
    field = f"header {name}"
    if rule.rule == "absent":
        return None if got is None else Mismatch(field, ABSENT, _clip(got))
    if rule.rule == "equals":
        if got == rule.value:
            return None
        return Mismatch(field, _clip(rule.value), ABSENT if got is None else _clip(got))
    want = f"matching /{_clip(rule.value)}/"
    if got is None:
        return Mismatch(field, want, ABSENT)
    try:
        pattern = _compiled(rule.value)
    except re.error as exc:  # only if the rule did not come through the records reader
        return Mismatch(field, want, f"(invalid regex: {exc})")
    return None if pattern.search(got) else Mismatch(field, want, _clip(got))


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    # check() runs once per request; the same few patterns come back every time.
    return re.compile(pattern)


def _body(rules: tuple[BodyExpect, ...], outcome: Outcome) -> list[Mismatch]:
    if not rules:
        return []
    if outcome.body_truncated:
        # A partial body can neither equal, contain for sure, hash to, nor parse as anything.
        size = len(outcome.body) if outcome.body is not None else outcome.body_size
        got = f"body not read to its end ({size:,} bytes read): over --max-body or --drain-timeout"
        return [Mismatch(f"body.{rule.rule}", _want(rule), got) for rule in rules]
    found = []
    for rule in rules:
        mismatch = _body_rule(rule, outcome)
        if mismatch is not None:
            found.append(mismatch)
    return found


def _want(rule: BodyExpect) -> str:
    if rule.rule == "json":
        return _show_json(rule.value)
    return _clip(str(rule.value))


def _body_rule(rule: BodyExpect, outcome: Outcome) -> Mismatch | None:
    if rule.rule == "sha256":
        return _sha256(str(rule.value), outcome)
    if outcome.body is None:
        # The engine keeps the body when Expect.body_need says so; this is a wiring bug.
        return Mismatch(f"body.{rule.rule}", _want(rule), "(body not kept)")
    if rule.rule == "json":
        return _json(rule.value, outcome.body)
    text = outcome.body.decode("utf-8", errors="replace")
    if rule.rule == "equals":
        return _equals(str(rule.value), text)
    return _contains(str(rule.value), text)


def _equals(want: str, text: str) -> Mismatch | None:
    if text == want:
        return None
    # Long values are shown around where they part, or the difference could be cut off.
    at = next((i for i, (a, b) in enumerate(zip(want, text, strict=False)) if a != b), None)
    if at is None:
        at = min(len(want), len(text))
    return Mismatch("body.equals", _clip(want, at), _clip(text, at))


def _contains(want: str, text: str) -> Mismatch | None:
    return None if want in text else Mismatch("body.contains", _clip(want), _clip(text))


def _sha256(want: str, outcome: Outcome) -> Mismatch | None:
    digest = outcome.body_sha256
    if digest is None and outcome.body is not None:
        digest = hashlib.sha256(outcome.body).hexdigest()
    if digest is None:
        return Mismatch("body.sha256", want, "(body not hashed)")
    return None if digest.lower() == want.lower() else Mismatch("body.sha256", want, digest)


def _json(want: Any, body: bytes) -> Mismatch | None:
    try:
        got = json.loads(body)
    except RecursionError:
        return Mismatch("body.json $", _show_json(want), "not JSON: nested too deeply")
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8/16/32
        return Mismatch("body.json $", _show_json(want), _clip(f"not JSON: {exc}"))
    difference = _json_difference(want, got)
    if difference is None:
        return None
    path, expected, actual = difference
    return Mismatch(f"body.json {path}", expected, actual)


def _json_difference(want: Any, got: Any) -> tuple[str, str, str] | None:
    """The path, expected and got of the first place ``got`` fails to match ``want`` as a
    subset, in document order; None when it matches.

    Iterative rather than recursive, so a deeply nested body cannot exhaust the stack.
    """
    stack: list[tuple[str, Any, Any]] = [("$", want, got)]
    while stack:
        path, expected, actual = stack.pop()
        if actual is _MISSING:
            return path, _show_json(expected), ABSENT
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                return path, _show_json(expected), _show_json(actual)
            children = [
                (_key_path(path, k), v, actual.get(k, _MISSING)) for k, v in expected.items()
            ]
        elif isinstance(expected, (list, tuple)):
            if not isinstance(actual, list):
                return path, _show_json(expected), _show_json(actual)
            if len(actual) != len(expected):
                return path, _items(len(expected)), _items(len(actual))
            children = [
                (f"{path}[{i}]", e, a)
                for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            ]
        elif _same_scalar(expected, actual):
            continue
        else:
            return path, _show_json(expected), _show_json(actual)
        stack.extend(reversed(children))  # popped in document order
    return None


def _same_scalar(want: Any, got: Any) -> bool:
    # Python says True == 1 and 1 == 1.0; JSON agrees on the second only.
    if isinstance(want, bool) or isinstance(got, bool):
        return type(want) is type(got) and want == got
    if isinstance(want, (int, float)):
        return isinstance(got, (int, float)) and want == got
    return type(want) is type(got) and want == got


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _items(count: int) -> str:
    return f"a list of {count} item{'' if count == 1 else 's'}"


def _show_json(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = "an object" if isinstance(value, dict) else type(value).__name__
    return _clip(text)


def _clip(text: str, around: int = 0) -> str:
    """``text`` cut to about ``_LIMIT`` characters, keeping position ``around`` in view."""
    if text == "":
        return "(empty)"
    start = max(0, around - 40) if len(text) > _LIMIT else 0
    piece = text[start : start + _LIMIT]
    shown = piece.translate(_ESCAPES).encode("utf-8", "backslashreplace").decode("utf-8")
    return ("…" if start else "") + shown + ("…" if start + _LIMIT < len(text) else "")
