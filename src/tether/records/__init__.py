"""Record readers, one module per input format. Each has ``read(stream, source)`` yielding
:class:`~tether.model.Record` for good entries and :class:`~tether.errors.RecordError` for bad
ones, streaming."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from tether.errors import InputError, RecordError
from tether.model import Record
from tether.records import jsonl

Items = Iterator[Record | RecordError]


def file_source(path: str) -> Callable[[], Items]:
    """A re-openable source for the records at ``path`` (``-`` is standard input, which
    cannot be read twice, so it does not cycle)."""

    def open_records() -> Items:
        if path == "-":
            yield from jsonl.read(sys.stdin, "<stdin>")
            return
        try:
            stream = open(path, encoding="utf-8")  # noqa: SIM115 - closed below, lazily
        except OSError as exc:
            raise InputError(f"cannot read records {path!r}: {exc.strerror}") from None
        with stream:
            yield from jsonl.read(stream, path)

    return open_records
