"""CSV with a header row naming the record fields.

Columns: ``url`` (required), ``method``, ``body``, ``tag``, ``status`` (the expected status),
``header.NAME`` (a request header) and ``expect.NAME`` (an expected response header's exact
value). Empty cells are left out; any other column is an error, reported once, on the header
row. Rows are numbered by their line in the file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from tether.errors import RecordError
from tether.model import Record
from tether.records import jsonl

__all__ = ["read"]

PLAIN = {"url", "method", "body", "tag", "status"}


def read(stream: Iterable[str], source: str) -> Iterator[Record | RecordError]:
    """Records from the rows, one at a time."""
    lines = _Lines(stream)
    rows = csv.reader(lines)
    try:
        header = next(rows)
    except StopIteration:
        return
    except csv.Error as exc:
        raise RecordError(source, 1, f"not CSV: {exc}") from None
    unreadable = jsonl.undecodable(lines.take(), source)
    if unreadable is not None:  # no column can be named: the file cannot be read
        raise unreadable
    bad = [name for name in header if not _known(name)]
    if bad or "url" not in header:
        problem = f"unknown column(s) {bad}" if bad else 'no "url" column'
        raise RecordError(
            source, 1, f"{problem}; columns are {sorted(PLAIN)}, header.NAME, expect.NAME"
        )
    for row in rows:
        number = lines.number
        spoiled = jsonl.undecodable(lines.take(), source)
        if spoiled is not None:
            yield spoiled
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield RecordError(source, number, f"{len(row)} cells for {len(header)} columns")
            continue
        cells = dict(zip(header, row, strict=True))
        yield jsonl.item(partial(row_object, cells), number, source)


class _Lines:
    """The stream's lines, remembering the number of the last one read (a quoted cell may
    span lines: a row is named by the line it ends on) and the lines of the row being read
    (csv reads no further than the row it returns)."""

    def __init__(self, stream: Iterable[str]) -> None:
        self._it = iter(stream)
        self.number = 0
        self._row: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[str]:
        for line in self._it:
            self.number += 1
            self._row.append((self.number, line))
            yield line

    def take(self) -> list[tuple[int, str]]:
        """The (number, text) lines read since the last call: the row just returned."""
        row, self._row = self._row, []
        return row


def _known(name: str) -> bool:
    return name in PLAIN or (name.startswith(("header.", "expect.")) and len(name) > 7)


def row_object(cells: dict[str, str]) -> dict[str, Any]:
    """One row as a native record object."""
    obj: dict[str, Any] = {}
    headers: dict[str, str] = {}
    expect_headers: dict[str, str] = {}
    for name, cell in cells.items():
        if not cell:
            continue
        if name.startswith("header."):
            headers[name[7:]] = cell
        elif name.startswith("expect."):
            expect_headers[name[7:]] = cell
        elif name == "status":
            if not cell.strip().isdigit():
                raise ValueError(f'"status" must be a number, got {cell[:20]!r}')
            obj.setdefault("expect", {})["status"] = int(cell)
        else:
            obj[name] = cell
    if headers:
        obj["headers"] = headers
    if expect_headers:
        obj.setdefault("expect", {})["headers"] = expect_headers
    return obj
