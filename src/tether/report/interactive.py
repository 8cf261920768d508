"""The report's charts on plotly.js: legends with colour keys, titled axes with units and
readable ticks (12.5k, 1.2 ms), gridlines, a tooltip with every series' exact value at the
point under the mouse, zoom (drag; a double click goes back), and series that coincide told
apart (see :mod:`tether.report.charts`).

plotly.js is read from the installed ``plotly`` package (``pip install 'tether[html]'``,
which ships it for pages that work offline) and inlined: the page still fetches nothing.
Without the package the page falls back to inline SVG (:mod:`tether.report.svg`).

Two kinds of escaping, both here: every string that reaches a chart (a watched source's
name comes from the command line) is HTML-escaped first, since plotly.js reads a few tags
in its text (``<a href>``, ``<b>``) and shows entities as the characters they stand for;
the charts' data then goes into the page as JSON that cannot end its ``<script>`` element
(:func:`script_json`).
"""

from __future__ import annotations

import importlib.util
import json
from html import escape
from typing import Any

from tether.report.charts import Axis, Chart, Series

__all__ = ["available", "chart_divs", "library", "script_json"]

# Characters a JSON text may hold that would end a <script> element, start a comment in it
# (<!--), or end a line in older JavaScript (U+2028, U+2029); JSON.parse reads the \u
# escapes back as the characters they stand for.
SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
SCRIPT_UNSAFE |= {"\u2028": "\\u2028", "\u2029": "\\u2029"}

# A value in a tooltip as it was measured: grouped thousands, up to 12 significant digits
# (d3-format, which plotly.js formats with). Python's ",.12g" writes the same digits.
EXACT = ",.12~g"

CONFIG = {"displaylogo": False, "responsive": True, "typesetMath": False}

# Draws each chart from the JSON in #tether-charts: no string from the run is ever code.
DRAW = """
const charts = JSON.parse(document.getElementById("tether-charts").textContent);
for (const c of charts) Plotly.newPlot(c.key, c.data, c.layout, c.config);
"""


def available() -> bool:
    """Whether plotly (and so plotly.js) is installed."""
    return importlib.util.find_spec("plotly") is not None


def library() -> str:
    """plotly.js as a ``<script>`` element (about 4.8 MB)."""
    from plotly.offline import get_plotlyjs

    code: str = get_plotlyjs()
    if "</script" in code.lower():  # would end the element early: never inline it so
        raise ValueError("plotly.js holds '</script': it cannot be inlined")
    return f"<script>{code}</script>"


def chart_divs(charts: list[Chart]) -> str:
    """A ``<div>`` per chart, then the charts' data and the script that draws them."""
    divs = "".join(f'<div class="chart" id="{escape(c.key)}"></div>' for c in charts)
    data = script_json([_figure(c) for c in charts])
    return (
        f'<div class="plots">{divs}</div>'
        f'<script type="application/json" id="tether-charts">{data}</script>'
        f"<script>{DRAW}</script>"
    )


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element: it can neither end the
    element nor hold a character that ends a JavaScript line."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return "".join(SCRIPT_UNSAFE.get(char, char) for char in text)


def _figure(chart: Chart) -> dict[str, Any]:
    by_percentile = any(s.x_labels for s in chart.series)
    layout: dict[str, Any] = {
        "title": {"text": escape(chart.title), "x": 0.01, "font": {"size": 14}},
        "height": 330,
        "margin": {"l": 70, "r": 20, "t": 40, "b": 40},
        "xaxis": _axis(chart.x),
        "yaxis": {**_axis(chart.y), "rangemode": "tozero"},
        "showlegend": True,  # a chart of one series says what it is too
        "legend": {"orientation": "h", "x": 0, "y": -0.22, "yanchor": "top"},
        # One tooltip for every series at the time under the mouse: lines that coincide
        # show their values side by side.
        "hovermode": "closest" if by_percentile else "x unified",
        "plot_bgcolor": "#fafafa",
        "font": {"family": "system-ui, sans-serif", "size": 12},
    }
    if not chart.series:
        layout["annotations"] = [
            {"text": "no data", "showarrow": False, "xref": "paper", "yref": "paper"}
        ]
    data = [_trace(s, chart.y) for s in chart.series]
    return {"key": chart.key, "data": data, "layout": layout, "config": CONFIG}


def _axis(axis: Axis) -> dict[str, Any]:
    title = f"{axis.title} ({axis.unit})" if axis.unit else axis.title
    out: dict[str, Any] = {
        "title": {"text": escape(title)},
        "showgrid": True,
        "gridcolor": "#e2e2e2",
        "zeroline": False,
        "automargin": True,  # room for the ticks, whatever their length
        "hoverformat": EXACT,
    }
    if axis.unit:
        out["ticksuffix"] = f" {escape(axis.unit)}"
    if axis.log:
        out["type"] = "log"
    if axis.ticks:
        out["tickvals"] = [v for v, _ in axis.ticks]
        out["ticktext"] = [escape(label) for _, label in axis.ticks]
    return out


def _trace(series: Series, y: Axis) -> dict[str, Any]:
    unit = f" {escape(y.unit)}" if y.unit else ""
    trace: dict[str, Any] = {
        "type": "scatter",
        "mode": "lines+markers" if series.x_labels or len(series.xs) < 30 else "lines",
        "name": escape(series.name),
        "x": list(series.xs),
        "y": list(series.ys),
        "line": {"color": series.colour, "width": series.width, "dash": series.dash},
        "marker": {"size": 5},
        "hovertemplate": f"%{{y:{EXACT}}}{unit}",
    }
    if series.x_labels:
        trace["customdata"] = [escape(label) for label in series.x_labels]
        trace["hovertemplate"] = f"%{{customdata}}: %{{y:{EXACT}}}{unit}<extra></extra>"
    return trace
