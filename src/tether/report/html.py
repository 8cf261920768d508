"""The HTML report (``--html PATH``): one self-contained file, viewable with no network (plots
are inline SVG drawn here, no script, no font, no stylesheet fetched). Every string that came
from a response, a record or a server is escaped: a body may hold ``<script>``.

Plots: throughput, latency (p50 and p99) and status codes over time, connections open over time
(the client's, and each ``--watch`` source's), and the latency percentile distribution the way
HdrHistogram plots it. Tables: thresholds and gates, the connection ledger, groups,
mismatches and errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from tether.document import Omitted, SummaryDocument, TimelinePoint
from tether.report.text import h2_leak_sentence, h2_rows, omitted_sentence

__all__ = ["render"]

W, H, PAD = 640, 220, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
Series = tuple[str, Sequence[tuple[float, float]]]

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00; font-weight: bold; } .good { color: #070; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
svg.chart { background: #fafafa; border: 1px solid #ddd; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #444; }
code { background: #f3f3f3; padding: 0 .2em; }
"""


def render(doc: SummaryDocument) -> str:
    """The whole report as one HTML document."""
    parts = [_head(doc), _overview(doc), _plots(doc), _ledger(doc), _groups(doc)]
    parts += [_mismatches(doc), _errors(doc)]
    return "\n".join(p for p in parts if p) + "\n</body></html>\n"


def _head(doc: SummaryDocument) -> str:
    title = f"tether: {doc['target'] or 'records'}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
    )


def _overview(doc: SummaryDocument) -> str:
    lat = doc["latency_ms"]
    rows = [
        ("requests", f"{doc['requests']:,} (ok {doc['ok']:,})"),
        ("mismatches / errors", f"{doc['mismatches']:,} / {doc['errors']:,}"),
        ("time", f"{doc['duration_s']:.3f} s, {doc['rate']:,.0f} req/s"),
        ("concurrency", str(doc["concurrency"])),
        ("latency ms", "  ".join(f"{k} {lat[k]:g}" for k in ("min", "p50", "p90", "p99", "max"))),
    ]
    out = [_table(["", ""], [[escape(k), escape(v)] for k, v in rows], header=False)]
    for t in doc.get("thresholds", []):
        mark = '<span class="good">pass</span>' if t["ok"] else '<span class="bad">FAIL</span>'
        out.append(f"<p>threshold {mark} <code>{escape(t['threshold'])}</code></p>")
    for failure in doc.get("gate_failures", []):
        out.append(f'<p class="bad">gate failed: {escape(failure)}</p>')
    for sentence in doc.get("unwritten", []):
        out.append(f'<p class="bad">output failed: {escape(sentence)}</p>')
    watch = doc.get("watch")
    for sentence in watch["leak_verdicts"] if watch else []:
        out.append(f'<p class="bad">leak: {escape(sentence)}</p>')
    return "\n".join(out)


def _plots(doc: SummaryDocument) -> str:
    points = doc.get("timeline", [])
    charts = [
        _chart("throughput (req/s)", [("req/s", [(p["t"], p["rps"]) for p in points])]),
        _chart(
            "latency over time (ms)",
            [
                ("p50", [(p["t"], p["p50_ms"]) for p in points if p["p50_ms"] is not None]),
                ("p99", [(p["t"], p["p99_ms"]) for p in points if p["p99_ms"] is not None]),
            ],
        ),
        _chart("status codes (responses per point)", _status_series(points)),
        _chart("connections open", _open_series(doc, points)),
        _distribution(doc.get("latency_distribution", [])),
    ]
    return '<h2>over time</h2><div class="plots">' + "".join(charts) + "</div>"


def _status_series(points: list[TimelinePoint]) -> list[Series]:
    codes = sorted({code for p in points for code in p["status"]})
    return [(code, [(p["t"], p["status"].get(code, 0)) for p in points]) for code in codes]


def _open_series(doc: SummaryDocument, points: list[TimelinePoint]) -> list[Series]:
    series: list[Series] = [("tether", [(p["t"], p["open"]) for p in points])]
    watch = doc.get("watch")
    for source in watch["sources"] if watch else []:
        s = source["series"]
        for name in ("open", "active", "serving", "value"):
            if name in s:
                both = zip(s["seconds"], s[name], strict=True)
                # A second is never None; the type is the figures' series' (one dict).
                pairs = [(x, y) for x, y in both if x is not None and y is not None]
                series.append((f"{source['source']} {name}", pairs))
                break
    return series


def _distribution(rows: list[list[float]]) -> str:
    # HdrHistogram's plot: x is 1 / (1 - percentile), on a log scale, so the tail gets room.
    pairs = [(math.log10(1 / (1 - min(q, 99.9999) / 100)), ms) for q, ms in rows]
    labels = [(math.log10(1 / (1 - q / 100)), f"{q:g}%") for q in (50, 90, 99, 99.9, 99.99)]
    return _chart("latency by percentile (ms)", [("latency", pairs)], x_labels=labels)


def _chart(
    title: str, series: list[Series], x_labels: list[tuple[float, str]] | None = None
) -> str:
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    out = [f'<svg class="chart" width="{W}" height="{H}" role="img" aria-label="{escape(title)}">']
    out.append(f'<text x="{PAD}" y="16">{escape(title)}</text>')
    if not xs:
        out.append(f'<text x="{W / 2 - 30}" y="{H / 2}">no data</text></svg>')
        return "".join(out)
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y1 = max(ys) * 1.1 if max(ys) > 0 else 1.0

    def px(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (W - 2 * PAD)

    def py(y: float) -> float:
        return H - PAD + 10 - y / y1 * (H - 2 * PAD)

    out.append(_axes(x0, x1, y1, px, py, x_labels))
    for i, (name, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>'
        )
        label = escape(name[:40])
        out.append(f'<text x="{W - PAD - 150}" y="{30 + 14 * i}" fill="{colour}">{label}</text>')
    out.append("</svg>")
    return "".join(out)


def _axes(
    x0: float,
    x1: float,
    y1: float,
    px: Any,
    py: Any,
    x_labels: list[tuple[float, str]] | None,
) -> str:
    bottom, left = py(0), px(x0)
    out = [
        f'<line x1="{left}" y1="{bottom}" x2="{px(x1)}" y2="{bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{bottom}" x2="{left}" y2="{py(y1)}" stroke="#999"/>',
        f'<text x="4" y="{py(y1) + 4:.1f}">{y1:,.4g}</text>',
        f'<text x="4" y="{bottom:.1f}">0</text>',
    ]
    labels = x_labels or [(x0, f"{x0:g}s"), (x1, f"{x1:g}s")]
    for x, label in labels:
        if x0 <= x <= x1:
            out.append(f'<text x="{px(x) - 12:.1f}" y="{bottom + 16:.1f}">{escape(label)}</text>')
    return "".join(out)


def _ledger(doc: SummaryDocument) -> str:
    c = doc["connections"]
    rows = [
        ["opened", c["opened"]],
        ["reused by requests", c["reused"]],
        ["requests per connection", c["requests_per_connection"]],
        ["peak open", c["peak_open"]],
        ["closed by server", c["closed_by_server"]],
        ["closed undrained", c["closed_undrained"]],
        ["stale retries", c["retried_stale"]],
        ["failed to connect", c["connect_failed"]],
        *[[f"closed: {reason}", n] for reason, n in c["closed"].items()],
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
