"""Access logs: nginx's and Apache's ``combined`` and ``common`` formats, or any nginx
``log_format`` string given with ``--log-format``.

Each line becomes a record of its request line's method and target (a path, joined to the
run's target); with ``expect``, the logged status becomes the record's expected status.
A line that does not match the format, or whose request line is not ``METHOD TARGET
HTTP/x`` (a TLS probe logged as a 400, say), is reported with its line number.

The target goes out as the client sent it, as far as a request line can carry it: nginx logs
a byte of it outside printable ASCII (and a quote or a backslash) as ``\\xHH``, Apache too
(but a quote as ``\\"``, a backslash as ``\\\\``), and a log written otherwise may hold the
raw byte (or UTF-8 text). Each such byte is sent percent-encoded, ``%HH``, which servers
decode back to the same byte before they route, so the replay asks for what was logged. A
raw byte on the wire is not an option (a request-target is ASCII, and tether sends no record
URL that is not), and refusing the line would drop traffic that real logs hold. A bad byte
elsewhere in a line (a user agent, a referer) spoils nothing: only the method, target, time
and status are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import partial
from urllib.parse import quote

from tether.errors import InputError, RecordError
from tether.model import Record
from tether.records import jsonl

__all__ = ["COMBINED", "compile_format", "read"]

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)
"""nginx's predefined ``combined`` format; Apache's combined writes the same shape, and the
``common`` format is its first seven fields (what follows them may be missing)."""

_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_REQUEST = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/\d(?:\.\d)?")
# How nginx and Apache escape a byte of the request in their logs, and Apache a quote or a
# backslash; anything else after a backslash is left as it is.
_ESCAPE = re.compile(rb'\\x([0-9A-Fa-f]{2})|\\(["\\])')
# The characters a request-target may hold as they are: printable ASCII ("%" included, so
# what the log holds percent-encoded stays so).
_AS_IS = "".join(map(chr, range(0x21, 0x7F)))


def compile_format(log_format: str) -> re.Pattern[str]:
    """A regex for lines written by an nginx ``log_format`` string: each ``$variable``
    captures up to the literal text that follows it."""
    parts, pos = [], 0
    for match in _VARIABLE.finditer(log_format):
        parts.append(re.escape(log_format[pos : match.start()]))
        name = match.group(1) or match.group(2)
        parts.append(f"(?P<{name}>.*?)")
        pos = match.end()
    parts.append(re.escape(log_format[pos:]))
    names = set(re.compile("".join(parts)).groupindex)
    if "request" not in names and not {"request_method", "request_uri"} <= names:
        raise InputError(
            "--log-format needs $request, or $request_method and $request_uri, to replay"
        )
    return re.compile("^" + "".join(parts) + "$")


_COMBINED = re.compile(
    r"^(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time_local>[^\]]*)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<body_bytes_sent>\S+)'
)


def read(
    stream: Iterable[str],
    source: str,
    *,
    expect: bool = False,
    log_format: str | None = None,
) -> Iterator[Record | RecordError]:
    """Records from the log's lines, one at a time (blank lines skipped)."""
    pattern = compile_format(log_format) if log_format else _COMBINED
    for number, raw in enumerate(stream, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        yield jsonl.item(partial(line_object, line, pattern, expect), number, source)


def _time(fields: dict[str, str]) -> float | None:
    """When the request was logged, from whichever time variable the format has."""
    try:
        if fields.get("msec"):
            return float(fields["msec"])
        if fields.get("time_iso8601"):
            return datetime.fromisoformat(fields["time_iso8601"]).timestamp()
        if fields.get("time_local"):
            return datetime.strptime(fields["time_local"], "%d/%b/%Y:%H:%M:%S %z").timestamp()
    except ValueError:
        raise ValueError("the logged time is not one nginx writes") from None
    return None


def line_object(line: str, pattern: re.Pattern[str], expect: bool) -> dict[str, object]:
    """One log line as a native record object; ValueError saying why it is not one."""
    found = pattern.match(line)
    if found is None:
        raise ValueError("not a line of the log format (combined or common, or --log-format)")
    fields = found.groupdict()
    if fields.get("request") is not None:
        request = _REQUEST.fullmatch(fields["request"])
        if request is None:
            raise ValueError(f"request {fields['request'][:60]!r} is not METHOD TARGET HTTP/x")
        method, target = request.group(1), request.group(2)
    else:
        method, target = fields["request_method"], fields["request_uri"]
    obj: dict[str, object] = {"method": method, "url": _sendable(target)}
    at = _time(fields)
    if at is not None:
        obj["at"] = at
    status = fields.get("status")
    if expect and status and status.isdigit():
        obj["expect"] = {"status": int(status)}
    return obj


def _sendable(target: str) -> str:
    """The logged target as a request line carries it: the bytes the log holds (a raw byte
    that is not UTF-8 among them, kept by :data:`jsonl.KEPT_BYTES`), each escape undone, and
    every byte outside printable ASCII percent-encoded (see the module's docstring)."""
    logged = target.encode("utf-8", jsonl.KEPT_BYTES)
    return quote(_ESCAPE.sub(_unescape, logged), safe=_AS_IS)


def _unescape(escape: re.Match[bytes]) -> bytes:
    code, char = escape.groups()
    return bytes([int(code, 16)]) if code else char
