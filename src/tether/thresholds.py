"""Thresholds, as k6 has them: ``--threshold 'p99<250ms'``, ``'error_rate<0.1%'``,
``'reuse>99%'``. Each names a figure of the run, a comparison and a limit; the run fails
(exit 3) when any does not hold. Pure: a summary's figures in, verdicts out.

Figures:

- latency: ``p50``, ``p90``, ``p95``, ``p99``, ``p99.9`` (any ``pN``), ``min``, ``max``,
  ``mean``; limits in ``us``, ``ms`` (the default) or ``s`` (``m`` and ``h`` too: read by
  :func:`parse_duration`, the one reader of a time on the command line);
- rates of requests: ``error_rate``, ``mismatch_rate``, ``failure_rate`` (errors and
  mismatches), ``reuse`` (on an already-used connection); limits as ``0.1%`` or ``0.001``;
- counts: ``connections`` (opened), ``requests_per_connection``, ``rps``, ``requests``,
  ``late``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from tether.document import ThresholdResult
from tether.errors import InputError
from tether.gates import NOTHING
from tether.metrics.summary import Summary

__all__ = ["Threshold", "evaluate", "failures", "parse_duration", "parse_threshold", "shown"]

_EXPR = re.compile(r"\s*([a-z_]+|p\d+(?:\.\d+)?)\s*(<=|>=|<|>)\s*([\d.]+)\s*([a-z]+|%)?\s*")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LATENCY = {"min", "max", "mean"}
_RATES = {"error_rate", "mismatch_rate", "failure_rate", "reuse"}
_COUNTS = {"connections", "requests_per_connection", "rps", "requests", "late"}

# A duration's units in microseconds, as Go's time.ParseDuration has them (but ns: no run
# measures below a microsecond). Whole numbers, so that 800us is 0.8 ms exactly.
_MICROS_IN = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_TERM = re.compile(rf"({_NUMBER})(us|ms|s|m|h)")  # "ms" before "m": 5ms is not 5m and an s
_DURATION = re.compile(rf"(?:{_TERM.pattern})+")


def parse_duration(text: str, unit: str = "s") -> float:
    """``text``, a duration as Go's time.ParseDuration writes one (``10s``, ``500ms``,
    ``1.5s``, ``1m30s``, ``2h``, ``100us``), in ``unit``; a number alone is in ``unit``
    already (seconds for an option, as it always was; ms for a latency threshold). A sign
    is read as Go reads it (``-1s`` is negative: the caller says whether that will do).
    Pure; ValueError for anything else (``10x``, ``1.2.3s``, ``10 s``)."""
    text = text.strip()
    sign = -1.0 if text[:1] == "-" else 1.0
    if text[:1] in ("+", "-"):
        text = text[1:]
    if re.fullmatch(_NUMBER, text):
        return sign * float(text)
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration")
    micros = sum(float(n) * _MICROS_IN[u] for n, u in _TERM.findall(text))
    return sign * micros / _MICROS_IN[unit]


@dataclass(frozen=True, slots=True)
class Threshold:
    """``figure op limit``, the limit in the figure's own unit (ms, a fraction, a count)."""

    text: str
    figure: str
    op: str
    limit: float


def parse_threshold(text: str) -> Threshold:
    """A threshold from its text; InputError saying what is wrong."""
    found = _EXPR.fullmatch(text)
    if found is None:
        raise InputError(f"--threshold {text!r}: write it as FIGURE<LIMIT, like p99<250ms")
    figure, op, number, unit = found.groups()
    try:
        limit = float(number)
    except ValueError:
        raise InputError(f"--threshold {text!r}: {number!r} is not a number") from None
    if _is_latency(figure):
        if unit is not None and unit not in _MICROS_IN:
            raise InputError(f"--threshold {text!r}: a latency takes us, ms or s")
        return Threshold(text, figure, op, parse_duration(number + (unit or ""), "ms"))
    if figure in _RATES:
        if unit not in (None, "%"):
            raise InputError(f"--threshold {text!r}: a rate takes a percentage or a fraction")
        return Threshold(text, figure, op, limit / 100 if unit == "%" else limit)
    if figure in _COUNTS and unit is None:
        return Threshold(text, figure, op, limit)
    known = "pN, min, max, mean, " + ", ".join(sorted(_RATES | _COUNTS))
    raise InputError(f"--threshold {text!r}: unknown figure or unit; figures are {known}")


def _is_latency(figure: str) -> bool:
    return figure in _LATENCY or (figure.startswith("p") and figure[1:2].isdigit())


def evaluate(thresholds: list[Threshold], summary: Summary) -> list[ThresholdResult]:
    """Each threshold with the run's figure and whether it held. Over no requests at all
    nothing holds: a gate that judged nothing must not pass (an empty records file would
    make every latency 0 and every rate 0)."""
    results: list[ThresholdResult] = []
    for t in thresholds:
        value = figure(t.figure, summary)
        results.append(
            {
                "threshold": t.text,
                "value": round(value, 6),
                "unit": _unit(t.figure),
                "ok": bool(summary.requests) and _OPS[t.op](value, t.limit),
            }
        )
    return results


def figure(name: str, summary: Summary) -> float:
    """The run's value of a threshold's figure."""
    summary.flush()
    requests = summary.requests or 1
    if _is_latency(name):
        lat = summary.latency
        if not lat.count:
            return 0.0
        micros = {"min": lat.min, "max": lat.max, "mean": lat.mean}.get(name)
        return (micros if micros is not None else lat.percentile(float(name[1:]))) / 1000
    opened = summary.ledger.opened
    return {
        "error_rate": summary.errors / requests,
        "mismatch_rate": summary.mismatches / requests,
        "failure_rate": (summary.errors + summary.mismatches) / requests,
        "reuse": summary.reused / requests,
        "connections": float(opened),
        "requests_per_connection": summary.requests / opened if opened else 0.0,
        "rps": summary.requests / summary.duration if summary.duration > 0 else 0.0,
        "requests": float(summary.requests),
        "late": float(summary.late),
    }[name]


def _unit(name: str) -> str:
    if _is_latency(name):
        return "ms"
    return "fraction" if name in _RATES else "count"


def failures(results: list[ThresholdResult], requests: int) -> list[str]:
    """A sentence per threshold that did not hold (over ``requests`` requests)."""
    return [
        f"threshold {r['threshold']} failed: "
        + (f"the run's value was {shown(r)}" if requests else NOTHING)
        for r in results
        if not r["ok"]
    ]


def shown(result: ThresholdResult) -> str:
    """A result's value, in its unit."""
    value = result["value"]
    if result["unit"] == "ms":
        return f"{value:g} ms"
    if result["unit"] == "fraction":
        return f"{value:.3%}"
    return f"{value:,.6g}"
