"""The terminal report of ``tether doctor``: a function of its document."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def render(doc: dict[str, Any]) -> RenderableType:
    """The findings in a grid, then the advice."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("server", escape(doc["url"]))
    grid.add_row("Server header", _software(doc))
    grid.add_row("keep-alive", "yes" if doc["keep_alive"] else "[red]no[/]")
    if doc["keep_alive"]:
        idle = doc["idle_timeout_s"]
        grid.add_row(
            "idle timeout",
            f"about {idle:g} s" if idle is not None else f"over {doc['idle_wait_s']:g} s",
        )
        per = doc["requests_per_connection"]
        more = "more than " if doc["request_limit_reached"] else ""
        grid.add_row("requests per connection", f"{more}{per:,}" if per else "-")
        if doc["closes_after_error"] is not None:
            what = "closes the connection" if doc["closes_after_error"] else "keeps it open"
            grid.add_row(f"after a {doc['error_status']}", what)
    advice = Text()
    for sentence in doc["advice"]:
        advice.append(f"{sentence}\n")
    return Group(grid, Text(), advice)


def _software(doc: dict[str, Any]) -> str:
    # Whose settings the advice names: none when the header is absent or names no known server.
    header, known = doc.get("server_header"), doc.get("server_software")
    if header is None:
        return "none (the advice names no server's settings)"
    return f"{escape(header)} ({known or 'not a server whose settings tether knows'})"
