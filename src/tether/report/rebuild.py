"""A run's summary rebuilt from results files (``tether report``), streaming: one outcome
line at a time goes into a :class:`~tether.metrics.summary.Summary` as the run would have
added it, so memory stays bounded however big the files (vegeta's report once ran out of
memory on a 1.5 GB results file). The closing line gives the connection ledger and the run's
length; files from several runs or processes merge."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from typing import Any, cast

from tether.document import ClosingLine, H2Streams, OutcomeLine, RunEnd
from tether.engine.ledger import CloseReason, Streams
from tether.errors import InputError
from tether.metrics.histogram import Histogram
from tether.metrics.summary import Summary
from tether.metrics.timeline import Point
from tether.model import Mismatch, Outcome, Record

__all__ = ["rebuild"]


def rebuild(paths: Iterable[str]) -> Summary:
    """The summary of the runs whose results are at ``paths``."""
    total: Summary | None = None
    for path in paths:
        part = _one(path)
        if total is None:
            total = part
        else:
            total.merge(part)
    if total is None:
        raise InputError("no results file given")
    return total


def _one(path: str) -> Summary:
    summary = Summary()
    seconds = _Seconds(summary)
    conns: set[int] = set()
    ended = False
    try:
        with open(path, encoding="utf-8") as stream:
            for number, text in enumerate(stream, 1):
                obj = _load(text, path, number)
                if "end" in obj:
                    _apply_end(summary, obj["end"])
                    ended = True
                    continue
                outcome, mismatches = _outcome(obj, path, number)
                seconds.add(float(obj.get("t", 0.0)), outcome, bool(mismatches))
                summary.add(outcome, mismatches)
                if not ended and outcome.conn_id:
                    conns.add(outcome.conn_id)
    except OSError as exc:
        raise InputError(f"cannot read results {path!r}: {exc.strerror}") from None
    seconds.finish()
    if not ended:  # cut short (killed): the ledger is what the outcomes show
        summary.ledger.opened = len(conns)
        summary.facts.duration = seconds.last_t
        summary.facts.interrupted = True
    summary.flush()
    return summary


def _load(text: str, path: str, number: int) -> OutcomeLine | ClosingLine:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{number}: not a results line: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}:{number}: not a results line")
    # Taken at its word: a key it lacks is a KeyError where it is read, named then.
    return cast("OutcomeLine | ClosingLine", obj)


def _outcome(obj: OutcomeLine, path: str, number: int) -> tuple[Outcome, list[Mismatch]]:
    try:
        record = Record(obj["method"], obj["url"], line=obj["line"], source=path)
        outcome = Outcome(
            record,
            status=obj["status"],
            latency=obj["latency_ms"] / 1000,
            service=obj.get("service_ms", obj["latency_ms"]) / 1000,
            conn_id=obj["conn_id"],
            reused=obj["reused"],
            retried=obj["retried"],
            redirects=obj["redirects"],
            body_size=obj["body_size"],
            body_truncated=obj["body_truncated"],
            url=obj["url"],
            error=obj["error"],
            error_kind=obj.get("error_kind") or ("request" if obj["error"] else None),
            group=obj.get("group") or obj["method"],
            protocol=obj.get("protocol", "http/1.1"),
        )
        mismatches = [Mismatch(m["field"], m["expected"], m["got"]) for m in obj["mismatches"]]
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}:{number}: not a results line ({exc!r} missing)") from None
    return outcome, mismatches


def _apply_end(summary: Summary, end: RunEnd) -> None:
    c = end["connections"]
    led = summary.ledger
    led.opened, led.peak_open = c["opened"], c["peak_open"]
    led.connect_failed, led.retried_stale = c["connect_failed"], c["retried_stale"]
    for name, n in c["closed"].items():
        reason = CloseReason.__members__.get(name.upper())
        if reason is not None:  # a reason this version does not know is left out
            led.closed[reason] += n
    led.carried.update(c.get("protocol", {}))
    _apply_h2(led.h2, c.get("h2"))
    summary.late = end["late"]
    summary.input_errors = end["input_errors"]
    summary.input_error_examples = end["input_error_examples"]
    facts = summary.facts
    facts.duration = end["duration_s"]
    facts.target = end["target"]
    facts.concurrency = end["concurrency"]
    facts.interrupted = end["interrupted"]
    facts.signal = end.get("signal")
    facts.rate_target = end["rate_target"]
    facts.schedule_s = end["schedule_s"]
    facts.watch = end["watch"]


def _apply_h2(counts: Streams, h2: H2Streams | None) -> None:
    """The HTTP/2 part of a closing line's ledger (absent from files written before it)."""
    if not h2:
        return
    counts.connections, counts.streams = h2["connections"], h2["streams"]
    counts.peak, counts.goaway = h2["peak_concurrent_streams"], h2["goaway_received"]
    counts.retried = h2["retried_refused"]
    counts.reset_by_server.update(h2["rst_received"])
    counts.reset_by_us.update(h2["rst_sent"])
    counts.flow_stalls, counts.flow_stall_s = h2["flow_control_stalls"], h2["flow_control_stall_s"]
    counts.leaked, counts.stalled = h2["leaked_streams"], h2["stalled_streams"]
    counts.unread_bytes = h2["unread_bytes"]


class _Seconds:
    """The timeline, one whole second of outcomes at a time (outcomes come in time order)."""

    def __init__(self, summary: Summary) -> None:
        self._summary = summary
        self._second = 0
        self._latency = Histogram()
        self._counts: dict[str, Any] = {}
        self._conns: set[int] = set()
        self.last_t = 0.0
        self._reset()

    def _reset(self) -> None:
        self._latency = Histogram()
        self._counts = {"requests": 0, "errors": 0, "mismatches": 0, "status": {}}
        self._conns = set()

    def add(self, t: float, outcome: Outcome, mismatched: bool) -> None:
        second = math.floor(t)
        if second > self._second and self._counts["requests"]:
            self._close(float(second), float(second - self._second))
        self._second = max(self._second, second)
        self.last_t = max(self.last_t, t)
        counts = self._counts
        counts["requests"] += 1
        if outcome.error is not None:
            counts["errors"] += 1
        else:
            counts["status"][outcome.status] = counts["status"].get(outcome.status, 0) + 1
            self._latency.record(int(outcome.latency * 1e6))
        counts["mismatches"] += mismatched
        self._conns.add(outcome.conn_id)

    def _close(self, t: float, seconds: float) -> None:
        c = self._counts
        point = Point.of(
            t,
            seconds,
            self._latency,
            requests=c["requests"],
            errors=c["errors"],
            mismatches=c["mismatches"],
            status=Counter(c["status"]),
            open=len(self._conns - {0}),  # connections that carried a response in the second
        )
        self._summary.timeline.add(point)
        self._reset()

    def finish(self) -> None:
        if self._counts["requests"]:
            self._close(self.last_t, max(self.last_t - self._second, 1e-3))
