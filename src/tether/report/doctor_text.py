"""The terminal report of ``tether doctor``: a function of its document; its one line
(``-q``); and its probes shown as they run (:class:`ProbeProgress`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from tether.doctor.measure import Probe


def render(doc: dict[str, Any]) -> RenderableType:
    """The findings in a grid, then the advice."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("server", escape(doc["url"]))
    grid.add_row("Server header", _software(doc))
    grid.add_row("keep-alive", "[green]yes[/]" if doc["keep_alive"] else "[red]no[/]")
    if doc["keep_alive"]:
        idle = doc["idle_timeout_s"]
        grid.add_row(
            "idle timeout",
            f"about {idle:g} s" if idle is not None else f"over {doc['idle_wait_s']:g} s",
        )
        per = doc["requests_per_connection"]
        more = "more than " if doc["request_limit_reached"] else ""
        grid.add_row("requests per connection", f"{more}{per:,}" if per else "-")
        if doc["closes_after_error"] is not None:
            what = "closes the connection" if doc["closes_after_error"] else "keeps it open"
            grid.add_row(f"after a {doc['error_status']}", what)
    # The advice is how to live with the server; when it could not be asked, it says that.
    advice = Text(style="bold red" if doc["error"] else "")
    for sentence in doc["advice"]:
        advice.append(f"{sentence}\n")
    return Group(grid, Text(), advice)


def _software(doc: dict[str, Any]) -> str:
    # Whose settings the advice names: none when the header is absent or names no known server.
    header, known = doc.get("server_header"), doc.get("server_software")
    if header is None:
        return "none (the advice names no server's settings)"
    return f"{escape(header)} ({known or 'not a server whose settings tether knows'})"


def one_line(doc: dict[str, Any]) -> str:
    """The findings in one line (what ``-q`` prints), the failure to ask included. Pure."""
    url = doc["url"]
    if doc["error"]:
        return f"{url}: the server could not be asked: {doc['error']}"
    if not doc["keep_alive"]:
        return f"{url}: no keep-alive: the server closes every connection after one response"
    idle = doc["idle_timeout_s"]
    waited = f"about {idle:g} s" if idle is not None else f"over {doc['idle_wait_s']:g} s"
    parts = ["keep-alive", f"idle timeout {waited}"]
    per = doc["requests_per_connection"]
    if per:
        more = "more than " if doc["request_limit_reached"] else ""
        parts.append(f"{more}{per:,} requests per connection")
    if doc["closes_after_error"] is not None:
        closes = doc["closes_after_error"]
        after = "closes the connection" if closes else "keeps the connection open"
        parts.append(f"a {doc['error_status']} {after}")
    return f"{url}: " + ", ".join(parts)


# --- the probes as they run -------------------------------------------------------------------


def _limit(probe: Probe) -> str:
    return f"{probe.limit:g} s" if probe.unit == "s" else f"{probe.limit:,.0f} requests"


def probe_started(probe: Probe) -> str:
    """The plain line as a probe starts: what it finds out, and how long it may take."""
    return f"doctor: {probe.name}: started (limit {_limit(probe)})"


def probe_finished(probe: Probe, elapsed: float) -> str:
    """The plain line as a probe ends."""
    return f"doctor: {probe.name}: done in {elapsed:.1f} s"


def probes_running(running: list[tuple[Probe, float]]) -> str:
    """The live line: each probe running, with its elapsed seconds and its limit."""
    shown = [f"{probe.name} {elapsed:.0f} s (limit {_limit(probe)})" for probe, elapsed in running]
    return "doctor: " + "   ".join(shown) if shown else ""


class ProbeProgress:
    """The doctor's probes on ``console`` (stderr: JSON on stdout stays clean), called as
    each starts and ends (:data:`tether.doctor.measure.OnProbe`). On a terminal one line,
    redrawn four times a second, of the probes running with their elapsed time and limit
    (gone at the end: the report follows); otherwise (a log, a dumb terminal) a plain line
    as each starts, with its limit (what is being waited for, and for how long at most),
    and as it ends."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self._console = console
        self._clock = clock
        self._running: dict[Probe, float] = {}  # each probe running, by when it started
        self._live: Live | None = None

    def __enter__(self) -> ProbeProgress:
        # A dumb terminal cannot redraw a line: it gets the plain lines, as a log does.
        if self._console.is_terminal and not self._console.is_dumb_terminal:
            self._live = Live(
                console=self._console,
                get_renderable=self._line,
                transient=True,
                redirect_stdout=False,  # nothing of it may end up among stdout's JSON
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()

    def __call__(self, probe: Probe, finished: bool) -> None:
        now = self._clock()
        if not finished:
            self._running[probe] = now
            said = probe_started(probe)
        else:
            said = probe_finished(probe, now - self._running.pop(probe, now))
        if self._live is None:
            self._console.print(said, highlight=False, markup=False, soft_wrap=True)

    def _line(self) -> Text:
        # Called from rich's refresh thread: a copy of what runs, not the dict itself.
        now, running = self._clock(), list(self._running.items())
        return Text(probes_running([(probe, now - began) for probe, began in running]))
