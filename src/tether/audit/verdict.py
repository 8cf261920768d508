"""What a program's connection counts mean. Pure: counts in, rows and sentences out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tether.audit.probe import Counts

__all__ = ["diff", "merge", "overall", "reused", "rows", "unjudged", "verdict", "verdicts"]

JUDGED_FROM = 10
"""Requests to a peer from which its connections are judged: fewer tell nothing of reuse."""

NOT_REUSED_BELOW = 2.0
"""Requests per connection under which connections are not being reused (from
:data:`JUDGED_FROM` requests)."""


def merge(parts: Iterable[Counts]) -> Counts:
    """Counts of several processes added up per (host, port) (peaks too: an upper bound)."""
    total: Counts = {}
    for part in parts:
        for key, entry in part.items():
            into = total.setdefault(key, dict.fromkeys(entry, 0))
            for name, value in entry.items():
                into[name] = into.get(name, 0) + value
    return total


def diff(after: Counts, before: Counts) -> Counts:
    """What happened between two snapshots of the same process (peaks: the later one's)."""
    found: Counts = {}
    for key, entry in after.items():
        old = before.get(key, {})
        delta = {name: value - old.get(name, 0) for name, value in entry.items()}
        delta["peak_open"] = entry["peak_open"]
        delta["open_now"] = entry["open_now"]
        if delta["opened"] or delta["requests"]:
            found[key] = delta
    return found


def verdict(key: str, entry: dict[str, int]) -> str | None:
    """One sentence when the connections to ``key`` were not reused as a pooled client
    reuses them; None when they were (or too few requests were made to tell)."""
    opened, requests, peak = entry["opened"], entry["requests"], entry["peak_open"]
    if requests < JUDGED_FROM or not opened:
        return None
    per = requests / opened
    if per < NOT_REUSED_BELOW:
        return (
            f"{key}: {requests:,} requests over {opened:,} connections ({per:.1f} per "
            "connection): connections are not being reused. Use one Session or Client for "
            "all requests, and read every response to its end or close it"
        )
    churn = opened - peak
    if churn > max(5, requests // 20):
        return (
            f"{key}: {opened:,} connections opened but at most {peak:,} open at once: "
            f"{churn:,} were closed and replaced. A pool smaller than the threads using it "
            "discards connections (urllib3: 'Connection pool is full'); or the server closes "
            "them (tether doctor tells)"
        )
    return None


def verdicts(counts: Counts) -> list[str]:
    """A sentence per (host, port) whose connections were not reused, busiest first."""
    return [row["verdict"] for row in rows(counts) if row["verdict"]]


def rows(counts: Counts) -> list[dict[str, Any]]:
    """One row per (host, port), busiest first, with its verdict (None when fine)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1]["requests"], item[0]))
    return [
        {
            "peer": key,
            "connections": entry["opened"],
            "requests": entry["requests"],
            "requests_per_connection": round(entry["requests"] / entry["opened"], 2)
            if entry["opened"]
            else 0.0,
            "peak_open": entry["peak_open"],
            "open_at_end": entry["open_now"],
            "verdict": verdict(key, entry),
        }
        for key, entry in ranked
    ]


def unjudged(table: list[dict[str, Any]]) -> list[str]:
    """A sentence per peer of :func:`rows` sent too few requests for its connections to be
    judged (its verdict is None, and says nothing of reuse)."""
    return [_too_few(row) for row in table if row["requests"] < JUDGED_FROM]


def _too_few(row: dict[str, Any]) -> str:
    if not row["requests"]:  # a connection that carried no HTTP/1.x (a database's, h2)
        opened = _counted(row["connections"], "connection")
        return f"{opened} to {row['peer']} but no HTTP/1.x request seen: nothing to judge"
    sent = _counted(row["requests"], "request")
    return f"{sent} to {row['peer']}: too few to judge reuse (it takes {JUDGED_FROM})"


def reused(table: list[dict[str, Any]]) -> str | None:
    """The sentence for the peers of :func:`rows` whose connections were judged and found
    reused, when no peer's were found not reused; None when none was judged or one has a
    verdict. The peers are named when others were too few to judge."""
    judged = [row for row in table if row["requests"] >= JUDGED_FROM]
    if not judged or any(row["verdict"] for row in table):
        return None
    if len(judged) == len(table):
        return "Connections were reused."
    return f"Connections to {', '.join(row['peer'] for row in judged)} were reused."


def overall(table: list[dict[str, Any]]) -> str:
    """The audit in one line, from its :func:`rows`: requests and connections in all, and
    to how many peers (the verdicts say which were not reused)."""
    if not table:
        return "no HTTP request was seen"
    sent = _counted(sum(row["requests"] for row in table), "request")
    opened = _counted(sum(row["connections"] for row in table), "connection")
    return f"{sent} over {opened} to {_counted(len(table), 'peer')}"


def _counted(n: int, thing: str) -> str:
    """``n`` things, as ``1 request`` or ``1,000 requests``."""
    return f"{n:,} {thing}{'' if n == 1 else 's'}"
