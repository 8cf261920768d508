"""Thresholds, as k6 has them: ``--threshold 'p99<250ms'``, ``'error_rate<0.1%'``,
``'reuse>99%'``. Each names a figure of the run, a comparison and a limit; the run fails
(exit 3) when any does not hold. Pure: a summary's figures in, verdicts out.

Figures:

- latency: ``p50``, ``p90``, ``p95``, ``p99``, ``p99.9`` (any ``pN``), ``min``, ``max``,
  ``mean``; limits in ``us``, ``ms`` (the default) or ``s``;
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

__all__ = ["Threshold", "evaluate", "failures", "parse_threshold", "shown"]

_EXPR = re.compile(r"\s*([a-z_]+|p\d+(?:\.\d+)?)\s*(<=|>=|<|>)\s*([\d.]+)\s*(us|ms|s|%)?\s*")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LATENCY = {"min", "max", "mean"}
_RATES = {"error_rate", "mismatch_rate", "failure_rate", "reuse"}
_COUNTS = {"connections", "requests_per_connection", "rps", "requests", "late"}
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}


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
        if unit == "%":
            raise InputError(f"--threshold {text!r}: a latency takes us, ms or s")
        return Threshold(text, figure, op, limit * _TO_MS[unit])
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
        "mismatch_rate": summary.mismatched / requests,
        "failure_rate": (summary.errors + summary.mismatched) / requests,
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
