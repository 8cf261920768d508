"""Watch source ``prom:URL#name``: one metric from a Prometheus text exposition, such as::

    # HELP http_open_connections Connections being served.
    # TYPE http_open_connections gauge
    http_open_connections{listener="main"} 3
    http_open_connections{listener="admin"} 1

Samples of the metric with any labels are added up (3 + 1 = 4 here).
"""

from __future__ import annotations

import math

__all__ = ["parse"]


def parse(text: str, name: str) -> tuple[float, str]:
    """The metric's value (summed over its labels) and its declared type ("untyped" when
    none is declared); ValueError when the text has no sample of it."""
    kind = "untyped"
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4 and parts[2] == name:
                kind = parts[3]
            continue
        if not line or line.startswith("#"):
            continue
        metric, value = _sample(line)
        if metric == name and not math.isnan(value):
            total += value
            found = True
    if not found:
        raise ValueError(f"no sample of metric {name!r}")
    return total, kind


def _sample(line: str) -> tuple[str, float]:
    # name{labels} value [timestamp]; label values may hold spaces and braces, so the value is
    # found after the closing brace of the label set, not by splitting the line.
    brace = line.find("{")
    if brace >= 0:
        name, rest = line[:brace], line[line.rfind("}") + 1 :]
    else:
        name, _, rest = line.partition(" ")
    fields = rest.split()
    try:
        return name.strip(), float(fields[0])
    except (IndexError, ValueError):
        return "", math.nan
