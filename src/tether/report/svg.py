"""The report's charts drawn as inline SVG, with no script: the page when plotly is not
installed (``pip install 'tether[html]'`` gives the interactive one). Each chart has a legend
with colour keys, gridlines and ticks in its unit; series that may coincide are drawn one
over another, thinner and dashed (see :mod:`tether.report.charts`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from tether.report.charts import Axis, Chart, Series

__all__ = ["STYLE", "chart", "compact"]

W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 66, 16, 28, 62  # the bottom: ticks, the axis title, the legend
DASHES = {"solid": "", "dash": "9 5", "dot": "2 4", "dashdot": "9 4 2 4"}

STYLE = """
svg.chart { background: #fafafa; border: 1px solid #ddd; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #444; }
svg.chart line.grid { stroke: #e4e4e4; }
"""

Scale = Callable[[float], float]


def chart(spec: Chart) -> str:
    """One chart as an ``<svg class="chart">`` element."""
    out = [
        f'<svg class="chart" width="{W}" height="{H}" role="img" aria-label="{escape(spec.title)}">'
    ]
    out.append(f'<text x="{LEFT}" y="16" font-weight="bold">{escape(spec.title)}</text>')
    drawn = [s for s in spec.series if s.xs]
    if not drawn:
        out.append(f'<text x="{W / 2 - 30}" y="{H / 2}">no data</text></svg>')
        return "".join(out)
    px = _scale(spec.x, [x for s in drawn for x in s.xs], LEFT, W - RIGHT)
    py = _scale(spec.y, [0.0, *(y for s in drawn for y in s.ys)], H - BOTTOM, TOP)
    out += _grid(spec, drawn, px, py)
    out += [_line(s, px, py) for s in drawn]
    out += _legend(drawn)
    out.append("</svg>")
    return "".join(out)


def _scale(axis: Axis, values: list[float], start: float, end: float) -> Scale:
    """Data to pixels, from ``start`` (the lowest value) to ``end`` (the highest, with a
    tenth more room on a value axis)."""
    f: Callable[[float], float] = math.log10 if axis.log else float
    lo, hi = f(min(values)), f(max(values))
    if not axis.log and lo == 0 and hi > 0 and start > end:
        hi *= 1.1  # headroom above the top of a y axis
    span = hi - lo or 1.0
    return lambda v: start + (f(v) - lo) / span * (end - start)


def _grid(spec: Chart, drawn: list[Series], px: Scale, py: Scale) -> list[str]:
    xs = [x for s in drawn for x in s.xs]
    x_ticks = [t for t in spec.x.ticks if min(xs) <= t[0] <= max(xs)] or [
        (x, f"{compact(x)} {spec.x.unit}") for x in _steps(min(xs), max(xs))
    ]
    top = max(y for s in drawn for y in s.ys)
    y_ticks = [(y, f"{compact(y)} {spec.y.unit}".strip()) for y in _steps(0.0, top)]
    out = []
    for x, label in x_ticks:
        out.append(
            f'<line class="grid" x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{H - BOTTOM}"/>'
        )
        out.append(f'<text x="{px(x) - 12:.1f}" y="{H - BOTTOM + 14}">{escape(label)}</text>')
    for y, label in y_ticks:
        out.append(
            f'<line class="grid" x1="{LEFT}" y1="{py(y):.1f}" x2="{W - RIGHT}" y2="{py(y):.1f}"/>'
        )
        out.append(
            f'<text x="{LEFT - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    out.append(f'<text x="{W / 2 - 40}" y="{H - BOTTOM + 30}">{escape(_title(spec.x))}</text>')
    middle = (TOP + H - BOTTOM) / 2
    out.append(
        f'<text transform="translate(12 {middle}) rotate(-90)" text-anchor="middle">'
        f"{escape(_title(spec.y))}</text>"
    )
    return out


def _steps(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values from ``lo`` to ``hi`` (1, 2 or 5 times a power of ten apart)."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


def compact(value: float) -> str:
    """A tick's value as people read one: 12.5k, 1.2M, 0.25, 3."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _title(axis: Axis) -> str:
    return f"{axis.title} ({axis.unit})" if axis.unit else axis.title


def _line(series: Series, px: Scale, py: Scale) -> str:
    coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(series.xs, series.ys, strict=True))
    dash = DASHES.get(series.dash, "")
    return (
        f'<polyline fill="none" stroke="{series.colour}" stroke-width="{series.width}" '
        f'stroke-dasharray="{dash}" stroke-opacity="0.85" points="{coords}"/>'
    )


def _legend(drawn: list[Series]) -> list[str]:
    """A row under the chart: each series' colour and dash, then its name."""
    out, x, y = [], LEFT, H - 10
    for s in drawn:
        name = s.name[:40]
        dash = DASHES.get(s.dash, "")
        out.append(
            f'<line class="key" x1="{x}" y1="{y - 4}" x2="{x + 22}" y2="{y - 4}" '
            f'stroke="{s.colour}" stroke-width="{min(s.width, 4)}" stroke-dasharray="{dash}"/>'
        )
        out.append(f'<text x="{x + 28}" y="{y}">{escape(name)}</text>')
        x += 44 + 6 * len(name)
    return out
