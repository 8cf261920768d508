"""Live progress while a run goes on: a line redrawn each second on a terminal, one plain line
per second when the output is not one (a CI log), nothing with ``--quiet``. It reads counters
the run keeps anyway, once a second, off the per-request path."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from tether.metrics.summary import Summary
from tether.metrics.timeline import Point

__all__ = ["Progress", "clock", "line"]


def clock(seconds: float) -> str:
    """A time as ``--duration`` takes it and Go writes it: ``12s``, ``2.5s``, ``1m30s``,
    ``1h0m5s`` (pure)."""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{round(rest, 3):g}s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


def line(figures: dict[str, Any]) -> str:
    """One progress line from its figures (pure): the time run, of the duration when there
    is one, and the requests sent, of the count when there is one (either ends the run)."""
    total = figures["total_s"]
    elapsed = clock(round(figures["elapsed_s"])) + (f"/{clock(total)}" if total else "")
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

    def start(self) -> None:
        """Begin (on a terminal, the line that will be redrawn)."""
        if self._console.is_terminal:
            self._live = Live(console=self._console, auto_refresh=False, transient=True)
            self._live.start()

    def show(self, point: Point, summary: Summary) -> None:
        """Show the run as of ``point``, its latest second (once a second, from its loop)."""
        text = line(
            {
                "elapsed_s": point.t,
                "total_s": self._duration,
                "requests": summary.requests,
                "total": self._total,
                "rps": point.requests / point.seconds if point.seconds > 0 else 0.0,
                "errors": summary.errors,
                "mismatches": summary.mismatches,
                "open": point.open,
                "p99_ms": point.p99_ms or 0.0,
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
