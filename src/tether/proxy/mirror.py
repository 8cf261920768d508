"""``--mirror``: each request the proxy carried sent again to a candidate (and, with
``--mirror-secondary``, to a second instance of the upstream, whose differences from the
upstream are noise), after the client has its answer, and the responses compared as
``tether diff`` compares them (:class:`tether.diff.Differences`).

The client never waits for a mirror: a request is mirrored from the loop once its answer is
written, at most ``most`` at once; past that it is counted as not mirrored (a candidate
slower than the upstream must not grow the proxy's memory without bound). Methods other
than GET and HEAD are mirrored only when asked (``unsafe``): a candidate's writes are the
user's choice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from tether.diff import Differences, compare, fields
from tether.engine.client import Client
from tether.model import KEEP_BODY, Outcome, Record

__all__ = ["SAFE_METHODS", "Mirror"]

SAFE_METHODS = frozenset({"GET", "HEAD"})

Heard = Callable[[str, str], None]
"""Told of each (group, field) the first time it differs (and is not known as noise)."""


@dataclass(slots=True)
class Mirror:
    """The candidate's client (and the secondary's), and what their answers showed."""

    candidate: Client
    secondary: Client | None = None
    unsafe: bool = False
    most: int = 256
    heard: Heard | None = None
    found: Differences = field(default_factory=Differences)
    skipped_unsafe: int = 0
    skipped_busy: int = 0
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    _said: set[tuple[str, str]] = field(default_factory=set)

    def send(self, record: Record, group: str, primary: Outcome) -> None:
        """Mirror ``record``, whose upstream answered ``primary`` (a response, not an
        error), unless its method or the number in flight says not to."""
        if record.method not in SAFE_METHODS and not self.unsafe:
            self.skipped_unsafe += 1
            return
        if len(self.in_flight) >= self.most:
            self.skipped_busy += 1
            return
        task = asyncio.get_running_loop().create_task(self._compare(record, group, primary))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _compare(self, record: Record, group: str, primary: Outcome) -> None:
        sent = dataclasses.replace(record, expect=KEEP_BODY)
        clients = [self.candidate, *([self.secondary] if self.secondary else [])]
        outcomes = await asyncio.gather(*(client.fetch(sent) for client in clients))
        mine = fields(primary)
        theirs = fields(outcomes[0])
        noise = fields(outcomes[1]) if len(outcomes) > 1 else None
        self.found.add(group, record.where, mine, theirs, noise)
        self._tell(group, compare(mine, theirs))

    def _tell(self, group: str, differing: dict[str, tuple[str, str]]) -> None:
        if self.heard is None:
            return
        for name in differing:
            key = (group, name)
            if key not in self._said and key not in self.found.noise:
                self._said.add(key)
                self.heard(group, name)

    async def finish(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the mirrors in flight; those still going are
        cancelled (and not compared). Then close both clients."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=grace)
        for task in list(self.in_flight):
            task.cancel()
        await self.candidate.aclose()
        if self.secondary is not None:
            await self.secondary.aclose()

    def to_dict(self) -> dict[str, object]:
        """The diff document, with what was not mirrored."""
        doc: dict[str, object] = dict(self.found.to_dict())
        doc["not_mirrored"] = {"unsafe_method": self.skipped_unsafe, "busy": self.skipped_busy}
        return doc
