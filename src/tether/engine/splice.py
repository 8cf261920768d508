"""A request's HTTP/1.1 bytes with holes: encoded once, filled per send by joining bytes.

A sender that changes a few values of a request on every send (a flow's variables) gives
the request's bytes as encoded with a marker where each value goes (``{{token}}``), and
fills them with the values' bytes: no URL parsing, no header rules, no encoding again. The
framing stays the engine's: a body with holes gets its Content-Length made anew at each
fill, and a Cookie line, when given, goes in after the head's own fields. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = ["LENGTH", "MARKER", "Splice", "Where", "splice"]

MARKER = re.compile(rb"\{\{.*?\}\}")
"""What a hole looks like in the encoded bytes."""


LENGTH = -1
"""The hole a body with holes has its Content-Length's digits in."""


class Where(IntEnum):
    """Which part of the request a hole is in (each takes its values encoded its own way)."""

    TARGET = 0
    HEADER = 1
    BODY = 2


@dataclass(frozen=True, slots=True)
class Splice:
    """The head's bytes cut at its holes (``head``: bytes, or the index of a hole; its last
    part is the blank line that ends it, and a body without holes), the body's (``body``,
    when it has holes), and each hole's marker and where it is."""

    head: tuple[bytes | int, ...]
    body: tuple[bytes | int, ...] | None
    holes: tuple[tuple[bytes, Where], ...]
    _at: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = tuple((i, part) for i, part in enumerate(self.head) if isinstance(part, int))
        object.__setattr__(self, "_at", where)  # (frozen) each hole's place in the head

    def fill(self, values: Sequence[bytes], cookie: bytes = b"") -> bytes:
        """The request with hole ``i`` filled by ``values[i]``; ``cookie`` is a whole
        ``Cookie: ...`` line (CRLF included), or nothing."""
        if self.body is None:
            out = list(self.head)
            for at, hole in self._at:
                out[at] = values[hole]
            out.insert(-1, cookie)  # before the blank line that ends the head
            return b"".join(out)  # type: ignore[arg-type]  # every hole filled
        body = b"".join(part if isinstance(part, bytes) else values[part] for part in self.body)
        length = b"%d" % len(body)
        parts = [
            part if isinstance(part, bytes) else length if part == LENGTH else values[part]
            for part in self.head
        ]
        parts.insert(-1, cookie)
        parts.append(body)
        return b"".join(parts)


def splice(http11: bytes, body_length: int, holes: bool = True) -> Splice:
    """``http11`` (a request's bytes, its body ``body_length`` bytes long at the end) cut at
    every ``{{...}}`` in it. The head's last part is its blank line (with a body that has
    no holes), so that a fill can put lines before it; a body with holes has its
    Content-Length's digits as the :data:`LENGTH` hole, which each fill writes anew. Without
    ``holes`` a ``{{`` is text (a request with none): only the Cookie line goes in."""
    end = len(http11) - body_length
    if not holes:
        return Splice((http11[: end - 2], http11[end - 2 :]), None, ())
    line_end = http11.index(b"\r\n")
    cut: list[tuple[bytes, Where]] = []
    head_bytes = http11[: end - 2]  # the blank line's CRLF apart
    body_bytes = http11[end:]
    has_body_holes = MARKER.search(body_bytes) is not None
    head = _cut(head_bytes, cut, lambda at: Where.TARGET if at < line_end else Where.HEADER)
    if has_body_holes:
        head = _length_cut(head, body_length)
    body = _cut(body_bytes, cut, lambda at: Where.BODY) if has_body_holes else None
    # The head ends with its blank line (and a body without holes): a fill's lines go before.
    end_part = b"\r\n" if has_body_holes else b"\r\n" + body_bytes
    return Splice((*head, end_part), body, tuple(cut))


def _cut(
    data: bytes, holes: list[tuple[bytes, Where]], where: Callable[[int], Where]
) -> tuple[bytes | int, ...]:
    parts: list[bytes | int] = []
    pos = 0
    for found in MARKER.finditer(data):
        parts.append(data[pos : found.start()])
        parts.append(len(holes))
        holes.append((found.group(), where(found.start())))
        pos = found.end()
    parts.append(data[pos:])
    return tuple(part for part in parts if part != b"")


def _length_cut(head: tuple[bytes | int, ...], length: int) -> tuple[bytes | int, ...]:
    """``head`` with its Content-Length's digits made the :data:`LENGTH` hole."""
    number = b"%d" % length
    line = b"\r\nContent-Length: " + number + b"\r\n"
    for i, part in enumerate(head):
        if not isinstance(part, bytes) or line not in part:
            continue
        digits = part.index(line) + len(line) - 2 - len(number)
        cut = (part[:digits], LENGTH, part[digits + len(number) :])
        return (*head[:i], *(p for p in cut if p != b""), *head[i + 1 :])
    raise ValueError("a body with holes in a request without its Content-Length")
