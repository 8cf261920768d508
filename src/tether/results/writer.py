"""The results file's writer: the sink of a run given ``--results``, one line per outcome as
it arrives, and the closing line when the run is done (the lines as
:mod:`tether.results.lines` encodes them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome
from tether.results.lines import end_line, json_text, outcome_line, plain_text
from tether.secrets import SECRET_HEADERS

__all__ = ["ResultsWriter"]


class ResultsWriter:
    """Writes outcomes to a text stream as they arrive (the sink of a run), then the closing
    line (:meth:`close`).

    A write that fails (a full disk) stops the writing, never the run: what the run measures
    is worth more than the file. ``failed`` keeps the error, and ``on_failure`` is told at
    once, so that the file can be named while the run goes on."""

    def __init__(
        self,
        stream: IO[str],
        secret: frozenset[str] = SECRET_HEADERS,
        on_failure: Callable[[OSError], None] | None = None,
    ) -> None:
        self._stream = stream
        self._secret = secret
        self._started = time.perf_counter()
        self._on_failure = on_failure
        self.failed: OSError | None = None

    def __call__(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        if self.failed is not None:
            return
        t = time.perf_counter() - self._started
        if mismatches or outcome.error is not None:
            line = json_text(outcome_line(outcome, mismatches, self._secret, t))
        else:
            line = plain_text(outcome, t)
        try:
            self._stream.write(line + "\n")
        except OSError as exc:
            self._fail(exc)
            return

    def close(self, summary: Summary) -> None:
        """Write the closing line, and flush: a full disk is often first seen here."""
        if self.failed is not None:
            return
        try:
            self._stream.write(json_text(end_line(summary)) + "\n")
            self._stream.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.failed = exc
        if self._on_failure is not None:
            self._on_failure(exc)
