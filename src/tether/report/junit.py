"""JUnit XML (``--junit PATH``): what CI systems show as tests. One testcase per record group
(``--junit-per-record``: per record), failed when a response did not match (``<failure>``,
with expected and got) or a request failed (``<error>``). Built with ElementTree, which
escapes every response-derived string.

A testcase's ``time`` is wall time: its share of the run's elapsed time, in proportion to the
time its requests took, so the cases add up to the suite's time (the run's elapsed). The
latencies themselves, which overlap when requests run concurrently and so add up to more than
the run lasted, are the case's ``<properties>``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from tether.document import SummaryDocument
from tether.model import Mismatch, Outcome
from tether.report.text import times
from tether.secrets import SECRET_HEADERS, masked

__all__ = ["PerRecord", "render"]


@dataclass(slots=True)
class _Case:
    name: str
    requests: int = 0
    latency_s: float = 0.0  # the requests' latencies added up: not wall time, they overlap
    latency_ms: dict[str, float] = field(default_factory=dict)  # figures such as mean, max
    mismatches: list[str] = field(default_factory=list)
    mismatched: int = 0
    errors: list[str] = field(default_factory=list)
    failed: int = 0


class PerRecord:
    """A run's sink keeping one testcase per record (memory grows with the records, not
    with the requests: a record sent many times is one case)."""

    def __init__(self, secret: frozenset[str] = SECRET_HEADERS) -> None:
        self.cases: dict[tuple[str, int], _Case] = {}
        self._secret = secret

    def __call__(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        rec = outcome.record
        case = self.cases.get((rec.source, rec.line))
        if case is None:
            name = f"{rec.where} {rec.method} {rec.url}"
            case = self.cases[(rec.source, rec.line)] = _Case(name)
        case.requests += 1
        case.latency_s += outcome.latency
        ms = case.latency_ms
        ms["mean"] = round(case.latency_s / case.requests * 1000, 3)
        ms["max"] = max(ms.get("max", 0.0), round(outcome.latency * 1000, 3))
        if outcome.error is not None:
            case.failed += 1
            if not case.errors:
                case.errors.append(outcome.error)
        elif mismatches:
            case.mismatched += 1
            if not case.mismatches:
                case.mismatches = [self._show(m) for m in mismatches]

    def _show(self, m: Mismatch) -> str:
        expected = masked(m.field, m.expected, self._secret)
        got = masked(m.field, m.got, self._secret)
        return f"{m.field}: expected {expected}, got {got}"


def render(doc: SummaryDocument, per_record: PerRecord | None = None) -> bytes:
    """The summary document (and, when kept, the per-record cases) as JUnit XML."""
    cases = list(per_record.cases.values()) if per_record else _group_cases(doc)
    suite = ET.Element(
        "testsuite",
        name=f"tether run {doc['target'] or ''}".strip(),
        tests=str(len(cases)),
        failures=str(sum(1 for c in cases if c.mismatched and not c.failed)),
        errors=str(sum(1 for c in cases if c.failed)),
        time=f"{doc['duration_s']:.3f}",
    )
    for case, seconds in zip(cases, _wall_shares(cases, doc["duration_s"]), strict=True):
        suite.append(_testcase(case, seconds))
    root = ET.Element("testsuites", name="tether")
    root.append(suite)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _wall_shares(cases: list[_Case], elapsed: float) -> list[float]:
    """Each case's share of the run's ``elapsed`` seconds, in proportion to its requests'
    summed latency: never more than the run lasted, and adding up to it (none when no time
    was measured at all)."""
    total = sum(case.latency_s for case in cases)
    return [elapsed * case.latency_s / total if total > 0 else 0.0 for case in cases]


def _group_cases(doc: SummaryDocument) -> list[_Case]:
    cases = []
    for g in doc["groups"]:
        # LatencyMs holds only floats: as a plain mapping, its figures become properties.
        latency_ms = dict(cast(Mapping[str, float], g["latency_ms"]))
        case = _Case(
            g["group"], g["requests"], latency_ms["mean"] * g["requests"] / 1000, latency_ms
        )
        case.mismatched, case.failed = g["mismatches"], g["errors"]
        case.mismatches = [
            f"line {m['line']} {m['method']} {m['url']}: {m['field']}: expected "
            f"{m['expected']}, got {m['got']}{times(m)}"
            for m in doc["mismatch_examples"]
            if m.get("group") == g["group"]
        ]
        case.errors = [
            f"line {e['line']} {e['method']} {e['url']}: {e['error']}{times(e)}"
            for e in doc["error_examples"]
            if e.get("group") == g["group"]
        ]
        cases.append(case)
    return cases


def _testcase(case: _Case, seconds: float) -> ET.Element:
    element = ET.Element("testcase", classname="tether", name=case.name, time=f"{seconds:.3f}")
    element.append(_properties(case))
    if case.failed:
        error = ET.SubElement(
            element, "error", message=f"{case.failed:,} of {case.requests:,} requests failed"
        )
        error.text = "\n".join(case.errors)
    elif case.mismatched:
        failure = ET.SubElement(
            element,
            "failure",
            message=f"{case.mismatched:,} of {case.requests:,} responses did not match",
            type="mismatch",
        )
        failure.text = "\n".join(case.mismatches)
    return element


def _properties(case: _Case) -> ET.Element:
    """The case's request count and latency figures (``latency_total_s``: the latencies added
    up, more than the case's wall time whenever its requests overlapped)."""
    properties = ET.Element("properties")
    named = [("requests", f"{case.requests}"), ("latency_total_s", f"{case.latency_s:.3f}")]
    named += [(f"latency_{key}_ms", f"{value:g}") for key, value in case.latency_ms.items()]
    for name, value in named:
        ET.SubElement(properties, "property", name=name, value=value)
    return properties
