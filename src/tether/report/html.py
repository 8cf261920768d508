"""The HTML report (``--html PATH``): one self-contained file, viewable with no network
(nothing is fetched: no script, font or stylesheet). Every string that came from a response,
a record, a server or the command line is escaped: a body may hold ``<script>``.

At the top, how the run went (its thresholds and gates, pass or fail), then what ran: when,
which tether, the command line (secrets masked), the target, the load model and the engine.
Then the charts (:mod:`tether.report.charts`): throughput, latency (p50 and p99) and status
codes over time, connections open over time (the client's, and each ``--watch`` source's),
and the latency percentile distribution as HdrHistogram plots it; drawn with plotly.js
where the ``plotly`` package is installed (:mod:`tether.report.interactive`: tooltips,
zoom), else as inline SVG (:mod:`tether.report.svg`). Then tables: the connection ledger,
groups, mismatches and errors.
"""

from __future__ import annotations

import shlex
from html import escape
from typing import Any

from tether.document import LoadModel, Omitted, SummaryDocument
from tether.report import charts, interactive, svg
from tether.report.text import figure, h2_leak_sentence, h2_rows, omitted_sentence, verdict
from tether.secrets import mask_url
from tether.thresholds import shown
from tether.version import tether_version

__all__ = ["describe_model", "render"]

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00; font-weight: bold; } .good { color: #070; }
p.verdict { font-size: 1.1em; padding: .4em .7em; border-left: 4px solid; }
p.verdict.good { border-color: #070; } p.verdict.bad { border-color: #b00; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
div.chart { width: 660px; height: 330px; border: 1px solid #ddd; }
code { background: #f3f3f3; padding: 0 .2em; }
code.command { display: block; white-space: pre-wrap; word-break: break-all; padding: .3em; }
"""

NO_PLOTLY = (
    "Charts drawn without plotly: pip install 'tether[html]' for tooltips with exact "
    "values and zoom."
)


def render(doc: SummaryDocument, interactive_charts: bool | None = None) -> str:
    """The whole report as one HTML document; its charts on plotly.js when
    ``interactive_charts`` (by default: when plotly is installed), else inline SVG."""
    use_plotly = interactive.available() if interactive_charts is None else interactive_charts
    parts = [_head(doc, use_plotly), _outcome(doc), _what_ran(doc), _figures(doc)]
    parts += [_plots(doc, use_plotly), _ledger(doc), _groups(doc)]
    parts += [_mismatches(doc), _errors(doc)]
    return "\n".join(p for p in parts if p) + "\n</body></html>\n"


def _head(doc: SummaryDocument, use_plotly: bool) -> str:
    title = f"tether: {mask_url(doc['target'] or 'records')}"
    style = STYLE if use_plotly else STYLE + svg.STYLE
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{style}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
    )


def _outcome(doc: SummaryDocument) -> str:
    """How the run went, first: the one-sentence verdict, then each threshold and gate that
    judged it, pass or fail."""
    failed = _failed(doc)
    out = [f'<p class="verdict {"bad" if failed else "good"}">{escape(verdict(doc))}</p>']
    results = doc.get("thresholds", [])
    if results:
        rows = [
            [
                f"<code>{escape(t['threshold'])}</code>",
                escape(shown(t)),
                '<span class="good">pass</span>' if t["ok"] else '<span class="bad">FAIL</span>',
            ]
            for t in results
        ]
        out.append(_table(["threshold", "value", "result"], rows))
    for failure in doc.get("gate_failures", []):
        out.append(f'<p class="bad">gate failed: {escape(failure)}</p>')
    for sentence in doc.get("unwritten", []):
        out.append(f'<p class="bad">output failed: {escape(sentence)}</p>')
    watch = doc.get("watch")
    for sentence in watch["leak_verdicts"] if watch else []:
        out.append(f'<p class="bad">leak: {escape(sentence)}</p>')
    return "\n".join(out)


def _failed(doc: SummaryDocument) -> bool:
    """Whether the verdict is shown as a failure: anything on the page that says the run is
    not green (what the exit status says too)."""
    keys = ("mismatches", "errors", "interrupted", "input_errors", "partial")
    return any(doc.get(key) for key in keys) or bool(
        doc.get("gate_failures") or doc.get("unwritten")
    )


def _what_ran(doc: SummaryDocument) -> str:
    """When, which tether, the command line, the target, the load model and the engine. A
    summary rebuilt from results files has no record of some of these: it says so."""
    command = doc.get("command")
    version = doc.get("tether_version")
    rows = [
        ("started", escape(doc.get("started_at", "not recorded").replace("T", " "))),
        ("time", escape(f"{doc['duration_s']:.3f} s")),
        (
            "tether",
            escape(version or f"not recorded (this page by tether {tether_version()})"),
        ),
        (
            "command",
            f'<code class="command">{escape(shlex.join(command))}</code>'
            if command
            else "not recorded",
        ),
        ("target", escape(mask_url(doc["target"] or "(each record's own URL)"))),
        ("load", escape(describe_model(doc))),
        ("engine", escape(doc.get("engine", "python"))),
    ]
    return "<h2>what ran</h2>" + _table(["", ""], [[k, v] for k, v in rows], header=False)


def describe_model(doc: SummaryDocument) -> str:
    """The run's load in words: the document's ``model``, or for a document without one (a
    summary rebuilt from results files) what its other keys tell."""
    model = doc.get("model") or _model_from_figures(doc)
    kind = model["kind"]
    if kind == "concurrency":
        return f"closed model: concurrency {model.get('concurrency', 1):,}"
    if kind == "rate":
        load = f"rate {model.get('rate', 0):,.6g} req/s"
    elif kind == "ramp":
        load = (
            f"ramp {model.get('rate', 0):,.6g} to {model.get('rate_to', 0):,.6g} req/s "
            f"over {model.get('ramp_s', 0):g} s"
        )
    else:
        factor = model.get("pace")
        load = "the records' own pace" + (f", {factor:g} times faster" if factor else "")
    inflight = model.get("max_inflight")
    return f"open model: {load}" + (f", at most {inflight:,} in flight" if inflight else "")


def _model_from_figures(doc: SummaryDocument) -> LoadModel:
    if doc.get("schedule_s") is None:
        return {"kind": "concurrency", "concurrency": doc["concurrency"]}
    rate = doc.get("rate_target")
    return {"kind": "rate", "rate": rate} if rate else {"kind": "pace"}


def _figures(doc: SummaryDocument) -> str:
    lat = doc["latency_ms"]
    rows = [
        ("requests", f"{doc['requests']:,} (ok {doc['ok']:,})"),
        ("mismatches / errors", f"{doc['mismatches']:,} / {doc['errors']:,}"),
        ("rate", f"{doc['rate']:,.0f} req/s"),
        ("latency ms", "  ".join(f"{k} {lat[k]:g}" for k in ("min", "p50", "p90", "p99", "max"))),
    ]
    body = [[escape(k), escape(v)] for k, v in rows]
    return "<h2>figures</h2>" + _table(["", ""], body, header=False)


def _plots(doc: SummaryDocument, use_plotly: bool) -> str:
    specs = charts.charts(doc)
    if use_plotly:
        try:
            library = interactive.library()
        except (ImportError, ValueError):  # a plotly that cannot give its plotly.js whole
            use_plotly = False
    if not use_plotly:
        drawn = "".join(svg.chart(spec) for spec in specs)
        return f'<h2>over time</h2><p>{escape(NO_PLOTLY)}</p><div class="plots">{drawn}</div>'
    hint = "Drag to zoom, double-click to go back; click a legend entry to hide its line."
    return f"<h2>over time</h2><p>{hint}</p>{library}{interactive.chart_divs(specs)}"


def _ledger(doc: SummaryDocument) -> str:
    c = doc["connections"]
    rows: list[tuple[str, int | str]] = [
        ("opened", c["opened"]),
        ("reused by requests", c["reused"]),
        ("requests per connection", figure(c["requests_per_connection"])),
        ("peak open", c["peak_open"]),
        ("closed by server", c["closed_by_server"]),
        ("closed undrained", c["closed_undrained"]),
        ("stale retries", c["retried_stale"]),
        ("failed to connect", c["connect_failed"]),
        *[(f"closed: {reason}", n) for reason, n in c["closed"].items()],
    ]
    body = [[escape(str(k)), _num(v)] for k, v in rows]
    body += [[escape(label), f"<td>{escape(text)}</td>"] for label, text in h2_rows(doc)]
    leak = h2_leak_sentence(doc)
    said = f'<p class="bad">{escape(leak)}</p>' if leak else ""
    return "<h2>connections</h2>" + _table(["", ""], body, header=False) + said


def _groups(doc: SummaryDocument) -> str:
    head = ["group", "requests", "ok", "mismatches", "errors", "p50 ms", "p99 ms"]
    body = [
        [
            escape(g["group"]),
            *(_num(g[k]) for k in ("requests", "ok", "mismatches", "errors")),
            _num(g["latency_ms"]["p50"]),
            _num(g["latency_ms"]["p99"]),
        ]
        for g in doc["groups"]
    ]
    return "<h2>groups</h2>" + _table(head, body)


def _mismatches(doc: SummaryDocument) -> str:
    if not doc["mismatch_examples"]:
        return ""
    head = ["line", "request", "field", "times", "expected (first)", "got (first)"]
    body = [
        [
            _num(m["line"]),
            escape(f"{m['method']} {m['url']}"),
            escape(m["field"]),
            _num(m.get("count", 1)),
            escape(str(m["expected"])),
            escape(str(m["got"])),
        ]
        for m in doc["mismatch_examples"]
    ]
    heading = f"<h2>mismatches ({doc['mismatches']:,}), by record and field</h2>"
    return (
        heading + _table(head, body) + _omitted(doc.get("mismatch_examples_omitted"), "mismatches")
    )


def _errors(doc: SummaryDocument) -> str:
    if not doc["error_examples"]:
        return ""
    head = ["line", "request", "kind", "times", "error (first)"]
    body = [
        [
            _num(e["line"]),
            escape(f"{e['method']} {e['url']}"),
            escape(str(e["kind"] or "")),
            _num(e.get("count", 1)),
            escape(str(e["error"])),
        ]
        for e in doc["error_examples"]
    ]
    heading = f"<h2>errors ({doc['errors']:,}), by record and kind</h2>"
    return heading + _table(head, body) + _omitted(doc.get("error_examples_omitted"), "errors")


def _omitted(omitted: Omitted | None, what: str) -> str:
    sentence = omitted_sentence(omitted, what)
    return f"<p>{escape(sentence)}</p>" if sentence else ""


def _num(value: Any) -> str:
    if isinstance(value, str):  # already written as a figure
        return f'<td class="n">{escape(value)}</td>'
    text = f"{value:,}" if isinstance(value, int) else f"{value:g}" if value is not None else "-"
    return f'<td class="n">{text}</td>'


def _table(head: list[str], rows: list[list[str]], header: bool = True) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        cells = [cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)
