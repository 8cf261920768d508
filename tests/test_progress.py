"""Live progress: one plain line a second when the output is not a terminal, none with -q."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from servers import NginxServer
from tether.cli import main
from tether.report.progress import line

LINE = re.compile(
    r"^\ds/2s  requests [\d,]+/100,000,000  [\d,]+ req/s  errors 0  mismatches 0  open 2  "
    r"p99 [\d.]+ ms$"
)


def test_a_line_a_second(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/"}\n')
    args = ["run", str(records), "-t", nginx.url, "-c", "2", "-d", "2", "-n", "100000000"]
    summary = tmp_path / "s.json"
    assert main([*args, "--json", str(summary)]) == 0
    shown = [s for s in capsys.readouterr().err.splitlines() if "req/s  errors" in s]
    # A line for each second's timeline point (how many seconds a busy machine fits in the
    # run may vary), none for the last stretch: the summary follows it. When the run ends a
    # moment after a tick, that sliver is folded into the point the tick showed.
    points = json.loads(summary.read_text())["timeline"]
    assert len(points) - 1 <= len(shown) <= len(points) and shown, shown
    assert all(LINE.match(s) for s in shown), shown
    assert main([*args, "-q"]) == 0
    assert "req/s  errors" not in capsys.readouterr().err


def test_line() -> None:
    figures = {
        "elapsed_s": 12.4,
        "total_s": None,
        "requests": 12345,
        "total": 100000,
        "rps": 1000.4,
        "errors": 1,
        "mismatches": 2,
        "open": 3,
        "p99_ms": 1.25,
    }
    assert line(figures) == (
        "12s  requests 12,345/100,000  1,000 req/s  errors 1  mismatches 2  open 3  p99 1.25 ms"
    )
