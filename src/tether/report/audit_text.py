"""The terminal report of ``tether audit``: a function of the audit document."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def render(doc: dict[str, Any]) -> RenderableType:
    """The audit as one rich renderable: a row per peer, then verdicts and notes."""
    # Fits 80 columns (a file, a CI log) with a peer of up to 26 characters; a longer one
    # folds onto a second line rather than any figure or heading being cut short.
    table = Table(title="connections by peer", title_justify="left", box=None, padding=(0, 1))
    table.add_column("peer", justify="left", overflow="fold")
    for name in ("opened", "requests", "per conn", "peak open", "open at end"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in doc["peers"]:
        cells = [row["peer"], f"{row['connections']:,}", f"{row['requests']:,}"]
        cells += [f"{row['requests_per_connection']:g}", f"{row['peak_open']:,}"]
        cells += [f"{row['open_at_end']:,}"]
        table.add_row(*(Text(c) for c in cells))
    out = Text()
    for sentence in doc["verdicts"]:
        out.append(f"{sentence}\n", style="red bold")
    for sentence in doc["notes"]:
        out.append(f"{sentence}\n", style="yellow")
    if doc["peers"] and not doc["verdicts"]:
        out.append("Connections were reused.\n", style="green")
    return Group(table, out)
