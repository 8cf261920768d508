"""The terminal report of ``tether audit``: a function of the audit document."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tether.audit.verdict import reused, unjudged


def render(doc: dict[str, Any]) -> RenderableType:
    """The audit as one rich renderable: a row per peer, then verdicts, the peers sent too
    few requests to judge, notes, and whether connections were reused; no table but a
    sentence when no request was seen."""
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
    if not doc["peers"]:  # no table of nothing: the sentence says it
        out.append("No HTTP request was seen.\n", style="yellow")
    for sentence in doc["verdicts"]:
        out.append(f"{sentence}\n", style="red bold")
    for sentence in unjudged(doc["peers"]):
        out.append(f"{sentence}\n", style="yellow")
    for sentence in doc["notes"]:
        out.append(f"{sentence}\n", style="yellow")
    if (fine := reused(doc["peers"])) is not None:
        out.append(f"{fine}\n", style="green")
    return Group(table, out) if doc["peers"] else Group(out)
