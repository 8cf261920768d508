"""The terminal report of ``tether diff``: a function of its document."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def render(doc: dict[str, Any]) -> RenderableType:
    """A line of totals, the differences by group and field, and what was noise."""
    head = Text(
        f"{doc['records']:,} records compared, {doc['records_differing']:,} with differences\n",
        style="bold red" if doc["records_differing"] else "bold",  # "No differences." is green
    )
    parts: list[RenderableType] = [head]
    if doc["differences"]:
        table = Table(box=None, padding=(0, 2), title="differences", title_justify="left")
        for name in ("group", "field", "records", "first example: primary -> candidate"):
            table.add_column(name, justify="right" if name == "records" else "left")
        for row in doc["differences"]:
            ex = row["examples"][0]
            example = f"{ex['record']}: {ex['primary']} -> {ex['candidate']}"
            table.add_row(
                *(Text(c) for c in (row["group"], row["field"], f"{row['count']:,}", example))
            )
        parts.append(table)
    else:
        parts.append(Text("No differences.", style="green"))
    if doc["noise"]:
        noise = ", ".join(f"{n['field']} ({n['group']})" for n in doc["noise"][:10])
        parts.append(Text(f"\nnoise (differs between primary and secondary too): {noise}"))
    return Group(*parts)
