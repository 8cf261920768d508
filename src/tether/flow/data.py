"""``--data users.csv``: a row of values per iteration, named by the file's header row.
Pure once read; which rows a share of a split run takes is :func:`rows_of`'s rule."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tether.errors import InputError

__all__ = ["DataRows", "parse", "read", "rows_of"]

_NAME = re.compile(r"[A-Za-z_][\w.-]*")


@dataclass(frozen=True, slots=True)
class DataRows:
    """A data file: its column ``names`` and its ``rows`` (as many values each), in the
    order read; ``source`` names it in messages."""

    source: str
    names: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def values(self, index: int) -> dict[str, str]:
        """Row ``index`` as variables."""
        return dict(zip(self.names, self.rows[index], strict=True))


def read(path: str) -> DataRows:
    """The data file at ``path`` (UTF-8, a header row of names); InputError naming the file
    and line for anything that cannot be read as one."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            text = file.read()
    except OSError as exc:
        raise InputError(f"--data {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"--data {path}: not valid UTF-8 at byte {exc.start}") from None
    return parse(text, path)


def parse(text: str, source: str) -> DataRows:
    """A data file's text read (see :func:`read`)."""
    lines = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        names, rows = _header(lines, source), []
        for fields in lines:
            if fields:  # a blank line is no row
                rows.append(_row(fields, len(names), lines.line_num, source))
    except csv.Error as exc:
        raise InputError(f"{source}:{lines.line_num}: not CSV: {exc}") from None
    if not rows:
        raise InputError(f"{source}: a header row and no data rows: nothing to give the users")
    return DataRows(source, names, tuple(rows))


def _header(lines: Iterator[list[str]], source: str) -> tuple[str, ...]:
    first = next(lines, None)
    if not first:
        raise InputError(f"{source}:1: no header row (the first line names the columns)")
    names = tuple(name.strip() for name in first)
    for name in names:
        if not _NAME.fullmatch(name):
            raise InputError(
                f"{source}:1: {name!r} cannot name a variable (letters, digits, '_', '.' and "
                "'-'): is the first line a header row of column names?"
            )
    if len(set(names)) != len(names):
        raise InputError(f"{source}:1: a column name is given twice")
    return names


def _row(fields: list[str], width: int, line: int, source: str) -> tuple[str, ...]:
    if len(fields) != width:
        raise InputError(
            f"{source}:{line}: {len(fields)} values where the header names {width} columns"
        )
    return tuple(fields)


def rows_of(rows: int, share: tuple[int, int], unique: bool) -> Iterator[int]:
    """The rows a share (k, n) of a split run gives its iterations, in order: those at
    positions k, k + n, k + 2n ... of the rows cycled (each once over all shares, when
    ``unique``: then it ends with the rows)."""
    mine, every = share
    position = mine
    while not unique or position < rows:
        yield position % rows
        position += every
