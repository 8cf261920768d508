"""JUnit XML from a real run, read back by a real JUnit parser (junitparser)."""

from __future__ import annotations

import json
from pathlib import Path

import junitparser
import pytest

from servers import NginxServer
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
