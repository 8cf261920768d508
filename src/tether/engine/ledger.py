"""The connection ledger: every connection opened, every reason one closed.

The pool reports events here as they happen; the summary reads the totals. ``reused`` is
counted per request by the summary, so that with perfect reuse ``opened + reused == requests``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum


class CloseReason(Enum):
    """Why a connection closed. ``by_server`` says whose decision it was."""

    SERVER_IDLE = ("server closed it while idle", True)
    SERVER_CLOSE = ("server asked to close (Connection: close or HTTP/1.0)", True)
    SERVER_CLOSED_MID_RESPONSE = ("server closed it mid-response", True)
    SERVER_RESET = ("server reset it (or it failed) mid-response", True)
    STALE = ("server closed it just as it was reused", True)
    UNDRAINED = ("body over the drain limit or deadline", False)
    PROTOCOL = ("server sent an invalid response", False)
    HEADERS_TOO_LARGE = ("response headers over the size limit", False)
    TIMEOUT = ("a timeout ran out", False)
    IDLE_TIMEOUT = ("idle longer than the idle timeout", False)
    POOL_FULL = ("idle pool full", False)
    KEEP_ALIVE_OFF = ("keep-alive disabled", False)
    REQUEST_CLOSE = ("the request said Connection: close", False)
    LEAKED = ("leaked until the end of the run", False)
    SHUTDOWN = ("end of run", False)

    def __init__(self, text: str, by_server: bool) -> None:
        self.text = text
        self.by_server = by_server


@dataclass(slots=True)
class Ledger:
    """Connection counts for one run. All methods are O(1)."""

    opened: int = 0
    open_now: int = 0
    peak_open: int = 0
    connect_failed: int = 0
    retried_stale: int = 0
    closed: Counter[CloseReason] = field(default_factory=Counter)

    def on_open(self) -> None:
        """A TCP (and TLS) connection is established."""
        self.opened += 1
        self.open_now += 1
        if self.open_now > self.peak_open:
            self.peak_open = self.open_now

    def on_close(self, reason: CloseReason) -> None:
        """An established connection is gone, for ``reason``."""
        self.open_now -= 1
        self.closed[reason] += 1

    def merge(self, other: Ledger) -> None:
        """Add another ledger's counts (another process's share of one run)."""
        self.opened += other.opened
        self.open_now += other.open_now
        # Separate processes' peaks may or may not coincide: their sum is the upper bound.
        self.peak_open += other.peak_open
        self.connect_failed += other.connect_failed
        self.retried_stale += other.retried_stale
        self.closed.update(other.closed)

    @property
    def closed_by_server(self) -> int:
        """Connections the server decided to close."""
        return sum(n for reason, n in self.closed.items() if reason.by_server)

    @property
    def closed_undrained(self) -> int:
        """Connections closed because a body was too big or too slow to read to the end."""
        return self.closed[CloseReason.UNDRAINED]
