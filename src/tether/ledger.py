"""The connection ledger: every connection opened, every reason one closed, and for HTTP/2
the streams they carried.

The pool reports events here as they happen; the summary reads the totals. ``reused`` is
counted per request by the summary, so that with perfect reuse ``opened + reused == requests``
(an HTTP/2 stream is a request: every stream after a connection's first reuses it).
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from tether.errors import RequestError, StreamRefused
from tether.merging import Merges, by


class CloseReason(Enum):
    """Why a connection closed. ``by_server`` says whose decision it was."""

    SERVER_IDLE = ("server closed it while idle", True)
    SERVER_CLOSE = ("server asked to close (Connection: close or HTTP/1.0)", True)
    SERVER_CLOSED_MID_RESPONSE = ("server closed it mid-response", True)
    SERVER_RESET = ("server reset it (or it failed) mid-response", True)
    STALE = ("server closed it just as it was reused", True)
    GOAWAY = ("server sent GOAWAY (HTTP/2)", True)
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

    @property
    def key(self) -> str:
        """The reason as reports and metrics name it (``connections.closed``): ``server_idle``."""
        return self.name.lower()

    @classmethod
    def of_key(cls, key: str) -> CloseReason | None:
        """The reason a report names ``key``; None for one this version does not know."""
        return cls.__members__.get(key.upper())


@dataclass(slots=True)
class Streams(Merges):
    """What the run's HTTP/2 connections carried, counted by the connections themselves.
    Another process's counts merge by adding (:mod:`tether.merging`), but for the peak.

    - ``connections``: connections that spoke h2 (the rest of ``opened`` spoke HTTP/1.1).
    - ``streams``: streams opened (requests sent); ``peak``: the most open at once on one
      connection (the server's SETTINGS_MAX_CONCURRENT_STREAMS bounds it).
    - ``goaway``: GOAWAY frames received; ``retried``: requests retried because the server
      never processed their stream (above a GOAWAY's last stream id, or REFUSED_STREAM).
    - ``reset_by_server`` / ``reset_by_us``: RST_STREAM frames by error code (``cancel``:
      a body over the drain limit or a timeout).
    - ``flow_stalls`` / ``flow_stall_s``: times a request body waited for WINDOW_UPDATE
      (its stream's window or the connection's was spent), and the seconds they waited.
    - ``leaked``, ``stalled``, ``unread_bytes`` (leak mode): streams answered at their
      headers with their bodies never read, those still open at the end (the server could
      not finish them: the window it may send in was never given back), and the body bytes
      received and never acknowledged.
    """

    connections: int = 0
    streams: int = 0
    # One connection's peak: another process's connections are others, so the larger stands.
    peak: int = field(default=0, metadata=by(max))
    goaway: int = 0
    retried: int = 0
    reset_by_server: Counter[str] = field(default_factory=Counter)
    reset_by_us: Counter[str] = field(default_factory=Counter)
    flow_stalls: int = 0
    flow_stall_s: float = field(default=0.0, metadata=by(operator.add))  # seconds waited
    leaked: int = 0
    stalled: int = 0
    unread_bytes: int = 0


@dataclass(slots=True)
class Ledger(Merges):
    """Connection counts for one run. All methods are O(1). Another process's ledger (its
    share of the run) merges by adding, field by field (:mod:`tether.merging`)."""

    opened: int = 0
    open_now: int = 0
    # Separate processes' peaks may or may not coincide: their sum is the upper bound.
    peak_open: int = field(default=0, metadata=by(operator.add))
    connect_failed: int = 0
    retried_stale: int = 0
    closed: Counter[CloseReason] = field(default_factory=Counter)
    # Requests each protocol carried (an HTTP/2 stream the server refused carried none),
    # told by each connection as it closes: a connection's count costs nothing per request.
    carried: Counter[str] = field(default_factory=Counter)
    h2: Streams = field(default_factory=Streams)

    def on_open(self) -> None:
        """A TCP (and TLS) connection is established."""
        self.opened += 1
        self.open_now += 1
        if self.open_now > self.peak_open:
            self.peak_open = self.open_now

    def on_close(self, reason: CloseReason, protocol: str = "http/1.1", requests: int = 0) -> None:
        """An established connection is gone, for ``reason``, having carried ``requests``
        over ``protocol``."""
        self.open_now -= 1
        self.closed[reason] += 1
        self.carried[protocol] += requests

    def count_retry(self, error: RequestError) -> None:
        """A request is sent again after ``error``: a stale connection's, or a stream the
        server never processed."""
        if isinstance(error, StreamRefused):
            self.h2.retried += 1
        else:
            self.retried_stale += 1

    @property
    def closed_by_server(self) -> int:
        """Connections the server decided to close."""
        return sum(n for reason, n in self.closed.items() if reason.by_server)

    @property
    def closed_undrained(self) -> int:
        """Connections closed because a body was too big or too slow to read to the end."""
        return self.closed[CloseReason.UNDRAINED]
