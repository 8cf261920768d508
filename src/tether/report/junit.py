"""JUnit XML (``--junit PATH``): what CI systems show as tests. One testcase per record group
(``--junit-per-record``: per record), failed when a response did not match (``<failure>``,
with expected and got) or a request failed (``<error>``). Built with ElementTree, which
escapes every response-derived string."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from tether.document import SummaryDocument
from tether.model import Mismatch, Outcome
from tether.secrets import SECRET_HEADERS, masked

__all__ = ["PerRecord", "render"]


@dataclass(slots=True)
class _Case:
    name: str
    requests: int = 0
    seconds: float = 0.0
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
        case.seconds += outcome.latency
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
    for case in cases:
        suite.append(_testcase(case))
    root = ET.Element("testsuites", name="tether")
    root.append(suite)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _group_cases(doc: SummaryDocument) -> list[_Case]:
    cases = []
    for g in doc["groups"]:
        case = _Case(g["group"], g["requests"], g["latency_ms"]["mean"] * g["requests"] / 1000)
        case.mismatched, case.failed = g["mismatches"], g["errors"]
        case.mismatches = [
            f"line {m['line']} {m['method']} {m['url']}: {m['field']}: expected "
            f"{m['expected']}, got {m['got']}"
            for m in doc["mismatch_examples"]
            if m.get("group") == g["group"]
        ]
        case.errors = [
            f"line {e['line']} {e['method']} {e['url']}: {e['error']}"
            for e in doc["error_examples"]
            if e.get("group") == g["group"]
        ]
        cases.append(case)
    return cases


def _testcase(case: _Case) -> ET.Element:
    element = ET.Element("testcase", classname="tether", name=case.name, time=f"{case.seconds:.3f}")
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
