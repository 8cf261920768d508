"""Live progress while a run goes on: a line redrawn each second on a terminal, one plain line
per second when the output is not one (a CI log), nothing with ``--quiet``. It reads counters
the run keeps anyway, once a second, off the per-request path."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from tether.metrics.histogram import Histogram
from tether.metrics.summary import Summary

__all__ = ["Progress", "line"]


def line(figures: dict[str, Any]) -> str:
    """One progress line from its figures (pure)."""
    total = figures["total_s"]
    elapsed = f"{figures['elapsed_s']:.0f}s" + (f"/{total:.0f}s" if total else "")
    of = f"/{figures['total']:,}" if figures["total"] else ""
    return (
        f"{elapsed}  requests {figures['requests']:,}{of}  {figures['rps']:,.0f} req/s  "
        f"errors {figures['errors']:,}  mismatches {figures['mismatches']:,}  "
        f"open {figures['open']:,}  p99 {figures['p99_ms']:g} ms"
    )


class Progress:
    """Shows a run's progress on ``console`` (stderr, so JSON on stdout stays clean)."""

    def __init__(self, console: Console, total: int | None, duration: float | None) -> None:
        self._console = console
        self._total = total
        self._duration = duration
        self._live: Live | None = None
        self._last = (0.0, 0)

    def start(self, summary: Summary) -> None:
        """Begin: from now on the summary keeps a window of latencies for "p99 now"."""
        summary.window = Histogram()
        if self._console.is_terminal:
            self._live = Live(console=self._console, auto_refresh=False, transient=True)
            self._live.start()

    def tick(self, summary: Summary, elapsed: float) -> None:
        """Show the figures now (called once a second from the run's loop)."""
        summary.flush()  # the window gets what is buffered
        window = summary.window or Histogram()
        summary.window = Histogram()
        then, done = self._last
        self._last = (elapsed, summary.requests)
        text = line(
            {
                "elapsed_s": elapsed,
                "total_s": self._duration,
                "requests": summary.requests,
                "total": self._total,
                "rps": (summary.requests - done) / (elapsed - then) if elapsed > then else 0.0,
                "errors": summary.errors,
                "mismatches": summary.mismatched,
                "open": summary.ledger.open_now,
                "p99_ms": round(window.percentile(99) / 1000, 3) if window.count else 0.0,
            }
        )
        if self._live is not None:
            self._live.update(Text(text), refresh=True)
        else:
            self._console.print(text, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        """End: the live line goes (the summary follows)."""
        if self._live is not None:
            self._live.stop()
