"""The HTML report, opened in Debian's chromium: it loads with no console error and no
request, its plots are drawn, and what came from responses is text, not markup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers import NginxServer, open_in_browser
from tether.cli import main
from tether.report.html import render

HOSTILE = "<script>document.title='pwned'</script>"


@pytest.fixture(scope="module")
def report(nginx: NginxServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    records = tmp / "r.jsonl"
    lines = [
        {"url": "/", "expect": {"status": 200}},
        {"url": "/r/1", "tag": HOSTILE, "expect": {"headers": {"Location": HOSTILE}}},
    ]
    records.write_text("".join(json.dumps(line) + "\n" for line in lines))
    page = tmp / "report.html"
    args = ["run", str(records), "-t", nginx.url, "-c", "2", "-d", "2.2", "-n", "10000000"]
    args += ["--watch", f"port:{nginx.port}", "--html", str(page), "-q"]
    assert main(args) == 1  # the hostile expectation is a mismatch
    return page


def test_the_report_renders_in_a_real_browser(report: Path, tmp_path: Path) -> None:
    shot = Path(__file__).parent.parent / "build" / "html-report.png"  # kept as an artifact
    shot.parent.mkdir(exist_ok=True)
    found = open_in_browser(report.as_uri(), shot)
    assert found["errors"] == []
    assert found["requests"] == [report.as_uri()]  # nothing fetched: one self-contained file
    assert found["title"].startswith("tether: http://127.0.0.1:")  # no script ran to change it
    assert found["scripts"] == 0
    assert found["charts"] == 5 and all(n >= 1 for n in found["lines"]), found["lines"]
    assert shot.stat().st_size > 10_000


def test_response_strings_are_escaped(report: Path) -> None:
    text = report.read_text()
    assert HOSTILE not in text and "&lt;script&gt;" in text


def test_an_empty_run_still_renders() -> None:
    doc = {
        "target": None, "requests": 0, "ok": 0, "mismatches": 0, "errors": 0,
        "duration_s": 0.0, "rate": 0.0, "concurrency": 1,
        "latency_ms": dict.fromkeys(("min", "p50", "p90", "p99", "max", "mean"), 0.0),
        "connections": {
            "opened": 0, "reused": 0, "requests_per_connection": 0, "peak_open": 0,
            "closed_by_server": 0, "closed_undrained": 0, "retried_stale": 0,
            "connect_failed": 0, "closed": {},
        },
        "groups": [], "mismatch_examples": [], "error_examples": [], "timeline": [],
    }  # fmt: skip
    page = render(doc)
    assert page.count('class="chart"') == 5 and "no data" in page
