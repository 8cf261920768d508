"""Results files as CSV (``tether report --format csv``): one row per outcome line, its keys
as the columns, every text cell spreadsheet-safe."""

from __future__ import annotations

from typing import cast

from tether.document import OutcomeLine

__all__ = ["CSV_COLUMNS", "FORMULA_STARTS", "csv_row", "spreadsheet_safe"]

_LINE_KEYS = [key for key in OutcomeLine.__annotations__ if key != "mismatches"]

CSV_COLUMNS = (*_LINE_KEYS, "mismatches", "mismatch_field", "mismatch_expected", "mismatch_got")
"""The CSV's header: the results file's keys, its mismatches as a count and the first one's
field, expected and got (each response's every mismatch stays in the results file)."""


def csv_row(line: OutcomeLine) -> list[object]:
    """A :func:`~tether.results.lines.filled` line as a CSV row of :data:`CSV_COLUMNS`. Pure."""
    full = cast("dict[str, object]", line)
    first = line["mismatches"][0] if line["mismatches"] else None
    cells = [full[key] for key in _LINE_KEYS] + [len(line["mismatches"])]
    cells += [first["field"], first["expected"], first["got"]] if first else [None] * 3
    return [_cell(cell) for cell in cells]


def _cell(value: object) -> object:
    """None as an empty cell, flags as JSON writes them, text spreadsheet-safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _BOOL[value]
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


_BOOL = {False: "false", True: "true"}

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (CSV injection, as OWASP lists it)."""


def spreadsheet_safe(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows as text: one that would start a formula
    gets a ``'`` before it (a URL, header value or group comes from records and responses:
    anyone's). Numbers are tether's own, never negative, and are left as numbers."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
