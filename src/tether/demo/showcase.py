"""``tether demo``: the same records through a leaky harness and through tether, side by side.

The demo service runs in its own process (so that its count of open connections is its own,
and the two processes get a core each). Its ``/_stats`` is read over one connection kept
open for the whole demo, so that connection is subtracted from the server's figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

from tether.demo import records_path
from tether.document import SummaryDocument
from tether.engine.options import ClientOptions
from tether.records import file_source
from tether.run.options import RunOptions
from tether.run.session import run

START_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class Side:
    """One column of the comparison."""

    title: str
    doc: SummaryDocument
    server: dict[str, int]


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

    def close(self) -> None:
        """Close the reader's connection."""
        self._conn.close()


def run_side(title: str, port: int, records: str, leak: bool, stats: StatsReader) -> Side:
    """Replay the records once and read what the server saw."""
    stats.reset()
    summary = run(
        file_source(records),
        RunOptions(target=f"http://127.0.0.1:{port}"),
        ClientOptions(leak=leak),
    )
    return Side(title, summary.to_dict(), stats.read())


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
        ("requests/s", lambda s: f"{s.doc['rate']:,.0f}"),
    ]
    for name, cell in rows:
        table.add_row(name, *(cell(side) for side in sides))
    return table


def run_demo(records: str | None, console: Console) -> int:
    """Run both sides against a fresh demo service and print the comparison."""
    path = records or str(records_path())
    console.print("[bold]tether demo[/]: a URL shortener, and 1,000 recorded redirects to check")
    with demo_service() as port:
        stats = StatsReader(port)
        try:
            leaky = run_side("leaky harness (--leak)", port, path, True, stats)
            good = run_side("tether", port, path, False, stats)
        finally:
            stats.close()
    console.print(comparison([leaky, good]))
    console.print(_explain(leaky, good))
    for example in good.doc["mismatch_examples"][:3]:
        console.print(
            f"  line {example['line']}: {example['field']} expected "
            f"{example['expected']!s}, got {example['got']!s}",
            markup=False,
        )
    return 0


def _explain(leaky: Side, good: Side) -> str:
    return (
        f"The leaky harness never read a body nor returned a connection: the server held "
        f"{leaky.server['peak_open']:,} connections open at once for "
        f"{leaky.doc['requests']:,} requests. tether read every body to the end and reused "
        f"{good.doc['connections']['opened']:,} connection(s) for all of them. Both caught "
        f"the same {good.doc['mismatches']} wrong Location headers:"
    )
