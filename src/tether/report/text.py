"""The terminal summary: a function of the summary document, drawn with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def render(doc: dict[str, Any], gate_failures: list[str] | None = None) -> RenderableType:
    """The whole summary as one rich renderable."""
    parts: list[RenderableType] = [_overview(doc), _connections(doc)]
    if doc["mismatch_examples"]:
        parts.append(_mismatches(doc))
    if doc["errors"]:
        parts.append(_errors(doc))
    if doc["input_errors"]:
        parts.append(_input_errors(doc))
    parts.append(_verdict(doc, gate_failures or []))
    return Group(*parts)


def print_summary(doc: dict[str, Any], gate_failures: list[str], console: Console) -> None:
    """Print the summary to ``console``."""
    console.print(render(doc, gate_failures))


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _overview(doc: dict[str, Any]) -> Table:
    grid = _grid()
    title = f"{escape(doc['target'] or 'records')}  concurrency {doc['concurrency']}"
    if doc["interrupted"]:
        title += "  [yellow](interrupted)[/]"
    grid.add_row("run", title)
    grid.add_row(
        "requests",
        f"{doc['requests']:,}   ok [green]{doc['ok']:,}[/]   "
        f"mismatches {_bad(doc['mismatches'])}   errors {_bad(doc['errors'])}"
        + (f"   input errors {_bad(doc['input_errors'])}" if doc["input_errors"] else ""),
    )
    grid.add_row("time", f"{doc['duration_s']:.3f} s   {doc['rate']:,.0f} req/s")
    status = "   ".join(f"{code}: {n:,}" for code, n in doc["status"].items()) or "-"
    grid.add_row("status", status)
    lat = doc["latency_ms"]
    grid.add_row(
        "latency ms",
        "   ".join(f"{k} {lat[k]:g}" for k in ("min", "p50", "p90", "p99", "max", "mean")),
    )
    return grid


def _connections(doc: dict[str, Any]) -> Table:
    c = doc["connections"]
    grid = _grid()
    grid.add_row(
        "connections",
        f"opened [bold]{c['opened']:,}[/]   reused {c['reused']:,} "
        f"({c['reuse_fraction']:.2%})   requests/connection {c['requests_per_connection']:,}   "
        f"peak open {c['peak_open']:,}",
    )
    grid.add_row(
        "",
        f"closed by server {c['closed_by_server']:,}   closed undrained "
        f"{_bad(c['closed_undrained'])}   stale retries {c['retried_stale']:,}   "
        f"connect failures {_bad(c['connect_failed'])}",
    )
    if c["closed"]:
        grid.add_row("", "closed: " + ", ".join(f"{k} {n:,}" for k, n in c["closed"].items()))
    return grid


def _mismatches(doc: dict[str, Any]) -> Table:
    table = Table(title=f"mismatches ({doc['mismatches']:,} records)", title_justify="left")
    for name in ("line", "request", "field", "expected", "got"):
        table.add_column(name, overflow="fold")
    for m in doc["mismatch_examples"]:
        table.add_row(
            *_cells(m["line"], f"{m['method']} {m['url']}", m["field"], m["expected"], m["got"])
        )
    return table


def _errors(doc: dict[str, Any]) -> Table:
    kinds = ", ".join(f"{k} {n:,}" for k, n in doc["error_kinds"].items())
    table = Table(title=f"errors ({doc['errors']:,}: {kinds})", title_justify="left")
    for name in ("line", "request", "error"):
        table.add_column(name, overflow="fold")
    for e in doc["error_examples"]:
        table.add_row(*_cells(e["line"], f"{e['method']} {e['url']}", e["error"]))
    return table


def _input_errors(doc: dict[str, Any]) -> Table:
    table = Table(title=f"skipped records ({doc['input_errors']:,})", title_justify="left")
    table.add_column("where", no_wrap=True)
    table.add_column("problem", overflow="fold")
    for e in doc["input_error_examples"]:
        table.add_row(*_cells(f"{e['source']}:{e['line']}", e["error"]))
    return table


def _verdict(doc: dict[str, Any], gate_failures: list[str]) -> Text:
    lines = [Text(f"gate failed: {f}", style="bold red") for f in gate_failures]
    lines.append(Text(verdict(doc), style="bold" if doc["requests"] else "yellow"))
    return Text("\n").join(lines)


def verdict(doc: dict[str, Any]) -> str:
    """One plain sentence on how the run went."""
    n, c = doc["requests"], doc["connections"]
    if not n:
        return "No request was sent." + (
            f" {doc['input_errors']:,} record(s) could not be read." if doc["input_errors"] else ""
        )
    parts = []
    if doc["mismatches"] or doc["errors"]:
        parts.append(
            f"{doc['mismatches']:,} of {n:,} responses did not match and {doc['errors']:,} "
            f"requests failed."
        )
    else:
        parts.append(f"All {n:,} responses matched.")
    parts.append(
        f"{c['opened']:,} connection{'s' if c['opened'] != 1 else ''} carried "
        f"{n:,} requests ({c['requests_per_connection']:,} per connection)."
    )
    if doc["input_errors"]:
        bad = doc["input_errors"]
        parts.append(f"{bad:,} record{' was' if bad == 1 else 's were'} skipped: see above.")
    return " ".join(parts)


def _bad(n: int) -> str:
    return f"[red]{n:,}[/]" if n else "0"


def _cells(*values: object) -> list[Text]:
    # Values come from records and servers: never let them be read as rich markup.
    return [Text(str(v)) for v in values]
