"""JUnit XML from a real run, read back by a real JUnit parser (junitparser)."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser
import pytest

from servers import ConnInfo, NginxServer, ThreadServer, read_request, response
from tether.cli import main

LINES = [
    {"url": "/r/1", "expect": {"headers": {"Location": "https://example.org/r/1"}}},
    {"url": "/r/2", "expect": {"headers": {"Location": "<script>alert(1)</script>"}}},
    {"url": "/", "tag": "home", "expect": {"status": 200}},
    {"url": "http://127.0.0.1:1/", "tag": "down"},
]


def junit_of(nginx: NginxServer, tmp_path: Path, *more: str) -> junitparser.JUnitXml:
    records = tmp_path / "r.jsonl"
    records.write_text("".join(json.dumps(line) + "\n" for line in LINES))
    out = tmp_path / "junit.xml"
    args = ["run", str(records), "-t", nginx.url, "-q", "--junit", str(out), "--timeout", "2"]
    assert main([*args, *more]) == 1
    return junitparser.JUnitXml.fromfile(str(out))


def cases(xml: junitparser.JUnitXml) -> dict[str, junitparser.TestCase]:
    return {case.name: case for suite in xml for case in suite}


def test_a_testcase_per_group(nginx: NginxServer, tmp_path: Path) -> None:
    by_name = cases(junit_of(nginx, tmp_path))
    assert set(by_name) == {"GET /r/{id}", "home", "down"}
    assert by_name["home"].is_passed
    [failure] = by_name["GET /r/{id}"].result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "1 of 2 responses did not match"
    assert "expected <script>alert(1)</script>, got https://example.org/r/2" in failure.text
    [error] = by_name["down"].result
    assert isinstance(error, junitparser.Error) and "refused" in (error.text or "")


def test_a_testcase_per_record(nginx: NginxServer, tmp_path: Path) -> None:
    xml = junit_of(nginx, tmp_path, "--junit-per-record")
    by_name = cases(xml)
    assert len(by_name) == 4
    [bad] = [case for name, case in by_name.items() if ":2 GET /r/2" in name]
    [failure] = bad.result
    assert "header location: expected <script>" in failure.text
    suite = next(iter(xml))
    assert (suite.tests, suite.failures, suite.errors) == (4, 1, 1)


def test_junit_is_escaped_xml(nginx: NginxServer, tmp_path: Path) -> None:
    junit_of(nginx, tmp_path)
    raw = (tmp_path / "junit.xml").read_text()
    assert "<script>" not in raw and "&lt;script&gt;" in raw


@pytest.mark.parametrize("flag", ["--junit-per-record", "--results"])
def test_what_needs_every_outcome_stays_in_one_process(
    tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "http://127.0.0.1:1/"}\n')
    args = ["run", str(records), "-w", "2", "-c", "2", flag]
    assert main(args + ([str(tmp_path / "x")] if flag == "--results" else [])) == 2
    assert f"{flag} needs the run in one process" in capsys.readouterr().err


def slow_server(delay: float) -> ThreadServer:
    """Keep-alive; each response after ``delay`` seconds, so that concurrent requests' latencies
    add up to many times the run's wall time."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (await read_request(reader)) is not None:
            await asyncio.sleep(delay)
            writer.write(response(200, b"ok"))
            await writer.drain()

    return ThreadServer(handler)


@pytest.mark.parametrize("per_record", [False, True])
def test_testcase_time_is_wall_time(tmp_path: Path, per_record: bool) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/a", "tag": "a"}\n{"url": "/b", "tag": "b"}\n')
    out, summary = tmp_path / "junit.xml", tmp_path / "summary.json"
    with slow_server(0.02) as server:
        args = ["run", str(records), "-t", server.url, "-q", "-c", "20", "-n", "400"]
        args += ["--junit", str(out), "--json", str(summary)]
        assert main([*args, *(["--junit-per-record"] if per_record else [])]) == 0
    elapsed = json.loads(summary.read_text())["duration_s"]
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None and float(suite.get("time", "")) == pytest.approx(elapsed, abs=1e-3)
    testcases = suite.findall("testcase")
    assert len(testcases) == 2
    for case in testcases:
        # The time is wall time, however many of the case's requests overlapped...
        assert 0 < float(case.get("time", "")) <= elapsed + 1e-3
        # ...and the latencies are properties: 200 requests of 20 ms each add up to 4 s or so.
        named = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert named["requests"] == "200" and float(named["latency_total_s"] or 0) >= 200 * 0.02
        assert float(named["latency_mean_ms"] or 0) >= 20
    assert sum(float(case.get("time", "")) for case in testcases) == pytest.approx(elapsed, 0.01)
