"""A run's summary rebuilt from results files (``tether report``), streaming: one outcome
line at a time goes into a :class:`~tether.metrics.summary.Summary` as the run would have
added it, so memory stays bounded however big the files (vegeta's report once ran out of
memory on a 1.5 GB results file). The closing line gives the connection ledger and the run's
length; files from several runs or processes merge. Lines that leave out their defaults and
lines from files written before (every key written) read alike
(:func:`~tether.results.lines.filled`).

A run that was killed (SIGKILL, out of memory, power lost) leaves no closing line, and often a
last line cut mid-write: one with no newline at its end that does not parse. That line is the
cut, not a bad line: it is left out (``cut`` is told) and the rest read as a run interrupted.
A line that does not parse anywhere else is an error naming it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from typing import cast

from tether.document import ClosingLine, OutcomeLine, RunEnd
from tether.errors import InputError
from tether.metrics.histogram import Histogram
from tether.metrics.summary import Summary
from tether.metrics.timeline import Sampler
from tether.model import Mismatch, Outcome
from tether.results.lines import filled, outcome_of

__all__ = ["readable", "rebuild"]


def rebuild(
    paths: Iterable[str],
    each: Callable[[OutcomeLine], None] | None = None,
    cut: Callable[[str, int], None] | None = None,
) -> Summary:
    """The summary of the runs whose results are at ``paths``; ``each`` is given every
    outcome line as it is read, with every key (another output written in the same pass);
    ``cut`` the path and line number of a last line cut short, left out."""
    total: Summary | None = None
    for path in paths:
        part = _one(path, each, cut)
        if total is None:
            total = part
        else:
            total.merge(part)
    if total is None:
        raise InputError("no results file given")
    return total


def readable(paths: Iterable[str]) -> None:
    """Each of ``paths`` can be opened (else an InputError naming it): to be asked before
    any is read or an output begun, so that a missing last file is not found gigabytes in."""
    for path in paths:
        try:
            open(path, encoding="utf-8").close()
        except OSError as exc:
            raise _unreadable(path, exc) from None


def _one(
    path: str,
    each: Callable[[OutcomeLine], None] | None,
    cut: Callable[[str, int], None] | None,
) -> Summary:
    summary = Summary()
    seconds = _Seconds(summary)
    conns: set[int] = set()
    ended = False
    for number, text in _texts(path):
        obj = _load(text, path, number)
        if obj is None:  # the cut: only the last line can lack its newline
            if cut is not None:
                cut(path, number)
            break
        if "end" in obj:
            _restore(summary, obj["end"], path, number)
            ended = True
            continue
        line = _filled(obj, path, number)
        outcome, mismatches = _outcome(line, path, number)
        seconds.add(float(line["t"]), outcome)
        summary.add(outcome, mismatches)
        if each is not None:
            each(line)
        if not ended and outcome.conn_id:
            conns.add(outcome.conn_id)
    seconds.finish()
    if not ended:  # cut short (killed): the ledger is what the outcomes show
        summary.ledger.opened = len(conns)
        summary.facts.duration = seconds.last_t
        summary.facts.interrupted = True
    summary.flush()
    return summary


def _texts(path: str) -> Iterator[tuple[int, str]]:
    """The file's lines, numbered. Only an error reading the file is its error: one raised
    where a line is used (an output that cannot be written) is not thrown in here."""
    try:
        with open(path, encoding="utf-8") as stream:
            yield from enumerate(stream, 1)
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: str, exc: OSError) -> InputError:
    return InputError(f"cannot read results {path!r}: {exc.strerror}")


def _load(text: str, path: str, number: int) -> OutcomeLine | ClosingLine | None:
    """The line's JSON object; None for a last line cut short (no newline, not JSON)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.endswith("\n"):
            return None
        raise InputError(f"{path}:{number}: not a results line: {_problem(text, exc)}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}:{number}: not a results line: not a JSON object")
    # Taken at its word: a key it lacks is a KeyError where it is read, named then.
    return cast("OutcomeLine | ClosingLine", obj)


def _problem(text: str, exc: json.JSONDecodeError) -> str:
    """What is wrong with ``text``, and where: the decoder's message alone stops short
    ("Unterminated string starting at"), its place kept apart. The line is decoded again
    without its newline, which the decoder would take for part of a string or a second
    line; decoding it so only here leaves the common path as it was."""
    line = text.rstrip("\n")
    try:
        json.loads(line)
    except json.JSONDecodeError as again:
        exc = again
    at = "" if exc.msg.endswith(" at") else " at"
    end = " (the line's end)" if exc.pos >= len(line.rstrip()) else ""
    return f"{exc.msg}{at} column {exc.pos + 1}{end}"


def _filled(obj: OutcomeLine, path: str, number: int) -> OutcomeLine:
    try:
        return filled(obj)
    except (KeyError, TypeError) as exc:
        raise _not_a_line(path, number, exc) from None


def _outcome(line: OutcomeLine, path: str, number: int) -> tuple[Outcome, list[Mismatch]]:
    try:
        return outcome_of(line, path)
    except (KeyError, TypeError) as exc:
        raise _not_a_line(path, number, exc) from None


def _not_a_line(path: str, number: int, exc: Exception) -> InputError:
    what = f"{exc} missing" if isinstance(exc, KeyError) else str(exc)  # str: 'the key'
    return InputError(f"{path}:{number}: not a results line: {what}")


def _restore(summary: Summary, end: RunEnd, path: str, number: int) -> None:
    try:
        summary.restore(end)
    except (KeyError, TypeError) as exc:
        raise _not_a_line(path, number, exc) from None


class _Seconds:
    """The timeline of a file's outcomes, which come in time order: a point for each whole
    second that has any, sampled as the second ends (a live run's :class:`Sampler`, given
    the connections that carried a response in the second for the ones open)."""

    def __init__(self, summary: Summary) -> None:
        self._summary = summary
        self._sampler: Sampler | None = None  # made at the first outcome's second
        self._second = 0
        self._conns: set[int] = set()
        self.last_t = 0.0

    def add(self, t: float, outcome: Outcome) -> None:
        """An outcome that ended ``t`` seconds into the run, before the summary counts it."""
        second = math.floor(t)
        if self._sampler is None:
            self._sampler, self._second = Sampler(start=float(second)), second
            self._summary.window = Histogram()
        elif second > self._second:
            self._sample(float(second))
            self._second = second
        self.last_t = max(self.last_t, t)
        self._conns.add(outcome.conn_id)

    def _sample(self, t: float) -> None:
        assert self._sampler is not None
        self._sampler.sample(self._summary, t, open_now=len(self._conns - {0}))
        self._conns = set()

    def finish(self) -> None:
        """The last second's point, up to the last outcome."""
        if self._sampler is not None:
            self._sample(self.last_t)
            self._summary.window = None  # no more points: a summary like any other
