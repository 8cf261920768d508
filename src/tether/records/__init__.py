"""Record readers, one module per input format. Each yields :class:`~tether.model.Record`
for good entries and :class:`~tether.errors.RecordError` for bad ones, streaming, and builds
its records through :func:`tether.records.jsonl.from_object`, so one set of rules checks
them all.

Formats: ``jsonl`` (native), ``har``, ``log`` (access logs), ``vegeta`` (http targets),
``vegeta-json``, ``curl``, ``csv``. :func:`detect` picks one from the file's name, else from
its first line; ``--format`` forces one.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO

from tether.errors import InputError, RecordError
from tether.flags import Kind, flag, internal, made_of
from tether.model import Record
from tether.records import accesslog, csvfile, curl, har, jsonl, oneurl, vegeta
from tether.records.oneurl import UrlRequest

__all__ = [
    "FORMATS",
    "PLAIN_READING",
    "FileSource",
    "Items",
    "Reading",
    "detect",
    "file_source",
    "read",
]

Items = Iterator[Record | RecordError]

FORMATS = ("jsonl", "har", "log", "vegeta", "vegeta-json", "curl", "csv")

_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".har": "har",
    ".log": "log",
    ".csv": "csv",
    ".curl": "curl",
    ".sh": "curl",
}
_LOG_LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]+\] "')
_VEGETA_TARGET = re.compile(r"^[A-Z]+ https?://\S+$")


@dataclass(frozen=True, slots=True)
class Reading:
    """How to read a records file: its ``format`` (None: :func:`detect`), whether recorded
    responses become expectations (HAR status and Location, a log's status), the one origin
    to keep from a HAR, and an nginx ``log_format`` for access logs. ``url_request``: the
    request and check made for a URL given in place of the file (:mod:`.oneurl`)."""

    format: str | None = field(
        default=None,
        metadata=flag(
            "--format",
            kind=Kind.CHOICE,
            choices=FORMATS,
            param="records_format",  # what a config file has always called it
            default_in_words="from the file's name, else its first line",
            help="The records' format.",
        ),
    )
    expect_recorded: bool = field(
        default=False,
        metadata=flag(
            "--expect-from-har",
            "--expect-recorded",
            kind=Kind.SWITCH,
            help="Expect the recorded responses: HAR status and Location, a log's status.",
        ),
    )
    only_origin: str | None = field(
        default=None,
        metadata=flag(
            "--only-origin",
            metavar="ORIGIN",
            help="HAR: keep only entries for this scheme://host[:port].",
        ),
    )
    har_flow: bool = field(
        default=False,
        metadata=flag(
            "--flow",
            kind=Kind.SWITCH,
            help="HAR: replay the entries as one flow, in order, per virtual user, each with "
            "its own cookie jar (the recorded Cookie headers are left out: the jar sends "
            "what the replayed responses set).",
        ),
    )
    log_format: str | None = field(
        default=None,
        metadata=flag(
            "--log-format",
            metavar="FORMAT",
            help="Access logs: the nginx log_format they were written in.",
        ),
    )
    set_headers: tuple[tuple[str, str], ...] = field(
        default=(),
        metadata=internal("the run command's -H given with a records file, made there"),
    )
    """Fields set on every record read, each in place of the record's own of that name
    (``tether run records -H 'Authorization: ...'``: what fills a captured secret's
    placeholder)."""
    # Made of the run command's URL flags, which only that command takes.
    url_request: UrlRequest | None = field(
        default=None,
        metadata=made_of(
            "--method", "--header", "--body", "--body-file", "--expect-status", "--expect-header"
        ),
    )


def detect(name: str, first_line: str) -> str:
    """The format of a file from its name, else from its first non-blank line."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    line = first_line.strip()
    if line.startswith("{"):
        if '"log"' in line:
            return "har"
        return "vegeta-json" if '"header"' in line else "jsonl"
    if line.startswith("curl "):
        return "curl"
    if _VEGETA_TARGET.match(line):
        return "vegeta"
    if _LOG_LINE.match(line):
        return "log"
    if "url" in [cell.strip() for cell in line.split(",")]:
        return "csv"
    return "jsonl"


def read(stream: IO[bytes], source: str, reading: Reading) -> Items:
    """Records from a binary stream in ``reading.format`` (or the detected one)."""
    fmt = reading.format or detect(source, _first_line(stream))
    if fmt == "har":
        yield from har.read(
            stream,
            source,
            expect=reading.expect_recorded,
            only_origin=reading.only_origin,
            flow=reading.har_flow,
        )
        return
    text = _utf8_lines(stream)
    readers: dict[str, Callable[[], Items]] = {
        "jsonl": lambda: jsonl.read(text, source),
        "log": lambda: accesslog.read(
            text, source, expect=reading.expect_recorded, log_format=reading.log_format
        ),
        "vegeta": lambda: vegeta.read_http(text, source),
        "vegeta-json": lambda: vegeta.read_json(text, source),
        "curl": lambda: curl.read(text, source),
        "csv": lambda: csvfile.read(text, source),
    }
    if fmt not in readers:
        raise InputError(f"unknown records format {fmt!r}; formats are {', '.join(FORMATS)}")
    yield from readers[fmt]()


def _utf8_lines(stream: IO[bytes]) -> Iterator[str]:
    """The stream's lines, each decoded on its own (line ends kept), a byte that is not UTF-8
    kept by :data:`jsonl.KEPT_BYTES`: it spoils its own record only, which the reader names
    (a text decoder reading ahead in blocks would fail at the block, naming the wrong line,
    and end the file there)."""
    for raw in stream:
        yield raw.decode("utf-8", jsonl.KEPT_BYTES)


def _first_line(stream: IO[bytes]) -> str:
    # Peek without consuming: the reader starts from the first byte.
    peek = getattr(stream, "peek", None)
    head: bytes = peek(4096)[:4096] if peek else b""
    for line in head.splitlines():
        if line.strip():
            return line.decode("utf-8", "replace").removeprefix("\ufeff")
    return ""


PLAIN_READING = Reading()
"""Detect the format; no recorded expectations; every origin."""


class FileSource:
    """A re-openable source for the records at ``path`` (``-`` is standard input, which
    cannot be read twice, so it does not cycle; a URL is its one record): each call reads
    them afresh."""

    def __init__(self, path: str, reading: Reading) -> None:
        self.path = path
        self.reading = reading

    @property
    def streamed(self) -> bool:
        """Whether the records arrive as they are written (standard input, as from ``tether
        capture -o -``): no reader may wait for more of them than it needs."""
        return self.path == "-"

    def __call__(self) -> Items:
        path, reading = self.path, self.reading
        if oneurl.is_url(path):
            request = reading.url_request or UrlRequest()
            yield jsonl.item(lambda: oneurl.as_object(path, request), 1, oneurl.SOURCE)
            return
        if path == "-":
            yield from _with_headers(read(sys.stdin.buffer, "<stdin>", reading), reading)
            return
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below, lazily
        except OSError as exc:
            raise InputError(f"cannot read records {path!r}: {exc.strerror}") from None
        with stream:
            yield from _with_headers(read(stream, path, reading), reading)


def file_source(path: str, reading: Reading = PLAIN_READING) -> FileSource:
    """The records at ``path`` as a :class:`FileSource`."""
    return FileSource(path, reading)


def _with_headers(items: Items, reading: Reading) -> Items:
    """The records with ``reading.set_headers`` in place of their own of those names."""
    given = reading.set_headers
    if not given:
        yield from items
        return
    names = {name.lower() for name, _ in given}
    for item in items:
        if isinstance(item, Record):
            kept = tuple(field for field in item.headers if field[0].lower() not in names)
            item = replace(item, headers=kept + given)
        yield item
