"""The summary as Markdown (``tether report --format markdown``): for a pull request comment
or a CI job summary. Every outside string is escaped for a table cell."""

from __future__ import annotations

from typing import Any

from tether.document import ErrorExample, MismatchExample, Omitted, SummaryDocument
from tether.report.text import omitted_sentence, verdict

__all__ = ["render"]


def _cell(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.replace("<", "&lt;").replace(">", "&gt;").split())


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def render(doc: SummaryDocument) -> str:
    """The summary document as Markdown."""
    lat, c = doc["latency_ms"], doc["connections"]
    out = [f"## tether: {_cell(doc['target'] or 'records')}", "", verdict(doc), ""]
    figures = [doc["requests"], doc["ok"], doc["mismatches"], doc["errors"], round(doc["rate"])]
    out += _table(
        ["requests", "ok", "mismatches", "errors", "req/s", "p50 ms", "p99 ms", "connections"],
        [[*figures, lat["p50"], lat["p99"], c["opened"]]],
    )
    for t in doc.get("thresholds", []):
        out.append(f"- threshold {'pass' if t['ok'] else '**FAIL**'}: `{_cell(t['threshold'])}`")
    for failure in doc.get("gate_failures", []):
        out.append(f"- **gate failed**: {_cell(failure)}")
    if len(doc["groups"]) > 1:
        out += ["", "### groups", ""]
        out += _table(
            ["group", "requests", "ok", "mismatches", "errors", "p99 ms"],
            [
                [
                    *(g[k] for k in ("group", "requests", "ok", "mismatches", "errors")),
                    g["latency_ms"]["p99"],
                ]
                for g in doc["groups"]
            ],
        )
    if doc["mismatch_examples"]:
        out += ["", f"### mismatches ({doc['mismatches']:,}), by record and field", ""]
        out += _table(
            ["line", "request", "field", "times", "expected (first)", "got (first)"],
            [_mismatch_row(m) for m in doc["mismatch_examples"]],
        )
        out += _omitted(doc.get("mismatch_examples_omitted"), "mismatches")
    if doc["error_examples"]:
        out += ["", f"### errors ({doc['errors']:,}), by record and kind", ""]
        out += _table(
            ["line", "request", "kind", "times", "error (first)"],
            [_error_row(e) for e in doc["error_examples"]],
        )
        out += _omitted(doc.get("error_examples_omitted"), "errors")
    return "\n".join(out) + "\n"


def _mismatch_row(m: MismatchExample) -> list[Any]:
    request = f"{m['method']} {m['url']}"
    return [m["line"], request, m["field"], m.get("count", 1), m["expected"], m["got"]]


def _error_row(e: ErrorExample) -> list[Any]:
    request = f"{e['method']} {e['url']}"
    return [e["line"], request, e["kind"] or "", e.get("count", 1), e["error"]]


def _omitted(omitted: Omitted | None, what: str) -> list[str]:
    sentence = omitted_sentence(omitted, what)
    return ["", _cell(sentence)] if sentence else []
