"""The HTML report of a real 10 s run, opened in Debian's chromium: nothing but the file is
requested, no console error, every chart drawn with a legend, the tooltip on a point says
its value, the page says what ran, and what came from responses, records, servers and the
command line is text, never markup or script."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servers import NginxServer, ThreadServer, keepalive_handler, open_in_browser
from tether.cli import main
from tether.report import interactive
from tether.report.html import render
from tether.run.options import RunOptions
from tether.run.pacer import OriginalPace, Pacer
from tether.run.provenance import load_model
from tether.secrets import mask_url

HOSTILE = "<script>document.title='pwned'</script>"
HOSTILE_URL = "/</script><script>alert(1)</script>"
PASSWORD = "s3cret-pw"
RATE = 300


@dataclass
class Report:
    page: Path
    doc: dict[str, Any]
    results: Path
    prom_name: str  # a watched source whose name holds HOSTILE_URL
    target: str


@pytest.fixture(scope="module")
def report(nginx: NginxServer, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """A 10 s open-model run against nginx, watching its port and a Prometheus text at a
    hostile path; records with hostile strings; a password in the target."""
    tmp = tmp_path_factory.mktemp("html")
    records = tmp / "r.jsonl"
    lines = [
        {"url": "/", "expect": {"status": 200}},
        {"url": "/r/1", "tag": HOSTILE, "expect": {"headers": {"Location": HOSTILE}}},
        {"url": HOSTILE_URL, "expect": {"status": 204}},  # nginx says 200: a mismatch
    ]
    records.write_text("".join(json.dumps(line) + "\n" for line in lines))
    page, summary, results = tmp / "report.html", tmp / "summary.json", tmp / "results.jsonl"
    target = f"http://tether:{PASSWORD}@127.0.0.1:{nginx.port}"
    with ThreadServer(keepalive_handler(b"# TYPE conns gauge\nconns 3\n")) as prom:
        prom_name = f"prom:{prom.url}{HOSTILE_URL}#conns"
        args = ["run", str(records), "-t", target, "--rate", str(RATE), "-d", "10s"]
        args += ["--watch", f"port:{nginx.port}", "--watch", prom_name]
        args += ["--threshold", "p99<5s", "--threshold", "mismatch_rate<1%"]
        args += ["--html", str(page), "--json", str(summary), "--results", str(results), "-q"]
        assert main(args) == 3  # the mismatch_rate threshold fails
    doc = json.loads(summary.read_text())
    return Report(page, doc, results, prom_name, target)


@pytest.fixture(scope="module")
def opened(report: Report, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What chromium found on the page; its screenshot is kept beside it."""
    shot = tmp_path_factory.mktemp("shot") / "html-report.png"
    found = open_in_browser(report.page.as_uri(), shot)
    assert shot.stat().st_size > 50_000
    found["screenshot"] = shot
    return found


def test_the_page_loads_nothing_and_runs_no_foreign_script(
    report: Report, opened: dict[str, Any]
) -> None:
    assert opened["errors"] == []
    assert opened["requests"] == [report.page.as_uri()]  # one self-contained file
    assert opened["dialogs"] == []  # no alert(1) ran
    # No script but tether's own ran: the hostile tag did not retitle the page.
    assert opened["title"] == f"tether: {mask_url(report.target)}"


def test_every_chart_is_drawn_with_a_legend(report: Report, opened: dict[str, Any]) -> None:
    charts = {c["id"]: c for c in opened["charts"]}
    assert list(charts) == ["throughput", "latency", "status", "connections", "percentiles"]
    for chart in charts.values():
        assert chart["kind"] == "plotly"
        assert chart["legend"] and chart["lines"] == len(chart["legend"]), chart
        assert all(axis for axis in chart["axes"]), chart  # both axes titled
    assert charts["latency"]["legend"] == ["p50", "p99"]
    assert charts["status"]["legend"] == sorted(report.doc["status"])
    port = report.doc["watch"]["sources"][0]["source"]
    # The hostile source name is shown as the text it is.
    assert charts["connections"]["legend"] == [
        "tether",
        f"{port} open",
        f"{report.prom_name} value",
    ]
    assert any(t.endswith(" ms") for t in charts["latency"]["yticks"])


def test_hovering_a_point_shows_its_value(report: Report, opened: dict[str, Any]) -> None:
    charts = {c["id"]: c for c in opened["charts"]}
    by_t = {p["t"]: p for p in report.doc["timeline"]}
    hovered = charts["throughput"]["hover"]
    assert hovered["y"] == by_t[hovered["x"]]["rps"]  # the point is the run's own
    for chart in charts.values():
        hover = chart["hover"]
        assert hover is not None, chart["id"]
        assert f"{hover['y']:,.12g}" in hover["text"], (chart["id"], hover)
    assert f"{charts['latency']['hover']['x']:g} s" in charts["latency"]["hover"]["text"]
    assert re.search(r"p[\d.]+: [\d.,]+ ms", charts["percentiles"]["hover"]["text"])


def test_the_page_says_what_ran_and_how_it_went_at_the_top(report: Report) -> None:
    text = report.page.read_text()
    doc = report.doc
    assert PASSWORD not in text  # masked in the title, the target and the command line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", doc["started_at"])
    assert doc["started_at"].replace("T", " ") in text
    assert doc["model"] == {"kind": "rate", "rate": RATE, "max_inflight": 1000}
    assert f"open model: rate {RATE} req/s, at most 1,000 in flight" in text
    assert f"<td>{doc['tether_version']}</td>" in text and f"<td>{doc['engine']}</td>" in text
    assert doc["command"][:2] == ["tether", "run"]
    assert ["--target", mask_url(report.target)] == doc["command"][3:5]
    assert "--rate" in doc["command"] and "--watch" in doc["command"]
    # Thresholds, pass and fail, before what ran.
    top = text[: text.index("what ran")]
    assert "<code>p99&lt;5s</code>" in top and '<span class="good">pass</span>' in top
    assert "<code>mismatch_rate&lt;1%</code>" in top and '<span class="bad">FAIL</span>' in top


def test_outside_strings_are_escaped_in_markup_and_in_the_charts_data(report: Report) -> None:
    text = report.page.read_text()
    assert HOSTILE not in text and "&lt;script&gt;" in text
    assert "</script><script>alert(1)" not in text  # neither in the tables nor in the JSON
    found = re.search(r'<script type="application/json" id="tether-charts">(.*?)</script>', text)
    assert found is not None
    names = [t["name"] for c in json.loads(found.group(1)) for t in c["data"]]
    assert f"{report.prom_name.replace('<', '&lt;').replace('>', '&gt;')} value" in names


def test_without_plotly_the_page_has_svg_charts(report: Report, tmp_path: Path) -> None:
    page = tmp_path / "svg.html"
    page.write_text(render(report.doc, interactive_charts=False))  # type: ignore[arg-type]
    found = open_in_browser(page.as_uri(), tmp_path / "svg.png")
    assert found["errors"] == [] and found["requests"] == [page.as_uri()]
    assert found["scripts"] == 0
    charts = found["charts"]
    assert [c["kind"] for c in charts] == ["svg"] * 5
    assert all(c["legend"] and c["lines"] == len(c["legend"]) for c in charts), charts
    assert "pip install &#x27;tether[html]&#x27;" in page.read_text()


def test_a_page_from_results_files_says_what_it_does_not_know(
    report: Report, tmp_path: Path
) -> None:
    page = tmp_path / "rebuilt.html"
    assert main(["report", str(report.results), "--format", "html", "-o", str(page)]) == 1
    text = page.read_text()
    assert "<td>command</td><td>not recorded</td>" in text
    assert f"open model: rate {RATE} req/s" in text  # told by the results file's figures
    assert text.count('class="chart"') == 5


def test_a_url_runs_command_line_masks_its_secrets(tmp_path: Path) -> None:
    doc = tmp_path / "s.json"
    with ThreadServer(keepalive_handler()) as srv:
        url = f"http://me:{PASSWORD}@127.0.0.1:{srv.port}/x?access_token=abc123&page=2"
        args = ["run", url, "-n", "3", "-H", "Authorization: Bearer abc123", "-H", "X-Trace: 7"]
        args += ["--rate", "50:100", "-d", "1s", "--json", str(doc), "--silent"]
        assert main(args) == 0
    ran = json.loads(doc.read_text())
    assert ran["command"] == [
        "tether", "run", f"http://***@127.0.0.1:{srv.port}/x?access_token=***&page=2",
        "--requests", "3", "--duration", "1", "--rate", "50:100", "--json", str(doc),
        "--header", "Authorization: (secret: not shown; --show-secrets shows it)",
        "--header", "X-Trace: 7", "--silent",
    ]  # fmt: skip
    assert ran["model"] == {
        "kind": "ramp", "rate": 50.0, "rate_to": 100.0, "ramp_s": 1.0, "max_inflight": 1000
    }  # fmt: skip


def test_the_original_pace_is_a_model_of_its_own() -> None:
    model = load_model(RunOptions(rate=OriginalPace(2.0)))
    assert model == {"kind": "pace", "pace": 2.0, "max_inflight": 1000}
    assert load_model(RunOptions(rate=Pacer(10, 10)))["kind"] == "rate"
    assert load_model(RunOptions(concurrency=7)) == {"kind": "concurrency", "concurrency": 7}


def test_script_json_cannot_end_its_script() -> None:
    value = {"name": "</script><script>alert(1)</script>&<!--\u2028\u2029"}
    text = interactive.script_json(value)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == value


@pytest.mark.parametrize("plotly", [True, False], ids=["plotly", "svg"])
def test_an_empty_run_still_renders(plotly: bool) -> None:
    doc = {
        "target": None, "requests": 0, "ok": 0, "mismatches": 0, "errors": 0,
        "duration_s": 0.0, "rate": 0.0, "concurrency": 1, "interrupted": False,
        "input_errors": 0, "schedule_s": None, "rate_target": None,
        "latency_ms": dict.fromkeys(("min", "p50", "p90", "p99", "max", "mean"), 0.0),
        "connections": {
            "opened": 0, "reused": 0, "requests_per_connection": 0, "peak_open": 0,
            "closed_by_server": 0, "closed_undrained": 0, "retried_stale": 0,
            "connect_failed": 0, "closed": {},
        },
        "groups": [], "mismatch_examples": [], "error_examples": [], "timeline": [],
    }  # fmt: skip
    page = render(doc, interactive_charts=plotly)  # type: ignore[arg-type]
    assert page.count('class="chart"') == 5 and "no data" in page


def test_requests_per_connection_is_written_as_the_text_writes_it(tmp_path: Path) -> None:
    """The page used to say 2222.22 where the text summary says 2,222."""
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/"}\n')
    out = tmp_path / "s.json"
    with ThreadServer(keepalive_handler()) as srv:
        assert (
            main(["run", str(records), "-t", srv.url, "-n", "3", "-c", "2", "--json", str(out)])
            == 0
        )
    doc = json.loads(out.read_text())
    assert doc["connections"]["requests_per_connection"] == 1.5
    page = render(doc, interactive_charts=False)
    assert re.search(r"requests per connection</td><td class=\"n\">1\.5<", page)
    doc["connections"]["requests_per_connection"] = 2222.22
    assert '<td class="n">2,222<' in render(doc, interactive_charts=False)
