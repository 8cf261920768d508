"""One request in flight and its response, whatever protocol carries it: how far it has
come (:class:`Stage`), which deadline holds it (:class:`Phase`, and the one rule that says
so, :func:`due_after`), what a lost connection means for it (:func:`classify_lost`), and
the record of a request the compiled path hands to the Python one (:class:`Handover`).

An HTTP/1.1 request is an :class:`Exchange`; an HTTP/2 stream is one too
(:class:`tether.engine.h2connection.Stream`), so the send path, the checks and the
reports see one thing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from tether.errors import ConnectionClosed, RequestError, StaleConnection, TimeoutError_
from tether.http.heads import Headers
from tether.ledger import CloseReason
from tether.model import BodyNeed, Outcome

if TYPE_CHECKING:
    from tether.engine.request import Prepared

HTTP11 = "http/1.1"
"""The protocol of a connection that speaks HTTP/1.1, as ALPN names it (and outcomes say)."""


class Stage(Enum):
    """How far the response to the request in flight has come."""

    SENT = "sent"  # written; nothing back yet
    HEAD = "head"  # some of the head is in (interim 1xx heads included)
    BODY = "body"  # the final head is complete; its body, if any, is coming


class Phase(Enum):
    """Which deadline the request in flight is held to now."""

    WHOLE = "whole"  # the whole request's (--timeout)
    HEADERS = "headers"  # until the head is in (--response-header-timeout)
    DRAIN = "drain"  # the body's own, past the read its head came in: ends it undrained


# Read on the hot path as plain globals: an enum member's lookup is a class attribute's.
_SENT, _HEAD, _BODY = Stage.SENT, Stage.HEAD, Stage.BODY
_WHOLE, _HEADERS, _DRAIN = Phase.WHOLE, Phase.HEADERS, Phase.DRAIN
PHASES = (_WHOLE, _HEADERS, _DRAIN)
"""The phases by the index the compiled path names them by."""
STAGES = (_SENT, _HEAD, _BODY)
"""The stages by the index the compiled path names them by."""


def due_after(
    stage: Stage, now: float, deadline: float, header_timeout: float, drain_timeout: float
) -> tuple[float, Phase]:
    """The deadline rule, for every path (the compiled one mirrors it, and a test holds it
    to this): when the request in flight runs out next, and which deadline that is, as it
    reaches ``stage`` at ``now``. Sent (:attr:`Stage.SENT`): the header timeout from now;
    a body that goes on past the read its head came in (:attr:`Stage.BODY`): the drain
    timeout from now; else, or when that would come after it, the whole request's
    ``deadline`` (0: none; a timeout of 0 is none)."""
    if stage is _SENT:
        step, phase = header_timeout, _HEADERS
    elif stage is _BODY:
        step, phase = drain_timeout, _DRAIN
    else:
        step, phase = 0.0, _WHOLE
    if step > 0 and (not deadline or now + step < deadline):
        return now + step, phase
    return deadline, _WHOLE


def timed_out(phase: Phase, header_timeout: float, timeout: float) -> TimeoutError_:
    """The error of a request whose ``phase`` ran out (not the drain's: that one ends the
    body undrained, and the response stands)."""
    if phase is _HEADERS:
        return TimeoutError_(f"no response headers within {header_timeout:g}s")
    return TimeoutError_(f"request not complete within {timeout:g}s")


Done = Callable[["Exchange", "RequestError | None"], None]
"""Called once per request: with the finished exchange and None, or with the error."""


class Exchange:
    """One request in flight on a connection and, once reported, its response as read off
    the wire (one hop: redirects and retries are the send path's)."""

    protocol: ClassVar[str] = HTTP11
    """What the response came over (an HTTP/2 stream's exchange says ``h2``)."""

    __slots__ = (
        "_buf",
        "_hasher",
        "_headers",
        "body",
        "body_size",
        "conn_id",
        "deadline",
        "done",
        "due",
        "head",
        "keeps",
        "method",
        "phase",
        "reused",
        "sha256",
        "stage",
        "status",
        "truncated",
    )

    def __init__(
        self, conn_id: int, reused: bool, method: str, need: BodyNeed, done: Done, deadline: float
    ) -> None:
        self.conn_id = conn_id
        self.reused = reused
        self.method = method
        self.done: Done | None = done
        self.deadline = deadline  # the whole request's, on the loop's clock; 0 = none
        self.due = deadline  # when the current phase runs out (the pool's ticker checks it)
        self.phase = _WHOLE
        self.stage = _SENT
        self.status = 0
        self.head = b""  # HTTP/1.1: the bytes the head came in (and maybe the body's first)
        self._headers: Headers | None = None
        self.body: bytes | None = None
        self.sha256: str | None = None
        self.body_size = 0
        self.truncated = False
        self._hasher = hashlib.sha256() if need is BodyNeed.HASH else None
        self._buf = bytearray() if need is BodyNeed.KEEP else None
        self.keeps = need is not BodyNeed.DISCARD

    def keep(self, chunk: bytes) -> None:
        """Hash or keep a piece of body, as the checks need."""
        if self._hasher is not None:
            self._hasher.update(chunk)
        elif self._buf is not None:
            self._buf += chunk

    def reach(self, stage: Stage, now: float, header_timeout: float, drain_timeout: float) -> None:
        """The request reaches ``stage`` at ``now``: its next deadline by :func:`due_after`."""
        self.due, self.phase = due_after(stage, now, self.deadline, header_timeout, drain_timeout)

    @property
    def headers(self) -> Headers:
        """The response headers, parsed from the head only if someone looks."""
        if self._headers is None:
            self._headers = Headers(head=self.head)
        return self._headers

    @headers.setter
    def headers(self, headers: Headers) -> None:
        self._headers = headers

    @property
    def close_delimited(self) -> bool:
        """The body runs until the connection closes: no length, not chunked."""
        chunked = "chunked" in (self.headers.get("transfer-encoding") or "").lower()
        return "content-length" not in self.headers and not chunked

    def finish(self) -> None:
        """Report the response (once)."""
        done, self.done = self.done, None
        if done is None:
            return
        if self._hasher is not None:
            self.sha256 = self._hasher.hexdigest()
        if self._buf is not None:
            self.body = bytes(self._buf)
        done(self, None)

    def fail(self, error: RequestError) -> None:
        """Report an error (once)."""
        done, self.done = self.done, None
        if done is not None:
            done(self, error)

    def outcome(self, prep: Prepared | None, latency: float, service: float) -> Outcome:
        """The outcome of a plain one-hop exchange, built in one call (the hot path: by
        position, in :class:`~tether.model.Outcome`'s order)."""
        assert prep is not None
        headers = self._headers
        return Outcome(
            prep.record,
            self.status,
            Headers(self.head) if headers is None else headers,
            self.body,
            self.sha256,
            self.body_size,
            self.truncated,
            latency,
            self.conn_id,
            self.reused,
            False,  # retried
            0,  # redirects
            prep.url_text,
            None,  # error
            None,  # error_kind
            service,
            "",  # the group: the sender's to say
            self.protocol,
        )

    def copy_to(self, outcome: Outcome) -> None:
        """Copy the response into an outcome (its last hop, when it took more than one)."""
        outcome.status = self.status
        outcome.headers = self.headers
        outcome.body = self.body
        outcome.body_sha256 = self.sha256
        outcome.body_size = self.body_size
        outcome.body_truncated = self.truncated
        outcome.conn_id = self.conn_id
        outcome.reused = self.reused
        outcome.protocol = self.protocol


@dataclass(frozen=True, slots=True)
class Handover:
    """The compiled path's request in flight, as it stands when the Python path takes it
    over (a response it does not read itself, a deadline, a lost connection): the Python
    side reports it from here, to the journey that sent it.

    ``carried``: requests the compiled path carried on the connection that the Python side
    has not counted yet, this one included; ``started`` and ``sent``: what its latency and
    its service time are measured from (``time.perf_counter`` seconds); ``stage``: how far
    its response came (with ``status``, ``head`` and ``body_size`` of what was read);
    ``deadline`` and ``due`` on the loop's clock."""

    prep: Prepared
    carried: int
    reused: bool
    started: float
    sent: float
    deadline: float
    due: float
    phase: Phase
    stage: Stage
    status: int = 0
    head: bytes = b""
    body_size: int = 0

    def exchange(self, conn_id: int, done: Done, kind: type[Exchange] | None = None) -> Exchange:
        """The Python side's exchange for the request, as far as it has come: an
        :class:`Exchange`, or the ``kind`` of one its protocol reports (an HTTP/2 stream)."""
        method = self.prep.request.method
        made = kind or Exchange
        ex = made(conn_id, self.reused, method, self.prep.need, done, self.deadline)
        ex.due, ex.phase, ex.stage = self.due, self.phase, self.stage
        ex.status, ex.head, ex.body_size = self.status, self.head, self.body_size
        return ex


def classify_lost(
    ours: CloseReason | None, ex: Exchange | None, exc: Exception | None
) -> tuple[CloseReason, RequestError | None]:
    """Why a connection was lost, as the ledger counts it, and what that means for the
    request in flight (``ex``): its error, or None when it ends well (nothing in flight, or
    a body delimited by the close). One decision for both, so that the ledger and the
    outcomes cannot disagree. ``ours``: the reason we closed it for, if we did."""
    if ex is None:
        return ours or CloseReason.SERVER_IDLE, None
    if ours is not None:
        return ours, ConnectionClosed(f"connection closed: {ours.text}")
    if ex.stage is _BODY and exc is None and ex.close_delimited:
        return CloseReason.SERVER_CLOSE, None
    if ex.stage is _SENT and ex.reused:
        # Go's "server closed idle connection" race: retried when it may be.
        return CloseReason.STALE, StaleConnection(
            "server closed the reused connection", written=True
        )
    return _lost_mid_response(WHERE[ex.stage], exc)


WHERE = {_SENT: "before responding", _HEAD: "during the headers", _BODY: "during the body"}
"""Where in its response a request was when its connection or stream was lost."""


def _lost_mid_response(where: str, exc: Exception | None) -> tuple[CloseReason, ConnectionClosed]:
    """A connection the server ended before the response did. A clean close (its FIN: the
    transport reports no exception) is counted and said as a close; a reset (RST), or any
    other way the socket failed, as a reset. They point at different things on the server:
    a close is its own doing (a handler that gave up, a limit of its own), a reset a
    connection torn down (a crash, SO_LINGER 0, a full queue)."""
    if exc is None:
        text = f"server closed the connection {where}"
        return CloseReason.SERVER_CLOSED_MID_RESPONSE, ConnectionClosed(text)
    if isinstance(exc, ConnectionResetError):
        return CloseReason.SERVER_RESET, ConnectionClosed(f"server reset the connection {where}")
    return CloseReason.SERVER_RESET, ConnectionClosed(f"connection failed {where}: {exc}")
