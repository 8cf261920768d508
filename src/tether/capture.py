"""Golden capture (``tether record``): expectations written from a known-good service's real
responses. Pure: an outcome in, an :class:`~tether.model.Expect` out.

What a captured record expects: the status; ``Location`` when there is one, and any header
named with ``--keep-header`` (headers that change on every response, such as Date or
Set-Cookie, are refused there); the body as JSON with the ``--ignore-json-path`` fields taken
out (matched as a subset, so what was taken out is not checked; a path ends at an object key),
or, for any other body, its sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tether.errors import InputError
from tether.model import BodyExpect, Expect, HeaderExpect, Outcome

__all__ = ["VOLATILE_HEADERS", "Capture", "JsonPath", "expectations", "parse_json_path"]

VOLATILE_HEADERS = frozenset(
    {
        "date",
        "set-cookie",
        "server",
        "age",
        "expires",
        "last-modified",
        "etag",
        "x-request-id",
        "x-amzn-requestid",
        "x-trace-id",
        "traceparent",
        "cf-ray",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
    }
)
"""Headers that differ from one response to the next (or describe the connection, not the
resource): never captured."""

JsonPath = tuple[str | int | None, ...]
"""Steps from the document's root: a key, an index, or None for every item or value."""

_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+|\*)\]|\['([^']*)'\]|\.\*")


def parse_json_path(text: str, what: str = "--ignore-json-path") -> JsonPath:
    """``$.a.b``, ``$.items[*].id``, ``$['odd key'][0]``, ``$.*.x``; InputError otherwise,
    its sentence starting with ``what`` (where the path was given)."""
    if not text.startswith("$"):
        raise InputError(f"{what} {text!r}: must start with '$'")
    steps: list[str | int | None] = []
    pos = 1
    while pos < len(text):
        found = _STEP.match(text, pos)
        if found is None:
            raise InputError(f"{what} {text!r}: cannot read it from {text[pos:]!r}")
        name, index, quoted = found.groups()
        if name is not None or quoted is not None:
            steps.append(name if name is not None else quoted)
        else:
            steps.append(None if index in (None, "*") else int(index))
        pos = found.end()
    if not steps:
        raise InputError(f"{what} {text!r}: names nothing (the whole document)")
    return tuple(steps)


def drop(doc: Any, path: JsonPath) -> None:
    """Remove what ``path`` names from ``doc``, in place (nothing when it names nothing)."""
    step, rest = path[0], path[1:]
    if isinstance(doc, dict):
        keys = list(doc) if step is None else [step] if step in doc else []
    elif isinstance(doc, list) and rest and (step is None or isinstance(step, int)):
        # Only through a list, never an item of it: a list is matched item for item, so
        # removing one would make the expectation fail on the item count.
        keys = list(range(len(doc))) if step is None else [step] if step < len(doc) else []
    else:
        return
    for key in reversed(keys):  # reversed: deleting list items keeps earlier indexes valid
        if rest:
            drop(doc[key], rest)
        else:
            del doc[key]


@dataclass(frozen=True, slots=True)
class Capture:
    """What to capture besides the status: ``keep_headers`` (lower-case names) and the JSON
    fields to leave out."""

    keep_headers: tuple[str, ...] = ()
    ignore: tuple[JsonPath, ...] = ()
    digest_over: int = 0
    """A body longer than this is expected by its sha256 whatever it holds (0: no bound):
    what ``tether capture --max-body`` bounds a record's size with."""

    @classmethod
    def from_options(
        cls, keep_headers: Sequence[str], ignore: Sequence[str], digest_over: int = 0
    ) -> Capture:
        """From the command's options; InputError for a volatile header or a bad path."""
        names = tuple(name.lower() for name in keep_headers)
        volatile = sorted(set(names) & VOLATILE_HEADERS)
        if volatile:
            raise InputError(
                f"--keep-header {', '.join(volatile)}: changes on every response, so it "
                "cannot be expected"
            )
        return cls(names, tuple(parse_json_path(path) for path in ignore), digest_over)


def expectations(outcome: Outcome, capture: Capture) -> Expect | None:
    """What a record should expect, from its response; None when there was no response
    (an error) or its body was cut at the drain limit."""
    if outcome.error is not None or outcome.body_truncated:
        return None
    headers = [
        HeaderExpect(name, "equals", value)
        for name in ("location", *capture.keep_headers)
        if (value := outcome.headers.get(name)) is not None
    ]
    return Expect((outcome.status,), tuple(headers), _body(outcome.body or b"", capture))


_JSON_START = re.compile(rb"[ \t\r\n]*[\[{]")


def _may_be_json(body: bytes) -> bool:
    """Whether the body may be a JSON object or array (what is expected as JSON): a quick
    look at its first byte, so that a page or an image costs no failed parse."""
    return _JSON_START.match(body) is not None


def _body(body: bytes, capture: Capture) -> tuple[BodyExpect, ...]:
    if not body:
        return ()
    if (capture.digest_over and len(body) > capture.digest_over) or not _may_be_json(body):
        return (BodyExpect("sha256", hashlib.sha256(body).hexdigest()),)
    try:
        doc = json.loads(body)
    except ValueError:  # not JSON (nor UTF-8): its bytes, as a digest
        return (BodyExpect("sha256", hashlib.sha256(body).hexdigest()),)
    if not isinstance(doc, (dict, list)):
        return (BodyExpect("sha256", hashlib.sha256(body).hexdigest()),)
    for path in capture.ignore:
        drop(doc, path)
    return (BodyExpect("json", doc),)
