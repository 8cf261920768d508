"""The HTML report's charts as plain data: which series each chart shows, its axes' titles
and units, and how series that may coincide are told apart. Pure: both ways of drawing the
page (:mod:`tether.report.interactive`, on plotly.js, and :mod:`tether.report.svg`, the
fallback) draw these, so what a chart shows is decided once, here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tether.document import SummaryDocument, TimelinePoint

__all__ = ["COLOURS", "Axis", "Chart", "Series", "charts"]

# category10: told apart on screen and by most colour-blind readers.
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")

# A series drawn over another with the same values hides it. In a chart whose series may
# coincide (tether's connections and a watched server's, which agree when nothing leaks),
# each series is drawn thinner and dashed over the one before: both stay visible.
LAYERED = (("solid", 7.0), ("dash", 3.0), ("dot", 2.5), ("dashdot", 2.0))
PLAIN = ("solid", 2.0)

# HdrHistogram's percentile axis: 1 / (1 - q) on a log scale gives the tail room.
TOP_Q = 99.9999  # the maximum (100%) is drawn here: 1 / (1 - 1) has no place on the axis


def _at(q: float) -> float:
    """Where percentile ``q`` lies on the percentile axis."""
    return 1 / (1 - min(q, TOP_Q) / 100)


_LABELLED: tuple[tuple[float, str], ...] = (
    (0, "0%"), (50, "50%"), (90, "90%"), (99, "99%"),
    (99.9, "99.9%"), (99.99, "99.99%"), (99.999, "99.999%"), (TOP_Q, "max"),
)  # fmt: skip
PERCENTILE_TICKS = tuple((_at(q), label) for q, label in _LABELLED)


@dataclass(frozen=True, slots=True)
class Axis:
    """An axis: its title, the unit its values are in (shown after each tick and value),
    whether it is logarithmic, and fixed ticks (value, label) where the values are not
    what a reader should read (the percentile axis)."""

    title: str
    unit: str = ""
    log: bool = False
    ticks: tuple[tuple[float, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its name (from outside for a watched source: escape it), its points, how it
    is drawn, and for each point the x as a reader should read it, where the x value is not
    that (``x_labels``: a percentile's name)."""

    name: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    colour: str
    dash: str = PLAIN[0]
    width: float = PLAIN[1]
    x_labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: ``key`` names it in the page (an element id), ``title`` for the reader."""

    key: str
    title: str
    x: Axis
    y: Axis
    series: tuple[Series, ...]


TIME = Axis("time since the start", "s")


def charts(doc: SummaryDocument) -> list[Chart]:
    """The report's charts, in the page's order."""
    points = doc.get("timeline", [])
    return [
        Chart(
            "throughput",
            "throughput",
            TIME,
            Axis("requests per second"),
            _lines([("requests/s", _xy(points, lambda p: p["rps"]))]),
        ),
        Chart(
            "latency",
            "latency over time",
            TIME,
            Axis("latency", "ms"),
            _lines(
                [
                    ("p50", _xy(points, lambda p: p["p50_ms"])),
                    ("p99", _xy(points, lambda p: p["p99_ms"])),
                ]
            ),
        ),
        Chart(
            "status",
            "responses by status code",
            TIME,
            Axis("responses per second"),
            _lines(_status(points)),
        ),
        Chart(
            "connections",
            "connections open",
            TIME,
            Axis("connections open"),
            _lines(_open(doc, points), layered=True),
        ),
        _distribution(doc.get("latency_distribution", [])),
    ]


Pairs = list[tuple[float, float]]


def _xy(points: list[TimelinePoint], value: Callable[[TimelinePoint], float | None]) -> Pairs:
    # A second with no response has no percentile: no point, rather than a false 0.
    return [(p["t"], float(v)) for p in points if (v := value(p)) is not None]


def _lines(named: list[tuple[str, Pairs]], layered: bool = False) -> tuple[Series, ...]:
    out = []
    for i, (name, pairs) in enumerate(named):
        dash, width = LAYERED[min(i, len(LAYERED) - 1)] if layered else PLAIN
        xs, ys = tuple(x for x, _ in pairs), tuple(y for _, y in pairs)
        out.append(Series(name, xs, ys, COLOURS[i % len(COLOURS)], dash, width))
    return tuple(out)


def _status(points: list[TimelinePoint]) -> list[tuple[str, Pairs]]:
    """Each status code's responses per second: a point is about a second, and longer once
    a long run's points are merged (see tether.metrics.timeline), so its counts are taken
    over its own length, as its ``rps`` is."""
    codes = sorted({code for p in points for code in p["status"]})
    return [(code, [(p["t"], _per_second(p, code)) for p in points]) for code in codes]


def _per_second(point: TimelinePoint, code: str) -> float:
    n = point["status"].get(code, 0)
    return round(n * point["rps"] / point["requests"], 1) if point["requests"] else 0.0


def _open(doc: SummaryDocument, points: list[TimelinePoint]) -> list[tuple[str, Pairs]]:
    """tether's connections open, and each watched source's first figure of open
    connections (its own count of them, where it has one)."""
    named: list[tuple[str, Pairs]] = [("tether", [(p["t"], float(p["open"])) for p in points])]
    watch = doc.get("watch")
    for source in watch["sources"] if watch else []:
        s = source["series"]
        for figure in ("open", "active", "serving", "value"):
            if figure in s:
                both = zip(s["seconds"], s[figure], strict=True)
                # A second is never None; the type is the figures' series' (one dict).
                pairs = [(x, y) for x, y in both if x is not None and y is not None]
                named.append((f"{source['source']} {figure}", pairs))
                break
    return named


def _distribution(rows: list[list[float]]) -> Chart:
    series = Series(
        "latency",
        tuple(_at(q) for q, _ in rows),
        tuple(ms for _, ms in rows),
        COLOURS[0],
        x_labels=tuple(_percentile(q) for q, _ in rows),
    )
    return Chart(
        "percentiles",
        "latency by percentile",
        Axis("percentile", log=True, ticks=PERCENTILE_TICKS),
        Axis("latency", "ms"),
        (series,) if rows else (),
    )


def _percentile(q: float) -> str:
    return "max" if q >= 100 else "min" if q <= 0 else f"p{q:g}"
