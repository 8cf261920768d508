"""Per-group results: requests grouped by the record's ``tag``, or else by method and path
template (``GET /users/{id}``), each with its own counts and latency histogram.

Memory is bounded: at most :data:`MAX_GROUPS` groups; records beyond them are counted in
one ``(other)`` group. (vegeta users ask for per-target reports and run out of memory
building them from raw results; here they cost a histogram per group, never a row per
request.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from tether.document import GroupRow
from tether.merging import LIVE, Merges, by
from tether.metrics.histogram import Histogram

MAX_GROUPS = 50
OTHER = "(other)"

# A path segment that names one thing rather than a kind of thing: a number, a UUID, a long
# hex string, or a code mixing letters with at least two digits (c0042, a1b2c3).
_ID = re.compile(
    r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|(?=(?:[^/]*\d){2})[A-Za-z0-9_-]{4,}"
)


@lru_cache(maxsize=4096)  # a run's (or a capture's) paths repeat; the cache stays bounded
def template(path: str) -> str:
    """``/users/42/posts?x=1`` -> ``/users/{id}/posts``: ids replaced, the query dropped."""
    path = path.split("?", 1)[0]
    return "/".join("{id}" if _ID.fullmatch(seg) else seg for seg in path.split("/"))


def group_key(method: str, path: str, tag: str) -> str:
    """The group of a request: its tag when it has one, else method and path template."""
    return tag or f"{method} {template(path)}"


def admitted(key: str, known: int) -> str:
    """The group a key not seen before is counted in, ``known`` groups in: its own while
    there is room, else ``(other)``."""
    return key if known < MAX_GROUPS or key == OTHER else OTHER


@dataclass(slots=True)
class Group(Merges):
    """One group's counts and latencies. Another process's counts for the same group merge
    by adding (:mod:`tether.merging`)."""

    requests: int = 0
    ok: int = 0
    mismatches: int = 0
    errors: int = 0
    latency: Histogram = field(default_factory=Histogram)
    pending: list[float] = field(default_factory=list, metadata=LIVE)  # not yet in `latency`

    def flush(self) -> None:
        """Move buffered latencies into the histogram."""
        self.latency.record_seconds(self.pending)

    def _settle(self) -> None:
        self.flush()


def _counted_in(by_key: dict[str, Group], key: str) -> Group:
    """The group ``key`` is counted in, made on first use while there is room."""
    group = by_key.get(key)
    if group is None:
        counted_as = admitted(key, len(by_key))
        if counted_as != key:
            return _counted_in(by_key, counted_as)
        group = by_key[key] = Group()
    return group


def _each_counted_in(mine: dict[str, Group], theirs: dict[str, Group]) -> dict[str, Group]:
    # Another process's groups are admitted as its records would have been here: past
    # MAX_GROUPS, a group of theirs this share has not is counted in (other).
    for key, group in theirs.items():
        _counted_in(mine, key).merge(group)
    return mine


@dataclass(slots=True)
class Groups(Merges):
    """All groups of a run, at most :data:`MAX_GROUPS` plus ``(other)``."""

    by_key: dict[str, Group] = field(default_factory=dict, metadata=by(_each_counted_in))

    def get(self, key: str) -> Group:
        """The group for ``key``, made on first use while there is room."""
        group = self.by_key.get(key)  # per request: a known group's costs one look-up
        if group is None:
            group = _counted_in(self.by_key, key)
        return group

    def flush(self) -> None:
        """Flush every group's buffered latencies."""
        for group in self.by_key.values():
            group.flush()

    def to_list(self) -> list[GroupRow]:
        """The groups, busiest first, for the summary document."""
        self.flush()
        ranked = sorted(self.by_key.items(), key=lambda item: (-item[1].requests, item[0]))
        return [
            {
                "group": key,
                "requests": g.requests,
                "ok": g.ok,
                "mismatches": g.mismatches,
                "errors": g.errors,
                "latency_ms": g.latency.percentiles_ms(),
            }
            for key, g in ranked
        ]
