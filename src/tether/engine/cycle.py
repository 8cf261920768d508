"""Items handed out in order, over and over, up to a count: how a run repeats its records
(the senders' tokens for them: see :meth:`tether.engine.client.Client.cycle`). The compiled
send path has its own (:class:`tether.engine._compiled.Cycle`), which it reads without a
Python call; both hand out the same items in the same order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Cycle(Generic[T]):
    """``items`` in order, over and over, until ``remaining`` runs out or it is stopped."""

    __slots__ = ("_items", "_pos", "remaining", "stopped")

    def __init__(self, items: Sequence[T], remaining: int) -> None:
        self._items = items
        self._pos = 0
        self.remaining = remaining
        self.stopped = False

    def next(self) -> T | None:
        """The next item, or None when the cycle is over."""
        if self.stopped or self.remaining <= 0 or not self._items:
            return None
        item = self._items[self._pos]
        self._pos = (self._pos + 1) % len(self._items)
        self.remaining -= 1
        return item
