"""The native records format: JSON Lines, one request record per line.

A record::

    {"method": "GET", "url": "/r/abc", "headers": {"Accept": "text/html"}, "body": "...",
     "expect": {"status": 302, "headers": {"Location": "https://example.org/abc"}}}

Top-level keys (any other key is an error, so a typo such as ``"ulr"`` is caught):

``method``
    Optional, default ``"GET"``. An HTTP token; upper-cased.
``url``
    Required. An absolute ``http://`` or ``https://`` URL, or a path starting with ``/`` that
    is joined to the run's target. Printable ASCII only (percent-encode anything else).
``headers``
    Optional object of header name to string value. Names must be HTTP tokens; values must not
    contain CR, LF or other control characters (tab is fine).
``body`` / ``body_b64``
    Optional request body: ``body`` is text sent as UTF-8, ``body_b64`` is base64 for binary
    bodies. At most one of the two.
``expect``
    Optional object, see below.
``tag``
    Optional string: the group the record is reported in (else its method and path template).
``at``
    Optional number: when the request was originally sent, in seconds since the epoch (what
    ``--pace original`` replays; HAR and access logs fill it in).
``capture``
    Optional object: the variables a flow takes from the response, by name (see
    :mod:`tether.flow.captures` for the sources).
``flow``
    Optional string: the flow the record is a step of, when a file holds several.
``id``, ``comment``
    Free for the user; accepted and ignored.

``{{name}}`` in the URL, a header value, the body (``body_b64`` decoded first) or an
expected header value or body text is a variable (:mod:`tether.flow.template`); a record
that captures or uses one is a step of a flow.

``expect`` keys:

``status``
    An integer 100-599 or a non-empty list of them (any one matches).
``headers``
    Object of header name (case-insensitive) to a rule: a string (the exact value),
    ``{"regex": "..."}`` (``re.search`` on the value; anchor it yourself for a full match) or
    ``{"absent": true}`` (the header must not be sent).
``body``
    Object with any of ``equals`` (text), ``contains`` (text), ``sha256`` (64 hex digits) and
    ``json`` (any JSON value, matched as a subset); each one is a separate check.

Blank lines and lines starting with ``#`` are skipped. Every error names ``source:line`` and
the offending field, e.g. ``records.jsonl:12: "expect.status" must be an integer 100-599 or a
list of them, got "abc"``.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, NoReturn
from urllib.parse import urlsplit

from tether.errors import RecordError
from tether.flow import captures
from tether.flow.template import OPEN, TemplateError, uses
from tether.http.heads import NOT_IN_A_VALUE
from tether.http.urls import unsendable
from tether.model import NO_EXPECT, BodyExpect, CaptureRule, Expect, HeaderExpect, Record

__all__ = [
    "KEPT_BYTES",
    "from_object",
    "item",
    "join_headers",
    "not_utf8",
    "parse_line",
    "read",
    "to_object",
    "undecodable",
]

KEPT_BYTES = "surrogateescape"
"""How every text format's lines are decoded (``records.read``), each line on its own: a byte
that is not UTF-8 becomes a lone surrogate (U+DC80-U+DCFF) rather than an error, so the line
keeps its shape (its quotes, backslashes and line end), a reader can name it, and the byte can
be had back (``text.encode("utf-8", KEPT_BYTES)``). Strict UTF-8 never yields such a
surrogate, so one in a line always means a byte that was not UTF-8. A reader refuses such a
line with :func:`undecodable`; the access log reader sends its path's bytes percent-encoded.
Nothing holding one can be sent anyway: the rules below refuse it in a URL (not ASCII) and in
any text field (not encodable)."""

RECORD_KEYS = frozenset(
    {
        "method",
        "url",
        "headers",
        "body",
        "body_b64",
        "expect",
        "tag",
        "at",
        "capture",
        "flow",
        "id",
        "comment",
    }
)
EXPECT_KEYS = frozenset({"status", "headers", "body"})
HEADER_RULE_KEYS = frozenset({"regex", "absent"})
BODY_RULE_KEYS = frozenset({"equals", "contains", "sha256", "json"})

# RFC 9110 token: what a method or a header field name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SHOW_LIMIT = 60


class _Bad(Exception):
    """One problem with a record; :func:`parse_line` adds the source and the line."""


def read(stream: Iterable[str], source: str = "<records>") -> Iterator[Record | RecordError]:
    """Yield a :class:`Record` for each good line of ``stream`` and a :class:`RecordError` for
    each bad one, lazily, one line at a time.

    Bad records are yielded, not raised, so the caller chooses: stop at the first (strict) or
    report and go on. A line that held bytes not UTF-8 (decoded by :data:`KEPT_BYTES`, as
    ``records.read`` does) is one bad record too. A text stream whose own decoder fails
    cannot be read on, so that raises :class:`RecordError` (fatal).
    """
    lines = iter(stream)
    number = 0
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            # The decoder reads ahead in blocks: the line is where reading stopped, near it.
            problem = f"not valid UTF-8 ({exc.reason}); the rest of the file was not read"
            raise RecordError(source, number + 1, problem) from exc
        number += 1
        if number == 1:
            raw = raw.removeprefix("\ufeff")  # editors on Windows like to add a BOM
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        item: Record | RecordError | None = undecodable(((number, raw),), source)
        if item is None:
            try:
                item = parse_line(stripped, number, source)
            except RecordError as exc:
                item = exc
        yield item


def undecodable(lines: Sequence[tuple[int, str]], source: str) -> RecordError | None:
    """The error for the first of a record's ``(number, text)`` lines that held bytes not
    UTF-8 (see :data:`KEPT_BYTES`), naming that line and the byte's column (in bytes); None
    when they are all text. The record is skipped whole (a header or a continuation is part
    of what it sends), and only it."""
    for number, text in lines:
        if text.isascii():  # the common case: no such byte, and no need to look for one
            continue
        try:
            text.encode("utf-8", KEPT_BYTES).decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = not_utf8(exc, f"column {exc.start + 1}")
            first = lines[0][0]
            if number != first:
                problem += f"; the record from line {first} is skipped"
            return RecordError(source, number, problem)
    return None


def not_utf8(exc: UnicodeDecodeError, where: str) -> str:
    """How every reader says a byte is not UTF-8: which byte, ``where``, and why."""
    return f"not valid UTF-8: byte 0x{exc.object[exc.start]:02X} at {where} ({exc.reason})"


def parse_line(text: str, line: int, source: str) -> Record:
    """Parse one line of the format into a :class:`Record`; raise :class:`RecordError`.
    Its ``{{variables}}`` are read: a native record may be a flow's."""
    try:
        return _record(_load(text), line, source, templates=True)
    except _Bad as bad:
        raise RecordError(source, line, str(bad)) from None


def from_object(obj: dict[str, Any], line: int, source: str, *, templates: bool = False) -> Record:
    """A record from an object of this format's shape (what the other readers build, so
    every format is checked by the same rules); RecordError naming ``source:line``. A
    ``{{`` in it is text, as recorded traffic has it, unless ``templates`` (then it is a
    variable, as in native records)."""
    try:
        return _record(obj, line, source, templates)
    except _Bad as bad:
        raise RecordError(source, line, str(bad)) from None


def item(build: Callable[[], dict[str, Any]], line: int, source: str) -> Record | RecordError:
    """A record from the object ``build`` makes, or the error naming ``source:line``: the
    format's own complaint (a ValueError from ``build``) or the shared rules' one."""
    try:
        return from_object(build(), line, source)
    except ValueError as exc:
        return RecordError(source, line, str(exc))
    except RecordError as exc:
        return exc


def to_object(record: Record) -> dict[str, Any]:
    """The record as one object of this format (``tether convert``), the inverse of
    :func:`from_object`."""
    obj: dict[str, Any] = {"method": record.method, "url": record.url}
    if record.headers:
        obj["headers"] = join_headers(record.headers)
    if record.body:
        try:
            obj["body"] = record.body.decode("utf-8")
        except UnicodeDecodeError:
            obj["body_b64"] = base64.b64encode(record.body).decode("ascii")
    expect = _expect_object(record.expect)
    if expect:
        obj["expect"] = expect
    if record.tag:
        obj["tag"] = record.tag
    if record.at is not None:
        obj["at"] = record.at
    if record.capture:
        obj["capture"] = {
            rule.name: {rule.source: True if rule.source == "status" else rule.what}
            for rule in record.capture
        }
    if record.flow:
        obj["flow"] = record.flow
    return obj


def join_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as this format's object, which keeps one value per name: repeats are joined
    as HTTP allows (cookies with "; ", a Cookie header being one list)."""
    out: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in headers:
        first = names.setdefault(name.lower(), name)
        if first in out:
            out[first] += ("; " if name.lower() == "cookie" else ", ") + value
        else:
            out[first] = value
    return out


def _expect_object(expect: Expect) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if expect.status:
        obj["status"] = expect.status[0] if len(expect.status) == 1 else list(expect.status)
    rules: dict[str, Any] = {}
    for h in expect.headers:
        if h.rule == "equals":
            rules[h.name] = h.value
        else:
            rules[h.name] = {h.rule: True if h.rule == "absent" else h.value}
    if rules:
        obj["headers"] = rules
    if expect.body:
        obj["body"] = {b.rule: b.value for b in expect.body}
    return obj


def _load(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _Bad(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise _Bad("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python will convert
        raise _Bad(f"not valid JSON: {exc}") from None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; a silent overwrite hides mistakes.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _fail(f"duplicate key {_show(key)}")
        result[key] = value
    return result


def _no_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity, JSON does not, and NaN never equals anything.
    _fail(f"not valid JSON: {name} is not allowed")


def _record(obj: Any, line: int, source: str, templates: bool) -> Record:
    if not isinstance(obj, dict):
        _fail(f"a record must be a JSON object, got {_show(obj)}")
    _known_keys(obj, RECORD_KEYS, "")
    record = Record(
        method=_method(obj["method"]) if "method" in obj else "GET",
        url=_url(obj, templates),
        headers=_headers(obj["headers"]) if "headers" in obj else (),
        body=_body(obj),
        expect=_expect(obj["expect"]) if "expect" in obj else NO_EXPECT,
        line=line,
        source=source,
        tag=_string(obj["tag"], "tag") if "tag" in obj else "",
        at=_at(obj["at"]) if "at" in obj else None,
        capture=_capture(obj["capture"]) if "capture" in obj else (),
        flow=_flow(obj["flow"]) if "flow" in obj else "",
    )
    used = _uses(record) if templates else ()
    return replace(record, uses=used) if used else record


def _capture(value: Any) -> tuple[CaptureRule, ...]:
    try:
        return captures.from_object(value)
    except ValueError as exc:
        _fail(str(exc))


def _flow(value: Any) -> str:
    name = _string(value, "flow")
    if not re.fullmatch(r"[\w.-]+", name):
        _fail(f'"flow" must be a name of letters, digits, "_", "." and "-", got {_show(name)}')
    return name


def _uses(record: Record) -> tuple[str, ...]:
    """The variables a record's text uses, in order; each field's template is read here so
    that a ``{{`` without its end is this record's error, on its line."""
    texts: list[tuple[str, str]] = [("url", record.url)]
    texts += [(f"headers.{name}", value) for name, value in record.headers]
    if record.body and OPEN.encode() in record.body:
        texts.append(("body", record.body.decode("utf-8", KEPT_BYTES)))
    texts += [
        (f"expect.headers.{h.name}", h.value) for h in record.expect.headers if h.rule == "equals"
    ]
    texts += [
        (f"expect.body.{b.rule}", b.value)
        for b in record.expect.body
        if b.rule in ("equals", "contains")
    ]
    names: list[str] = []
    for field, text in texts:
        try:
            names += uses(text)
        except TemplateError as exc:
            _fail(f'"{field}": {exc}')
    return tuple(dict.fromkeys(names))


def _at(value: Any) -> float:
    if type(value) not in (int, float) or not 0 <= value < 1e11:
        _fail(f'"at" must be a time in seconds since the epoch, got {_show(value)}')
    return float(value)


def _method(value: Any) -> str:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        _fail(f'"method" must be an HTTP method such as "GET", got {_show(value)}')
    return value.upper()


def _url(obj: dict[str, Any], templates: bool) -> str:
    if "url" not in obj:
        _fail('"url" is required')
    value = obj["url"]
    if not isinstance(value, str) or not value:
        _fail(f'"url" must be a non-empty string, got {_show(value)}')
    if templates and OPEN in value:
        return _url_template(value)
    bad = unsendable(value)  # it goes on the request line as is
    if bad is not None:
        position, char = bad
        _fail(f'"url" has {_show(char)} at position {position}; percent-encode it')
    if value.startswith("//"):
        # Joined to the target this would replace its host, which is never what was meant.
        _fail(f'"url" must not start with "//" (that names a host), got {_show(value)}')
    if value.startswith("/"):
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        _fail(f'"url" is not a valid URL: {exc}')
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(
            f'"url" must be an absolute http(s) URL or a path starting with "/", got {_show(value)}'
        )
    return value


def _url_template(value: str) -> str:
    """A URL with variables is whole only once they are filled (it is checked then, each
    time); here its own text must be sendable, and a path start with "/"."""
    bad = unsendable(re.sub(r"\{\{.*?\}\}", "x", value))
    if bad is not None:
        _fail(f'"url" has {_show(bad[1])} outside its variables; percent-encode it')
    if not value.startswith(("/", "http://", "https://", OPEN)):
        _fail(
            f'"url" must be an absolute http(s) URL or a path starting with "/", got {_show(value)}'
        )
    return value


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        _fail(f'"headers" must be an object of header name to value, got {_show(value)}')
    return tuple(_header(name, field_value) for name, field_value in value.items())


def _header(name: str, value: Any) -> tuple[str, str]:
    if not _TOKEN.fullmatch(name):
        _fail(f'"headers" has an invalid header name {_show(name)}')
    field = f"headers.{name}"
    text = _string(value, field)
    bad = NOT_IN_A_VALUE.search(text)
    if bad:
        _fail(f'"{field}" has control character {_show(bad.group())} at position {bad.start()}')
    return name, text


def _body(obj: dict[str, Any]) -> bytes:
    if "body" in obj and "body_b64" in obj:
        _fail('give "body" or "body_b64", not both')
    if "body_b64" in obj:
        return _base64(obj["body_b64"])
    if "body" in obj:
        return _string(obj["body"], "body").encode("utf-8")
    return b""


def _base64(value: Any) -> bytes:
    text = _string(value, "body_b64")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII character
        _fail(f'"body_b64" is not valid base64: {exc}')


def _expect(value: Any) -> Expect:
    if not isinstance(value, dict):
        _fail(f'"expect" must be an object, got {_show(value)}')
    _known_keys(value, EXPECT_KEYS, "expect")
    return Expect(
        status=_status(value["status"]) if "status" in value else (),
        headers=_header_expects(value["headers"]) if "headers" in value else (),
        body=_body_expects(value["body"]) if "body" in value else (),
    )


def _status(value: Any) -> tuple[int, ...]:
    if _is_status(value):
        return (value,)
    if isinstance(value, list) and value:
        for index, code in enumerate(value):
            if not _is_status(code):
                _fail(f'"expect.status[{index}]" must be an integer 100-599, got {_show(code)}')
        return tuple(dict.fromkeys(value))  # drop repeats, keep the order given
    _fail(f'"expect.status" must be an integer 100-599 or a list of them, got {_show(value)}')


def _is_status(value: Any) -> bool:
    # type() rather than isinstance(): true and false are ints to Python but not statuses.
    return type(value) is int and 100 <= value <= 599


def _header_expects(value: Any) -> tuple[HeaderExpect, ...]:
    if not isinstance(value, dict):
        _fail(f'"expect.headers" must be an object of header name to rule, got {_show(value)}')
    seen: set[str] = set()
    for name in value:
        if not _TOKEN.fullmatch(name):
            _fail(f'"expect.headers" has an invalid header name {_show(name)}')
        # Header names ignore case, so "Location" and "location" are two rules for one header.
        if name.lower() in seen:
            _fail(f'"expect.headers" names {_show(name)} twice (header names ignore case)')
        seen.add(name.lower())
    return tuple(_header_expect(name, rule) for name, rule in value.items())


def _header_expect(name: str, rule: Any) -> HeaderExpect:
    field = f"expect.headers.{name}"
    if isinstance(rule, str):
        return HeaderExpect(name.lower(), "equals", _string(rule, field))
    if not isinstance(rule, dict):
        _fail(
            f'"{field}" must be a string, {{"regex": "..."}} or {{"absent": true}}, '
            f"got {_show(rule)}"
        )
    _known_keys(rule, HEADER_RULE_KEYS, field)
    if len(rule) != 1:
        _fail(f'"{field}" must have exactly one of "regex" or "absent"')
    if "regex" in rule:
        return HeaderExpect(name.lower(), "regex", _regex(rule["regex"], f"{field}.regex"))
    if rule["absent"] is not True:
        _fail(f'"{field}.absent" must be true (to allow any value, leave the header out)')
    return HeaderExpect(name.lower(), "absent")


def _regex(value: Any, field: str) -> str:
    pattern = _string(value, field)
    # Compiled now so a bad pattern is an error on its own line, not a failure mid-run.
    try:
        re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        _fail(f'"{field}" is not a valid regular expression: {exc.msg}{where}')
    except (OverflowError, RecursionError, ValueError) as exc:
        _fail(f'"{field}" is not a valid regular expression: {exc}')
    return pattern


def _body_expects(value: Any) -> tuple[BodyExpect, ...]:
    if not isinstance(value, dict):
        _fail(f'"expect.body" must be an object, got {_show(value)}')
    _known_keys(value, BODY_RULE_KEYS, "expect.body")
    return tuple(_body_expect(rule, rule_value) for rule, rule_value in value.items())


def _body_expect(rule: str, value: Any) -> BodyExpect:
    field = f"expect.body.{rule}"
    if rule == "equals":
        return BodyExpect("equals", _string(value, field))
    if rule == "contains":
        return BodyExpect("contains", _string(value, field))
    if rule == "sha256":
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            _fail(f'"{field}" must be 64 hex digits, got {_show(value)}')
        return BodyExpect("sha256", value.lower())
    return BodyExpect("json", value)  # any JSON value; _known_keys allowed nothing else


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        _fail(f'"{field}" must be a string, got {_show(value)}')
    # JSON can spell a lone surrogate ("\ud800"), which no encoder will send.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        _fail(f'"{field}" has an unpaired surrogate at position {exc.start}')
    return value


def _known_keys(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in obj:
        if key in allowed:
            continue
        inside = f' in "{where}"' if where else ""
        close = difflib.get_close_matches(key, allowed, n=1) if len(key) < 40 else []
        hint = (
            f' (did you mean "{close[0]}"?)'
            if close
            else f"; allowed: {', '.join(sorted(allowed))}"
        )
        _fail(f"unknown key {_show(key)}{inside}{hint}")


def _show(value: Any) -> str:
    """A short JSON rendering of ``value`` for a message, safe to print anywhere."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = type(value).__name__
    # A lone surrogate would make printing the message fail; spell it as an escape.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 1] + "…"


def _fail(problem: str) -> NoReturn:
    raise _Bad(problem)
