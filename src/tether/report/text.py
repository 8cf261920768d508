"""The terminal summary: a function of the summary document, drawn with rich."""

from __future__ import annotations

from urllib.parse import urlsplit

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tether.document import (
    ErrorExample,
    FlowRow,
    LostWorker,
    MismatchExample,
    Omitted,
    SummaryDocument,
    ThresholdResult,
    Watch,
)
from tether.errors import Unsent
from tether.ledger import CloseReason
from tether.model import SUCCESS_TEXT
from tether.thresholds import shown


def render(doc: SummaryDocument, gate_failures: list[str] | None = None) -> RenderableType:
    """The whole summary as one rich renderable."""
    grid = _grid()
    _overview(doc, grid)
    _connections(doc, grid)
    parts: list[RenderableType] = [grid]
    if doc["flows"]:
        parts.extend(_flow(doc, name, row) for name, row in doc["flows"].items())
    elif len(doc["groups"]) > 1:
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
    """Print the summary to ``console`` (lines that are not prose uncropped: see _Rows)."""
    console.print(render(doc, gate_failures), crop=False)


def _grid() -> _Rows:
    return _Rows()


class _Rows:
    """The summary's labelled rows, one line each. Figures, URLs and counts are not prose:
    they are never wrapped or cut, whatever the console's width (80 columns in a file or a
    CI log), since a URL broken over two lines can no longer be copied or searched for."""

    LABEL = len("connections") + 2  # the widest label, and the gap after it

    def __init__(self) -> None:
        self.lines: list[Text] = []

    def add_row(self, label: str, value: str) -> None:
        """A row: ``label`` plain, ``value`` in rich markup."""
        line = _unwrapped(f"{label:<{self.LABEL}}", "bold")
        line.append_text(Text.from_markup(value))
        self.lines.append(line)

    def __rich__(self) -> Text:
        return _unwrapped("\n").join(self.lines)


def _unwrapped(text: str, style: str = "") -> Text:
    """Text that is not prose: printed whole on its line (print_summary prints uncropped),
    for the terminal to soft-wrap if it must."""
    return Text(text, style=style, no_wrap=True, overflow="ignore")


def _overview(doc: SummaryDocument, grid: _Rows) -> None:
    title = f"{escape(doc['target'] or 'records')}   {_load(doc)}"
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
    # A rate of requests that all failed before any was sent measures nothing: say so.
    rate = f"{doc['rate']:,.0f} req/s" if _responses(doc) else "no response"
    grid.add_row("time", f"{doc['duration_s']:.3f} s   {rate}")
    if _open_model(doc):
        target = f"target {doc['rate_target']:,.0f} req/s   " if doc["rate_target"] else ""
        grid.add_row(
            "open model",
            f"{target}schedule {doc['schedule_s']:,.3f} s   late {_bad(doc['late'])}",
        )
    status = "   ".join(f"{code}: {n:,}" for code, n in doc["status"].items()) or "-"
    grid.add_row("status", status)
    lat = doc["latency_ms"]
    if _responses(doc):
        grid.add_row(
            "latency ms", "  ".join(f"{k} {lat[k]:g}" for k in ("min", "p50", "p90", "p99"))
        )
        grid.add_row("", "  ".join(f"{k} {lat[k]:g}" for k in ("max", "mean")))
    else:  # no response: zeros would read as latencies measured
        grid.add_row("latency ms", "-")
    _histogram(doc, grid)
    if _open_model(doc):
        svc = doc["service_ms"]
        grid.add_row(
            "service ms",
            "  ".join(f"{k} {svc[k]:g}" for k in ("min", "p50", "p90", "p99", "max")),
        )


BAR = 40
"""The widest row's bar in the latency histogram, in characters."""


def _histogram(doc: SummaryDocument, grid: _Rows) -> None:
    """The latency histogram under the percentiles, as hey and oha print it: a row per
    bucket (its upper bound in ms and its count) with a bar scaled to the widest."""
    rows = doc.get("latency_histogram", [])
    if len(rows) < 2:
        return  # one bucket says nothing that min and max do not
    widest = max(int(n) for _, n in rows)
    digits, places = len(f"{widest:,}"), max(len(f"{upper:.3f}") for upper, _ in rows)
    for i, (upper, n) in enumerate(rows):
        bar = "■" * max(round(n / widest * BAR), 1 if n else 0)
        label = "histogram" if i == 0 else ""
        grid.add_row(label, f"≤ {upper:>{places}.3f} ms  {int(n):>{digits},}  {bar}")


def _open_model(doc: SummaryDocument) -> bool:
    return doc.get("schedule_s") is not None


def _load(doc: SummaryDocument) -> str:
    """What the run was asked to keep up: its concurrency, or in the open model the rate
    (a ramp's mean) or the records' own pace."""
    if not _open_model(doc):
        return f"concurrency {doc['concurrency']:,}"
    rate = doc["rate_target"]
    return f"rate {rate:,.0f} req/s" if rate else "at the records' pace"


def _responses(doc: SummaryDocument) -> int:
    return doc["requests"] - doc["errors"]


def _connections(doc: SummaryDocument, grid: _Rows) -> None:
    c = doc["connections"]
    grid.add_row(
        "connections",
        f"opened [bold]{c['opened']:,}[/]   peak open {c['peak_open']:,}   "
        f"requests per connection {figure(c['requests_per_connection'])}",
    )
    if not c["opened"]:
        reused = "no connection was opened"
    elif reusable(doc) or c["reused"]:
        reused = f"reused by {_count(c['reused'], 'request')} ({_percent(c['reuse_fraction'])})"
    else:
        reused = f"no request could reuse one ({_count(doc['requests'], 'request')}, {_slots(doc)})"
    grid.add_row("", reused)
    grid.add_row(
        "",
        f"closed by server {c['closed_by_server']:,}   undrained "
        f"{_bad(c['closed_undrained'])}   stale retries {c['retried_stale']:,}",
    )
    if c["connect_failed"]:
        grid.add_row("", f"failed to connect {_bad(c['connect_failed'])}")
    if c["closed"]:
        grid.add_row("", "closed: " + ", ".join(f"{k} {n:,}" for k, n in c["closed"].items()))
    for label, value in h2_rows(doc):
        grid.add_row(label, value)


def protocols(doc: SummaryDocument) -> str:
    """``h2 1,000 requests`` (``h2 990, http/1.1 10``): what carried the run's requests,
    or "" for a run all over HTTP/1.1 (or written before HTTP/2 was counted)."""
    carried = doc["connections"].get("protocol") or {}
    if set(carried) <= {"http/1.1"}:
        return ""
    return ", ".join(f"{name} {n:,}" for name, n in carried.items()) + " requests"


def h2_rows(doc: SummaryDocument) -> list[tuple[str, str]]:
    """The HTTP/2 ledger as labelled rows (the text summary's and the HTML page's), none
    for a run that spoke no HTTP/2."""
    h2 = doc["connections"].get("h2")
    if not h2:
        return []
    rows = [("protocol", protocols(doc))]
    rows.append(
        (
            "h2 streams",
            f"{h2['streams']:,} on {_count(h2['connections'], 'connection')} "
            f"({figure(h2['streams_per_connection'])} per connection), "
            f"peak {h2['peak_concurrent_streams']:,} at once",
        )
    )
    rows.append(
        (
            "",
            f"GOAWAY received {h2['goaway_received']:,}   refused streams retried "
            f"{h2['retried_refused']:,}   flow-control stalls {h2['flow_control_stalls']:,} "
            f"({h2['flow_control_stall_s']:.3f} s)",
        )
    )
    for label, resets in (("received", h2["rst_received"]), ("sent", h2["rst_sent"])):
        if resets:
            codes = ", ".join(f"{code} {n:,}" for code, n in resets.items())
            rows.append(("", f"RST_STREAM {label}: {codes}"))
    return rows


def h2_leak_sentence(doc: SummaryDocument) -> str:
    """What leak mode did to an HTTP/2 server, in one sentence ("" if it leaked nothing)."""
    h2 = doc["connections"].get("h2")
    if not h2 or not h2["leaked_streams"]:
        return ""
    said = (
        f"Leak mode over HTTP/2: {_count(h2['leaked_streams'], 'response')} answered at "
        f"their headers with bodies never read, and {h2['unread_bytes']:,} bytes never "
        "acknowledged: the flow-control windows were not given back, "
    )
    if not h2["stalled_streams"]:
        return said + "though no stream had stalled yet (a connection's window is 65,535 bytes)."
    return said + (
        f"so {_count(h2['stalled_streams'], 'stream')} stalled, the server unable to send "
        f"the rest of their bodies, over {_count(h2['connections'], 'connection')}."
    )


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


def _flow(doc: SummaryDocument, name: str, row: FlowRow) -> Table:
    """A flow's iterations, and each of its records' groups in flow order."""
    cut = f", {row['cut']:,} cut short" if row["cut"] else ""
    title = f"flow {name}: {row['completed']:,} iterations completed, {row['failed']:,} failed{cut}"
    table = Table(title=title, title_justify="left", box=None, padding=(0, 2))
    for column in ("record", "requests", "ok", "mismatches", "errors", "p50 ms", "p99 ms"):
        first = column == "record"
        table.add_column(column, justify="left" if first else "right", no_wrap=first)
    groups = {g["group"]: g for g in doc["groups"]}
    for step in row["steps"]:
        g = groups.get(step)
        if g is None:
            table.add_row(Text(step), *("0" * 4), "-", "-")
            continue
        lat = g["latency_ms"]
        cells = [step, f"{g['requests']:,}", f"{g['ok']:,}", f"{g['mismatches']:,}"]
        cells += [f"{g['errors']:,}", f"{lat['p50']:g}", f"{lat['p99']:g}"]
        table.add_row(*(Text(c) for c in cells))
    return table


def _request(doc: SummaryDocument, item: MismatchExample | ErrorExample) -> str:
    """``line 12  GET /path``: the URL without the run's target, which the header shows."""
    url = str(item["url"])
    target = (doc["target"] or "").rstrip("/")
    if target and url.startswith(target + "/"):
        url = url[len(target) :]
    return f"line {item['line']}  {item['method']} {url}"


def _mismatches(doc: SummaryDocument) -> Text:
    heading = f"mismatches: {_count(doc['mismatches'], 'response')}, by record and field\n"
    out = _unwrapped(heading, "bold")
    out.stylize("red", 0, len(heading))  # the heading only: the lines under it have theirs
    for m in doc["mismatch_examples"]:
        out.append(f"  {_request(doc, m)}  {m['field']}{times(m, '   ')}\n")
        out.append(f"      expected  {m['expected']}\n", style="green")
        out.append(f"      got       {m['got']}\n", style="red")
    out.append(_indented(omitted_sentence(doc.get("mismatch_examples_omitted"), "mismatches")))
    return out


def _errors(doc: SummaryDocument) -> Text:
    kinds = ", ".join(f"{k} {n:,}" for k, n in doc["error_kinds"].items())
    heading = f"errors: {_count(doc['errors'], 'request')} ({kinds}), by record and kind\n"
    out = _unwrapped(heading, "bold")
    out.stylize("red", 0, len(heading))  # the heading only: the lines under it have theirs
    for e in doc["error_examples"]:
        out.append(f"  {_request(doc, e)}{times(e, '   ')}\n")
        out.append(f"      {e['error']}\n", style="red")
    out.append(_indented(omitted_sentence(doc.get("error_examples_omitted"), "errors")))
    return out


def times(example: MismatchExample | ErrorExample, gap: str = " ") -> str:
    """``(7 times)`` after an example that happened more than once (it is listed once)."""
    n = example.get("count", 1)
    return f"{gap}({n:,} times)" if n > 1 else ""


def omitted_sentence(omitted: Omitted | None, what: str) -> str:
    """``and 12 other distinct mismatches, 40 times in all``: those past the ones listed
    (``or more`` past what the tally told apart), or "" when none were left out."""
    if not omitted or not omitted["count"]:
        return ""
    distinct = f"{omitted['distinct']:,}" + ("" if omitted["exact"] else " or more")
    return f"and {distinct} other distinct {what}, {_count(omitted['count'], 'time')} in all"


def _indented(line: str) -> str:
    return f"  {line}\n" if line else ""


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
    lines.append(Text(verdict(doc), style=_tone(doc, gate_failures)))
    return Text("\n").join(lines)


def _tone(doc: SummaryDocument, gate_failures: list[str]) -> str:
    """The closing sentence's colour: red when the run failed (a response, a request, a
    record, a worker, a gate or an output), yellow when it was cut short, sent nothing or
    did not reuse its connections, green when it is clean."""
    failed = [doc["mismatches"], doc["errors"], doc["input_errors"], gate_failures]
    if any(failed) or doc.get("lost_workers") or doc.get("unwritten"):
        return "bold red"
    if doc["interrupted"] or not doc["requests"] or not_reused(doc):
        return "bold yellow"
    return "bold green"


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
    """One plain sentence on how the run went: how it ended, whether its responses matched,
    and whether its connections were reused (said even when no gate asks: gates decide
    the exit status, this says what happened)."""
    n, c = doc["requests"], doc["connections"]
    if not n:
        return "No request was sent." + (
            f" {doc['input_errors']:,} record(s) could not be read." if doc["input_errors"] else ""
        )
    parts = [_interrupted(doc)] if doc["interrupted"] else []
    if not c["opened"] and c["connect_failed"]:
        parts.append(_unreachable(doc))
    else:
        parts += [_matched_sentence(doc), _carried(doc)]
    if unsent := doc["error_kinds"].get(Unsent.kind, 0):
        parts.append(
            f"{_count(unsent, 'request')} {'was' if unsent == 1 else 'were'} never sent: "
            "each waited for room in flight past --timeout from when it was due (the requests "
            "in flight were not answered in time)."
        )
    if leak := h2_leak_sentence(doc):
        parts.append(leak)
    if doc["input_errors"]:
        bad = doc["input_errors"]
        parts.append(f"{bad:,} record{' was' if bad == 1 else 's were'} skipped: see above.")
    return " ".join(parts)


def _interrupted(doc: SummaryDocument) -> str:
    by = doc.get("signal")
    return f"Interrupted{f' by {by}' if by else ''} after {doc['duration_s']:.3f} s."


def _matched_sentence(doc: SummaryDocument) -> str:
    n, mismatched, failed = doc["requests"], doc["mismatches"], doc["errors"]
    if not (mismatched or failed):
        return f"All {n:,} responses matched." if n > 1 else "The response matched."
    said = []
    if mismatched:
        said.append(f"{mismatched:,} of {_count(_responses(doc), 'response')} did not match")
    if failed:
        said.append(f"{failed:,} of {_count(n, 'request')} failed")
    sentence = " and ".join(said) + "."
    if any(m["expected"] == SUCCESS_TEXT for m in doc["mismatch_examples"]):
        sentence += (
            " A run of one URL expects a 2xx or 3xx status unless --expect-status says"
            " otherwise (--expect-status any takes any)."
        )
    return sentence


def _carried(doc: SummaryDocument) -> str:
    """``3 connections carried 300 requests (100 per connection)``, and when they were not
    reused, that and why: the ledger's reasons for closing them."""
    c = doc["connections"]
    n = doc["requests"] - doc["error_kinds"].get(Unsent.kind, 0)  # those never sent: none
    said = f"{_count(c['opened'], 'connection')} carried {_count(n, 'request')}"
    if c.get("h2"):
        said += " over " + "/".join(sorted(c.get("protocol", {}), reverse=True))
    per = c["requests_per_connection"] if n == doc["requests"] else n / max(c["opened"], 1)
    said += f" ({figure(per)} per connection)"
    if not_reused(doc):
        could = reusable(doc)
        how = (
            "they were not reused"
            if not c["reused"]
            else f"they were reused by only {c['reused']:,} of the {could:,} requests that could"
        )
        why = _close_reasons(doc)
        said += f": {how}" + (f" ({why})" if why else "")
    return said + "."


REUSED_AT_LEAST = 0.5
"""A run whose requests reused connections less often than this, of the times they could
have (:func:`reusable`), did not reuse its connections."""


def reusable(doc: SummaryDocument) -> int:
    """How many of the run's requests could have gone out on a connection already used: all
    but the first on each of the run's slots (its concurrency, or in the open model the
    most requests in flight at once), less those that never reached a connection. A run of
    one request per slot (a single request, ``-c 50`` with 50) has none: nothing to judge."""
    sent = doc["requests"] - doc["error_kinds"].get("connect", 0)
    return max(sent - _slot_count(doc), 0)


def not_reused(doc: SummaryDocument) -> bool:
    """The rule, written once: connections were not reused when the requests that could
    have reused one mostly did not (undrained bodies, keep-alive off, a server that closes,
    a leak: :func:`_close_reasons` says which)."""
    could = reusable(doc)
    return could > 0 and doc["connections"]["reused"] < could * REUSED_AT_LEAST


def _slot_count(doc: SummaryDocument) -> int:
    return max(doc["peak_inflight"] if _open_model(doc) else doc["concurrency"], 1)


def _slots(doc: SummaryDocument) -> str:
    if _open_model(doc):
        return f"at most {doc['peak_inflight']:,} in flight"
    return f"concurrency {doc['concurrency']:,}"


def _close_reasons(doc: SummaryDocument) -> str:
    """Why connections closed, from the ledger, the commonest first (the end of the run
    closing what was open is no reason)."""
    closed = sorted(doc["connections"]["closed"].items(), key=lambda kv: -kv[1])
    said = [
        f"{n:,} closed: {_reason_text(name)}"
        for name, n in closed
        if name != CloseReason.SHUTDOWN.key
    ]
    return "; ".join(said[:3])


def _reason_text(name: str) -> str:
    reason = CloseReason.of_key(name)
    return reason.text if reason is not None else name.replace("_", " ")


def _unreachable(doc: SummaryDocument) -> str:
    """No connection opened: to where, and what the failed connects said (their examples)."""
    peers: dict[str, str] = {}
    for e in doc["error_examples"]:
        if e["kind"] == "connect":
            peer = _peer(e["url"])
            peers.setdefault(peer, _connect_why(e["error"] or "", peer))
    shown = [f"{peer} ({why})" for peer, why in list(peers.items())[:3]]
    if len(peers) > 3:
        shown.append(f"{len(peers) - 3:,} more")
    to = f" to {', '.join(shown)}" if shown else ""
    return f"No connection could be opened{to}: {_count(doc['requests'], 'request')} failed."


def _peer(url: str) -> str:
    """``host:port`` of a URL, as a failed connect names it (never its user:password@)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _connect_why(error: str, peer: str) -> str:
    """A failed connect's reason without the peer it names, which is said once before it:
    ``Connection refused``, ``connect timed out``, ``TLS: certificate ...``."""
    return error.replace(f" to {peer}", "", 1).removeprefix("connect failed: ")


def figure(x: float) -> str:
    """A figure such as requests per connection: whole from 10 up, one decimal below it."""
    x = float(x)
    return f"{x:,.0f}" if x >= 10 or x.is_integer() else f"{x:.1f}"


def _percent(fraction: float) -> str:
    """``99.5%``, ``100%``: no zeros after the point."""
    return f"{fraction * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _bad(n: int) -> str:
    return f"[red]{n:,}[/]" if n else "0"


def quiet_lines(doc: SummaryDocument, gate_failures: list[str]) -> list[str]:
    """What ``-q`` prints, plain (one line each, never wrapped): the run in one line, then
    each lost worker, each failed gate and each output that could not be written. Pure."""
    lines = [one_line(doc, gate_failures)]
    lines += [_lost(worker).plain for worker in doc.get("lost_workers", [])]
    lines += [f"gate failed: {failure}" for failure in gate_failures]
    lines += [f"output failed: {sentence}" for sentence in doc.get("unwritten", [])]
    return lines


def one_line(doc: SummaryDocument, gate_failures: list[str]) -> str:
    """The run in one line: requests, whether they matched, the connections that carried
    them, p99 and rate; then a count of anything else its exit status is about. Pure."""
    n, c = doc["requests"], doc["connections"]
    parts = ["no request was sent"]
    if n:
        per = figure(c["requests_per_connection"])
        parts = [
            _count(n, "request"),
            _matched(doc),
            f"{_count(c['opened'], 'connection')} ({per} per connection)",
        ]
        if _responses(doc):
            parts += [f"p99 {doc['latency_ms']['p99']:g} ms", f"{doc['rate']:,.0f} req/s"]
        else:  # nothing measured: no latency nor rate to show
            parts.append("no response")
    line = ", ".join(parts + _also(doc, gate_failures))
    return f"{line}. {_unreachable(doc)}" if n and not c["opened"] else line


def _matched(doc: SummaryDocument) -> str:
    bad = [(doc["mismatches"], "mismatch"), (doc["errors"], "error")]
    return ", ".join(_count(n, word) for n, word in bad if n) or "all matched"


def _also(doc: SummaryDocument, gate_failures: list[str]) -> list[str]:
    """What else decides the exit status, counted (quiet_lines says each on its own)."""
    counted = [
        (doc["input_errors"], "record", "skipped"),
        (len(doc.get("lost_workers", [])), "worker", "lost"),
        (len(gate_failures), "gate", "failed"),
        (len(doc.get("unwritten", [])), "output", "not written"),
    ]
    found = [f"{_count(n, word)} {what}" for n, word, what in counted if n]
    if doc["interrupted"]:
        by = doc.get("signal")
        found.append(f"interrupted by {by}" if by else "interrupted")
    return found


def _count(n: int, word: str) -> str:
    """``1 request``, ``3,000 requests``, ``2 mismatches``."""
    plural = word + ("es" if word.endswith(("ch", "s")) else "s")
    return f"{n:,} {word if n == 1 else plural}"
