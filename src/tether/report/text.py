"""The terminal summary: a function of the summary document, drawn with rich."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tether.document import (
    ErrorExample,
    LostWorker,
    MismatchExample,
    SummaryDocument,
    ThresholdResult,
    Watch,
)
from tether.thresholds import shown


def render(doc: SummaryDocument, gate_failures: list[str] | None = None) -> RenderableType:
    """The whole summary as one rich renderable."""
    grid = _grid()
    _overview(doc, grid)
    _connections(doc, grid)
    parts: list[RenderableType] = [grid]
    if len(doc["groups"]) > 1:
        parts.append(_groups(doc))
    if doc["mismatch_examples"]:
        parts.append(_mismatches(doc))
    if doc["errors"]:
        parts.append(_errors(doc))
    if doc["input_errors"]:
        parts.append(_input_errors(doc))
    watch = doc.get("watch")
    if watch:
        parts.append(_watch(watch))
    parts.append(_verdict(doc, gate_failures or []))
    return Group(*parts)


def print_summary(doc: SummaryDocument, gate_failures: list[str], console: Console) -> None:
    """Print the summary to ``console``."""
    console.print(render(doc, gate_failures))


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _overview(doc: SummaryDocument, grid: Table) -> None:
    title = f"{escape(doc['target'] or 'records')}   concurrency {doc['concurrency']}"
    title += f"   engine {doc.get('engine', 'python')}"
    if doc["interrupted"]:
        by = doc.get("signal")
        title += f"   [yellow](interrupted{f' by {by}' if by and by != 'SIGINT' else ''})[/]"
    grid.add_row("run", title)
    grid.add_row("requests", f"{doc['requests']:,}   ok [green]{doc['ok']:,}[/]")
    grid.add_row(
        "problems",
        f"mismatches {_bad(doc['mismatches'])}   errors {_bad(doc['errors'])}   "
        f"skipped records {_bad(doc['input_errors'])}",
    )
    grid.add_row("time", f"{doc['duration_s']:.3f} s   {doc['rate']:,.0f} req/s")
    if _open_model(doc):
        target = f"target {doc['rate_target']:,.0f} req/s   " if doc["rate_target"] else ""
        grid.add_row(
            "open model",
            f"{target}schedule {doc['schedule_s']:,.3f} s   late {_bad(doc['late'])}",
        )
    status = "   ".join(f"{code}: {n:,}" for code, n in doc["status"].items()) or "-"
    grid.add_row("status", status)
    lat = doc["latency_ms"]
    grid.add_row("latency ms", "  ".join(f"{k} {lat[k]:g}" for k in ("min", "p50", "p90", "p99")))
    grid.add_row("", "  ".join(f"{k} {lat[k]:g}" for k in ("max", "mean")))
    if _open_model(doc):
        svc = doc["service_ms"]
        grid.add_row(
            "service ms",
            "  ".join(f"{k} {svc[k]:g}" for k in ("min", "p50", "p90", "p99", "max")),
        )


def _open_model(doc: SummaryDocument) -> bool:
    return doc.get("schedule_s") is not None


def _connections(doc: SummaryDocument, grid: Table) -> None:
    c = doc["connections"]
    grid.add_row(
        "connections",
        f"opened [bold]{c['opened']:,}[/]   peak open {c['peak_open']:,}   "
        f"requests per connection {_number(c['requests_per_connection'])}",
    )
    grid.add_row("", f"reused by {c['reused']:,} requests ({c['reuse_fraction']:.2%})")
    grid.add_row(
        "",
        f"closed by server {c['closed_by_server']:,}   undrained "
        f"{_bad(c['closed_undrained'])}   stale retries {c['retried_stale']:,}",
    )
    if c["connect_failed"]:
        grid.add_row("", f"failed to connect {_bad(c['connect_failed'])}")
    if c["closed"]:
        grid.add_row("", "closed: " + ", ".join(f"{k} {n:,}" for k, n in c["closed"].items()))


def _watch(watch: Watch) -> Text:
    out = Text(f"server (watched every {watch['interval_s']:g} s)\n", style="bold")
    for source in watch["sources"]:
        out.append(f"  {source['source']}", style="bold")
        out.append(f"   {source['samples']:,} samples")
        if source["errors"]:
            out.append(f"   {source['errors']:,} failed: {source['last_error']}", style="red")
        out.append("\n")
        for name, fig in source["figures"].items():
            first = "-" if fig["first"] is None else f"{fig['first']:,.0f}"
            out.append(
                f"      {name:<12} first {first:>8}   peak {fig['peak']:>8,.0f}   "
                f"last {fig['last']:>8,.0f}\n"
            )
    for sentence in watch["cross_checks"]:
        out.append(f"  {sentence}\n")
    for sentence in watch["leak_verdicts"]:
        out.append(f"  leak: {sentence}\n", style="red bold")
    return out


SHOWN_GROUPS = 10


def _groups(doc: SummaryDocument) -> Table:
    groups = doc["groups"]
    title = f"groups ({len(groups)}" + (
        f", busiest {SHOWN_GROUPS})" if len(groups) > SHOWN_GROUPS else ")"
    )
    table = Table(title=title, title_justify="left", box=None, padding=(0, 2))
    for name in ("group", "requests", "ok", "mismatches", "errors", "p50 ms", "p99 ms"):
        table.add_column(name, justify="left" if name == "group" else "right")
    for g in groups[:SHOWN_GROUPS]:
        lat = g["latency_ms"]
        cells = [g["group"], f"{g['requests']:,}", f"{g['ok']:,}", f"{g['mismatches']:,}"]
        cells += [f"{g['errors']:,}", f"{lat['p50']:g}", f"{lat['p99']:g}"]
        table.add_row(*(Text(c) for c in cells))  # group names come from records: no markup
    return table


def _request(doc: SummaryDocument, item: MismatchExample | ErrorExample) -> str:
    """``line 12  GET /path``: the URL without the run's target, which the header shows."""
    url = str(item["url"])
    target = (doc["target"] or "").rstrip("/")
    if target and url.startswith(target + "/"):
        url = url[len(target) :]
    return f"line {item['line']}  {item['method']} {url}"


def _mismatches(doc: SummaryDocument) -> Text:
    shown = len(doc["mismatch_examples"])
    out = Text(f"mismatches: {doc['mismatches']:,} records (first {shown} shown)\n", style="bold")
    for m in doc["mismatch_examples"]:
        out.append(f"  {_request(doc, m)}  {m['field']}\n")
        out.append(f"      expected  {m['expected']}\n", style="green")
        out.append(f"      got       {m['got']}\n", style="red")
    return out


def _errors(doc: SummaryDocument) -> Text:
    kinds = ", ".join(f"{k} {n:,}" for k, n in doc["error_kinds"].items())
    out = Text(f"errors: {doc['errors']:,} requests ({kinds})\n", style="bold")
    for e in doc["error_examples"]:
        out.append(f"  {_request(doc, e)}\n")
        out.append(f"      {e['error']}\n", style="red")
    return out


def _input_errors(doc: SummaryDocument) -> Text:
    out = Text(f"skipped records: {doc['input_errors']:,}\n", style="bold")
    for e in doc["input_error_examples"]:
        out.append(f"  {e['source']}:{e['line']}: {e['error']}\n", style="red")
    return out


def _verdict(doc: SummaryDocument, gate_failures: list[str]) -> Text:
    lines = [_lost(w) for w in doc.get("lost_workers", [])]
    lines += [_threshold(t) for t in doc.get("thresholds", [])]
    lines += [Text(f"gate failed: {f}", style="bold red") for f in gate_failures]
    lines += [Text(f"output failed: {u}", style="bold red") for u in doc.get("unwritten", [])]
    lines.append(Text(verdict(doc), style="bold" if doc["requests"] else "yellow"))
    return Text("\n").join(lines)


def _lost(worker: LostWorker) -> Text:
    reported = worker["reported"]
    so_far = f", after reporting {reported['requests']:,} requests" if reported else ""
    text = f"partial: worker {worker['worker']} {worker['error']}{so_far}; its share is missing"
    return Text(text, style="bold red")


def _threshold(result: ThresholdResult) -> Text:
    mark, style = ("pass", "green") if result["ok"] else ("FAIL", "bold red")
    return Text.assemble(
        (f"threshold {mark}  ", style), f"{result['threshold']}  ({shown(result)})"
    )


def verdict(doc: SummaryDocument) -> str:
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
        f"{n:,} requests ({_number(c['requests_per_connection'])} per connection)."
    )
    if doc["input_errors"]:
        bad = doc["input_errors"]
        parts.append(f"{bad:,} record{' was' if bad == 1 else 's were'} skipped: see above.")
    return " ".join(parts)


def _number(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def _bad(n: int) -> str:
    return f"[red]{n:,}[/]" if n else "0"
