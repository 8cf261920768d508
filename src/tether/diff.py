"""``tether diff``: the same records sent to a primary and a candidate service, their
responses compared field by field. Pure: outcomes in, differences out.

A response's fields: its status, each header (not those that change on every response, see
:data:`tether.capture.VOLATILE_HEADERS`), and its body, as one field per leaf of a JSON
document (``body $.items[0].id``) or else one sha256. With a secondary (a second instance of
the primary), a field that differs between primary and secondary is noise (a timestamp, an
id): it is left out of the differences for that group of records, which is Diffy's idea
without its proxy.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tether.capture import VOLATILE_HEADERS
from tether.model import Outcome

__all__ = ["Differences", "compare", "fields"]

MAX_EXAMPLES = 3
MAX_LEAVES = 10_000  # a body with more leaves is compared by its digest only


def fields(outcome: Outcome) -> dict[str, str]:
    """The response's comparable fields, each as text."""
    if outcome.error is not None:
        return {"error": outcome.error_kind or "error"}
    found = {"status": str(outcome.status)}
    for name, value in outcome.headers.items():
        if name not in VOLATILE_HEADERS:
            found[f"header {name}"] = value
    found.update(_body_fields(outcome.body or b""))
    return found


def _body_fields(body: bytes) -> dict[str, str]:
    if not body:
        return {}
    try:
        doc = json.loads(body)
    except ValueError:
        return {"body sha256": hashlib.sha256(body).hexdigest()}
    leaves: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [("$", doc)]
    while stack and len(leaves) < MAX_LEAVES:
        path, value = stack.pop()
        if isinstance(value, dict) and value:
            stack.extend((f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, list) and value:
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        else:
            leaves[f"body {path}"] = json.dumps(value, ensure_ascii=False)
    if stack:
        return {"body sha256": hashlib.sha256(body).hexdigest()}
    return leaves


def compare(a: dict[str, str], b: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The fields where ``a`` and ``b`` differ: name to (a's value, b's), "(absent)" for a
    field one of them lacks."""
    return {
        name: (a.get(name, "(absent)"), b.get(name, "(absent)"))
        for name in sorted(a.keys() | b.keys())
        if a.get(name) != b.get(name)
    }


@dataclass(slots=True)
class Differences:
    """Differences by (group, field), with counts and a few examples; noise learnt from a
    secondary. Memory grows with the number of distinct (group, field), not of records."""

    records: int = 0
    differing_records: int = 0
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    noise: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(
        self,
        group: str,
        where: str,
        primary: dict[str, str],
        candidate: dict[str, str],
        secondary: dict[str, str] | None,
    ) -> None:
        """One record's three (or two) responses."""
        self.records += 1
        noisy = compare(primary, secondary) if secondary is not None else {}
        for name in noisy:
            self.noise[(group, name)] += 1
        found = compare(primary, candidate)
        if found.keys() - noisy.keys():
            self.differing_records += 1  # beyond what this record's secondary shows as noise
        for name, (was, now) in found.items():
            key = (group, name)
            self.counts[key] += 1
            shown = self.examples.setdefault(key, [])
            if len(shown) < MAX_EXAMPLES:
                shown.append({"record": where, "primary": was[:200], "candidate": now[:200]})

    def real(self) -> list[tuple[str, str]]:
        """(group, field) that differ and are not noise, most frequent first."""
        keys = [key for key in self.counts if key not in self.noise]
        return sorted(keys, key=lambda key: (-self.counts[key], key))

    def to_dict(self) -> dict[str, Any]:
        """The diff document (what ``--json`` writes)."""

        def row(key: tuple[str, str]) -> dict[str, Any]:
            group, name = key
            return {
                "group": group,
                "field": name,
                "count": self.counts[key],
                "examples": self.examples[key],
            }

        noisy = sorted((key for key in self.counts if key in self.noise), key=lambda k: k)
        return {
            "records": self.records,
            "records_differing": self.differing_records,
            "differences": [row(key) for key in self.real()],
            "noise": [{"group": g, "field": f, "count": self.counts[(g, f)]} for g, f in noisy],
        }
