"""The proxy itself: each whole request a client sent (:mod:`tether.proxy.listener`) goes
upstream on tether's own pooled engine, its response goes back to the client as the upstream
sent it (status, fields, body; the hop's own fields aside: :mod:`tether.proxy.hops`), and
then, the client answered, it is written as a record (:mod:`tether.proxy.recording`) and
mirrored (:mod:`tether.proxy.mirror`).

An upstream that fails (refused, reset, closed mid-body, too slow) gives the client a 502
(504 for a timeout) with a sentence, and no record: a record holds what a service answered.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from tether.engine.client import Client
from tether.engine.dispatch import Journey
from tether.engine.request import Prepared
from tether.errors import InputError
from tether.http.heads import Headers
from tether.model import KEEP_BODY, Outcome, Record
from tether.proxy.hops import VIA, forwarded_request, returned
from tether.proxy.hops import sentence_response as said
from tether.proxy.listener import ClientConnection, Incoming
from tether.proxy.mirror import Mirror
from tether.proxy.recording import SOURCE, RecordRules, line_of, path_of, record_of, wanted

__all__ = ["Proxy", "RecordsFile", "Tally"]


class RecordsFile:
    """Where records go, a line at a time, each line whole: a new file of mode 0600 (it may
    hold secrets with ``--keep-secrets``, and always holds what the service answered), or
    standard output (``-``), flushed a line at a time so that a run reading the other end
    of a pipe gets each record as it completes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stream: IO[str]
        if path == "-":
            self.stream = sys.stdout
            self.each_line = True
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise InputError(f"-o {path!r}: {exc.strerror}") from None
        os.fchmod(fd, 0o600)  # a file that was there keeps its mode through O_CREAT
        self.stream = os.fdopen(fd, "w", encoding="utf-8")
        self.each_line = not os.path.isfile(path)  # a named pipe is read as it is written

    def write(self, line: str) -> None:
        """One whole record line."""
        self.stream.write(line)
        if self.each_line:
            self.stream.flush()

    def flush(self) -> None:
        """What is written so far onto the file (once a second)."""
        with contextlib.suppress(OSError):  # said by the next write, which stops the capture
            self.stream.flush()

    def close(self) -> None:
        """Flush, and close a file (never standard output). A stream that cannot take what
        is left (its reader gone) is let go: what it took stands."""
        try:
            self.stream.flush()
        except OSError:
            if self.path == "-":  # else the interpreter's own flush at exit fails again
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        finally:
            if self.path != "-":
                self.stream.close()


@dataclass(slots=True)
class Tally:
    """What the proxy did: exchanges, records, and why some were not recorded."""

    exchanges: int = 0
    written: int = 0
    filtered: int = 0
    not_recorded: Counter[str] = field(default_factory=Counter)
    upstream_failed: Counter[str] = field(default_factory=Counter)
    bad_requests: int = 0
    write_failed: str | None = None  # why the records could not be written on (it stopped)


class _Forwarded(Journey):
    """One client request on its way upstream; its answer goes back to the client."""

    __slots__ = ("conn", "forwarded", "incoming", "path", "proxy")

    def __init__(
        self,
        proxy: Proxy,
        conn: ClientConnection,
        incoming: Incoming,
        path: str,
        forwarded: list[tuple[str, str]],
        prep: Prepared,
    ) -> None:
        super().__init__(proxy.client.dispatch, prep, time.perf_counter())
        self.proxy = proxy
        self.conn = conn
        self.incoming = incoming
        self.path = path
        self.forwarded = forwarded

    def answered(self, outcome: Outcome) -> None:
        self.proxy.answered(self, outcome)

    def failed(self, exc: BaseException) -> None:
        self.conn.respond(
            said(500, "Internal Server Error", f"tether capture: {exc!r}", head_only=False),
            close=True,
        )
        raise exc


def _failure_status(outcome: Outcome) -> tuple[int, str]:
    if outcome.error_kind == "timeout":
        return 504, "Gateway Timeout"
    return 502, "Bad Gateway"


@dataclass(slots=True)
class Proxy:
    """Forwards, answers, records, mirrors. ``write`` takes each record's line; ``full`` is
    called once, when ``limit`` records are written."""

    client: Client
    upstream: str
    rules: RecordRules
    write: Callable[[str], None]
    via: bool = False
    limit: int | None = None
    mirror: Mirror | None = None
    full: Callable[[], None] | None = None
    tally: Tally = field(default_factory=Tally)

    def handle(self, conn: ClientConnection, incoming: Incoming) -> None:
        """A whole request from a client (the listener's handler)."""
        self.tally.exchanges += 1
        path = path_of(incoming.target)
        forwarded = forwarded_request(incoming.fields)
        upstream = [*forwarded, ("Via", VIA)] if self.via else forwarded
        record = Record(incoming.method, path, tuple(upstream), incoming.body, KEEP_BODY)
        try:
            prep = self.client.prepare(record)
        except InputError as exc:
            self.tally.bad_requests += 1
            answer = said(400, "Bad Request", f"tether capture: {exc}", head_only=False)
            conn.respond(answer, close=True)
            return
        self.client.dispatch.send(_Forwarded(self, conn, incoming, path, forwarded, prep))

    def answered(self, journey: _Forwarded, outcome: Outcome) -> None:
        """The upstream's outcome: the client's answer first, then the record."""
        incoming = journey.incoming
        if outcome.error is not None or outcome.body_truncated:
            self._failed(journey, outcome)
            return
        head = outcome.headers.head if isinstance(outcome.headers, Headers) else b""
        close = not incoming.keep_alive
        answer = returned(
            head,
            outcome.status,
            outcome.body or b"",
            head_only=incoming.head_only,
            close=close,
            via=self.via,
        )
        journey.conn.respond(answer, close=close)
        self._record(journey, outcome)

    def _failed(self, journey: _Forwarded, outcome: Outcome) -> None:
        kind = outcome.error_kind or "body_too_large"
        self.tally.upstream_failed[kind] += 1
        status, reason = _failure_status(outcome)
        why = outcome.error or "its response body is over the proxy's limit"
        sentence = f"tether capture: the upstream {self.upstream} did not answer whole: {why}"
        incoming = journey.incoming
        answer = said(status, reason, sentence, head_only=incoming.head_only)
        journey.conn.respond(answer, close=True)

    def _record(self, journey: _Forwarded, outcome: Outcome) -> None:
        incoming, path = journey.incoming, journey.path
        if self.tally.write_failed is not None:
            return
        if self.limit is not None and self.tally.written >= self.limit:
            return  # answered while the proxy stops: past the limit
        if not wanted(path, self.rules):
            self.tally.filtered += 1
            return
        number = self.tally.written + 1
        made = record_of(
            number, incoming.method, path, journey.forwarded, incoming.body, outcome, self.rules
        )
        if isinstance(made, str):
            self.tally.not_recorded[made] += 1
            return
        try:
            self.write(line_of(made))
        except OSError as exc:  # a reader of the pipe gone, a full disk: nothing more goes
            self.tally.write_failed = exc.strerror or str(exc)
            if self.full is not None:
                self.full()
            return
        self.tally.written = number
        if self.mirror is not None:
            sent = Record(
                incoming.method,
                path,
                tuple(journey.forwarded),
                incoming.body,
                line=number,
                source=SOURCE,
            )
            self.mirror.send(sent, made.tag, outcome)
        if self.limit is not None and number >= self.limit and self.full is not None:
            self.full()
