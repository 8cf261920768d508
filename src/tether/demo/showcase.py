"""``tether demo``: the same records through a leaky harness and through tether, side by side.

The demo service runs in its own process (so that its count of open connections, file
descriptors and memory are its own, and the two processes get a core each). Its ``/_stats``
is read over one connection kept open for the whole demo, so that connection is subtracted
from the server's figures.

What the leaky harness costs the server is read from the server process at the run's peak:
records are sent one at a time and a leaked connection stays open until the run ends, so
the server holds the most when the last response arrives (:class:`AtLastOutcome`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from tether.demo import records_path
from tether.demo.make_records import WRONG
from tether.document import MismatchExample, SummaryDocument
from tether.engine.options import ClientOptions
from tether.model import Mismatch, Outcome
from tether.records import file_source
from tether.run.options import RunOptions
from tether.run.session import run

START_TIMEOUT = 10.0
SHOWN = 3
"""How many mismatches the demo lists."""

Usage = dict[str, int | None]
"""What the server process holds: ``/_stats/process`` (``fds``, ``fd_limit``, ``rss_bytes``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Side:
    """One column of the comparison."""

    title: str
    doc: SummaryDocument
    server: dict[str, int]
    before: Usage
    """The server process before the run."""
    peak: Usage | None
    """The server process at the run's peak; None when the last record sent no request."""


@contextlib.contextmanager
def demo_service() -> Iterator[int]:
    """Start the demo service in a child process; yield its port; stop it by its PID."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.demo.server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "listening on http://127.0.0.1:PORT"
        if not line.startswith("listening on "):
            raise RuntimeError(f"demo service did not start: {line!r}")
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        try:
            proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class StatsReader:
    """Reads the demo service's own connection counts over one kept-open connection."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=START_TIMEOUT)

    def _call(self, method: str, path: str) -> dict[str, int]:
        self._conn.request(method, path)
        data: dict[str, int] = json.loads(self._conn.getresponse().read())
        return data

    def reset(self) -> None:
        """Zero the counters; the peak starts from what is open now (this connection)."""
        self._call("POST", "/_stats/reset")

    def read(self) -> dict[str, int]:
        """The counters, without this reader's own connection."""
        stats = self._call("GET", "/_stats")
        return {
            "accepted": stats["accepted"],
            "peak_open": stats["peak_open"] - 1,
            "requests": stats["requests"],
        }

    def process(self) -> Usage:
        """What the server process holds now, without this reader's own connection."""
        usage: Usage = dict(self._call("GET", "/_stats/process"))
        fds = usage["fds"]
        usage["fds"] = None if fds is None else fds - 1
        return usage

    def settle(self) -> None:
        """Wait (bounded) until the server has closed every connection but this one, so that
        connections a run left closing are not counted in the next run's figures."""
        deadline = time.monotonic() + START_TIMEOUT
        while self._call("GET", "/_stats")["open_excluding_self"] and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        """Close the reader's connection."""
        self._conn.close()


class AtLastOutcome:
    """A run's sink that reads the server process when the ``total``-th outcome arrives."""

    def __init__(self, stats: StatsReader, total: int) -> None:
        self._stats = stats
        self._left = total
        self.usage: Usage | None = None

    def __call__(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        self._left -= 1
        if self._left == 0:
            self.usage = self._stats.process()


def count_records(records: str) -> int:
    """How many records the file holds (each is parsed only when it is sent)."""
    return sum(1 for _ in file_source(records)())


def run_side(
    title: str, port: int, records: str, leak: bool, stats: StatsReader, total: int
) -> Side:
    """Replay the records once and read what the server saw."""
    stats.settle()
    stats.reset()
    before = stats.process()
    at_peak = AtLastOutcome(stats, total)
    summary = run(
        file_source(records),
        RunOptions(target=f"http://127.0.0.1:{port}"),
        ClientOptions(leak=leak),
        sink=at_peak,
    )
    return Side(title, summary.to_dict(), stats.read(), before, at_peak.usage)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def memory_added(side: Side) -> int | None:
    """Bytes of resident memory the server gained between the run's start and its peak."""
    before = side.before["rss_bytes"]
    at_peak = None if side.peak is None else side.peak["rss_bytes"]
    if before is None or at_peak is None:
        return None
    return max(at_peak - before, 0)


def _megabytes(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.1f} MB"


def peak_fds(side: Side) -> int | None:
    """The server's open file descriptors at the run's peak."""
    return None if side.peak is None else side.peak["fds"]


def comparison(sides: list[Side]) -> Table:
    """The side-by-side table."""
    table = Table(title="the same records, two harnesses", title_justify="left")
    table.add_column("")
    for side in sides:
        table.add_column(side.title, justify="right")
    rows: list[tuple[str, Any]] = [
        ("requests sent", lambda s: f"{s.doc['requests']:,}"),
        ("responses matched", lambda s: f"{s.doc['ok']:,}"),
        ("mismatches caught", lambda s: f"{s.doc['mismatches']:,}"),
        ("connections opened", lambda s: f"{s.doc['connections']['opened']:,}"),
        (
            "requests per connection",
            lambda s: f"{s.doc['connections']['requests_per_connection']:,}",
        ),
        ("server: connections accepted", lambda s: f"{s.server['accepted']:,}"),
        ("server: peak open connections", lambda s: f"{s.server['peak_open']:,}"),
        ("server: requests served", lambda s: f"{s.server['requests']:,}"),
        ("server: file descriptors at peak", lambda s: _count(peak_fds(s))),
        ("server: memory added at peak", lambda s: _megabytes(memory_added(s))),
        ("requests/s", lambda s: f"{s.doc['rate']:,.0f}"),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(side) for side in sides))
    return table


def run_demo(records: str | None, console: Console) -> int:
    """Run both sides against a fresh demo service and print the comparison."""
    path = records or str(records_path())
    total = count_records(path)
    console.print(
        f"[bold]tether demo[/]: a URL shortener, and {total:,} recorded redirects to check"
    )
    with demo_service() as port:
        stats = StatsReader(port)
        try:
            leaky = run_side("leaky harness (--leak)", port, path, True, stats, total)
            good = run_side("tether", port, path, False, stats, total)
        finally:
            stats.close()
    console.print(comparison([leaky, good]))
    console.print(cost_line(leaky, good))
    examples = good.doc["mismatch_examples"]
    if examples:
        console.print(mismatches_line(good.doc["mismatches"], planted=records is None))
    for example in examples[:SHOWN]:
        # A URL is not prose: each example stays on one line, however wide the terminal.
        console.print(example_line(example), markup=False, soft_wrap=True)
    return 0


def _plural(n: int, word: str, words: str = "") -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {words or word + 's'}"


def _fd_headroom(fds: int, usage: Usage) -> str:
    """How far the server is from refusing connections: its soft limit on descriptors."""
    limit = usage["fd_limit"]
    if limit is None:
        return f"{_plural(fds, 'file descriptor')} (it has no limit on them)"
    more = max(limit - fds, 0)
    return (
        f"{fds:,} of the {limit:,} file descriptors it may hold "
        f"({more:,} more and it refuses connections)"
    )


def cost_line(leaky: Side, good: Side) -> str:
    """One sentence: what the leaky harness's open connections cost the server, beside
    tether's, from the server process's own figures at each run's peak."""
    opened = f"The leaky harness left {_plural(leaky.server['peak_open'], 'connection')} open"
    tether = f"with tether: {_plural(good.server['peak_open'], 'connection')}"
    leaky_fds, good_fds = peak_fds(leaky), peak_fds(good)
    if leaky.peak is None or leaky_fds is None or good_fds is None:
        return f"{opened} on the server; {tether}."
    memory = memory_added(leaky)
    more = "" if memory is None else f" and {_megabytes(memory)} more memory"
    return (
        f"{opened} on the server: {_fd_headroom(leaky_fds, leaky.peak)}{more}; "
        f"{tether}, {_plural(good_fds, 'descriptor')}."
    )


def planted_lines() -> list[int]:
    """The lines of the bundled records whose expected ``Location`` is wrong on purpose."""
    return sorted(i + 1 for i in WRONG)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def mismatches_line(count: int, *, planted: bool) -> str:
    """What the mismatches listed below are: for the bundled records, planted on purpose
    (and where)."""
    caught = _plural(count, "mismatch", "mismatches")
    if planted:
        lines = _and([str(line) for line in planted_lines()])
        return (
            f"The {caught} are planted on purpose: the records on lines {lines} expect a "
            f"stale Location, to show that tether catches a wrong Location and names the "
            f"record's line:"
        )
    first = f"The {caught}" if count <= SHOWN else f"The first {SHOWN} of the {caught}"
    return f"{first} tether caught, each naming its record's line:"


def example_line(example: MismatchExample) -> str:
    """One mismatch, naming its record's line."""
    return (
        f"  line {example['line']}: {example['field']} expected {example['expected']}, "
        f"got {example['got']}"
    )
