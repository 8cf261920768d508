"""``{{name}}`` holes in a record's text: parsed once, filled per request. Pure.

A hole names a variable (a capture of an earlier record, a column of ``--data``) or a
built-in: ``$uuid``, ``$worker``, ``$iteration``, ``$now_ms``, ``$randint(a,b)``. Blanks
inside the braces are allowed (``{{ token }}``). There is no escape: text that must hold
``{{`` literally cannot be a flow's.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "BUILTINS",
    "PER_ITERATION",
    "Hole",
    "Template",
    "TemplateError",
    "parse",
    "uses",
]

OPEN, CLOSE = "{{", "}}"
_HOLE = re.compile(
    r"\s*(?P<name>\$?[A-Za-z_][\w.-]*)(?:\(\s*(?P<a>-?\d+)\s*,\s*(?P<b>-?\d+)\s*\))?\s*"
)

PER_ITERATION = frozenset({"$worker", "$iteration"})
"""Built-ins that keep their value for a whole iteration (set when it starts)."""
BUILTINS = PER_ITERATION | {"$uuid", "$now_ms", "$randint"}
"""Every built-in; the others take a new value at each use."""


class TemplateError(ValueError):
    """Text whose holes cannot be read: the sentence says where."""


@dataclass(frozen=True, slots=True)
class Hole:
    """One ``{{...}}``: a variable's name, or a built-in's (with ``$randint``'s bounds)."""

    name: str
    low: int = 0
    high: int = 0

    @property
    def dynamic(self) -> bool:
        """A built-in that takes a new value at each use (not a variable's value)."""
        return self.name in BUILTINS and self.name not in PER_ITERATION

    def value(self) -> str:
        """A dynamic built-in's value now."""
        if self.name == "$uuid":
            return str(uuid.uuid4())
        if self.name == "$now_ms":
            return str(time.time_ns() // 1_000_000)
        return str(random.randint(self.low, self.high))


@dataclass(frozen=True, slots=True)
class Template:
    """Text cut at its holes: ``parts`` alternate text and :class:`Hole`."""

    parts: tuple[str | Hole, ...]

    @property
    def holes(self) -> tuple[Hole, ...]:
        """Its holes, in order."""
        return tuple(part for part in self.parts if isinstance(part, Hole))

    @property
    def plain(self) -> bool:
        """It has no hole: the text is sent as it is."""
        return not any(isinstance(part, Hole) for part in self.parts)

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with each hole filled: a dynamic built-in's value now, else
        ``values[name]`` (KeyError for a name that has none)."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part.dynamic:
                out.append(part.value())
            else:
                out.append(values[part.name])
        return "".join(out)


def parse(text: str) -> Template:
    """``text`` cut at its holes; TemplateError for a ``{{`` without its ``}}``, or one
    that holds no name a variable can have."""
    parts: list[str | Hole] = []
    pos = 0
    while True:
        start = text.find(OPEN, pos)
        if start < 0:
            break
        end = text.find(CLOSE, start + 2)
        if end < 0:
            raise TemplateError(f"{OPEN!r} at position {start} has no {CLOSE!r} after it")
        if start > pos:
            parts.append(text[pos:start])
        parts.append(_hole(text[start + 2 : end], start))
        pos = end + 2
    if pos < len(text) or not parts:
        parts.append(text[pos:])
    return Template(tuple(parts))


def _hole(inner: str, at: int) -> Hole:
    found = _HOLE.fullmatch(inner)
    if found is None:
        raise TemplateError(
            f"{{{{{inner}}}}} at position {at} is not a variable: a name of letters, digits, "
            "'_', '.' and '-', or a built-in such as {{$uuid}}"
        )
    name, low, high = found["name"], found["a"], found["b"]
    if name.startswith("$") and name not in BUILTINS:
        known = ", ".join(sorted(BUILTINS))
        raise TemplateError(
            f"{{{{{inner}}}}} at position {at}: no such built-in (there are {known})"
        )
    if (name == "$randint") != (low is not None):
        raise TemplateError(
            f"{{{{{inner}}}}} at position {at}: $randint takes its bounds, as $randint(1,100), "
            "and nothing else does"
        )
    if low is not None and int(low) > int(high):
        raise TemplateError(
            f"{{{{{inner}}}}} at position {at}: the low bound is above the high one"
        )
    return Hole(name, int(low or 0), int(high or 0))


def uses(text: str) -> tuple[str, ...]:
    """The names of ``text``'s holes, in order (TemplateError as :func:`parse`)."""
    if OPEN not in text:
        return ()
    return tuple(hole.name for hole in parse(text).holes)
