"""Thresholds: parsed as k6 writes them, judged on a real run, a failed one is exit 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers import NginxServer
from tether.cli import main
from tether.errors import InputError
from tether.thresholds import Threshold, parse_threshold


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p99<250ms", Threshold("p99<250ms", "p99", "<", 250.0)),
        ("p99.9 <= 1.5s", Threshold("p99.9 <= 1.5s", "p99.9", "<=", 1500.0)),
        ("mean<800us", Threshold("mean<800us", "mean", "<", 0.8)),
        ("p50<3", Threshold("p50<3", "p50", "<", 3.0)),
        ("error_rate<0.1%", Threshold("error_rate<0.1%", "error_rate", "<", 0.001)),
        ("reuse>0.99", Threshold("reuse>0.99", "reuse", ">", 0.99)),
        ("connections<=4", Threshold("connections<=4", "connections", "<=", 4.0)),
    ],
)
def test_parse(text: str, expected: Threshold) -> None:
    assert parse_threshold(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p99", "write it as FIGURE<LIMIT"),
        ("p99 == 3ms", "write it as FIGURE<LIMIT"),
        ("p99<5%", "a latency takes us, ms or s"),
        ("reuse>99ms", "a rate takes a percentage"),
        ("speed>3", "unknown figure"),
        ("connections<4ms", "unknown figure or unit"),
        ("p99<1.2.3ms", "is not a number"),
    ],
)
def test_bad_thresholds(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_threshold(text)


def run(nginx: NginxServer, tmp_path: Path, *thresholds: str) -> tuple[int, dict[str, object]]:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/", "expect": {"status": 200}}\n')
    out = tmp_path / "s.json"
    args = ["run", str(records), "-t", nginx.url, "-n", "200", "-q", "--json", str(out)]
    code = main([*args, *(a for t in thresholds for a in ("--threshold", t))])
    return code, json.loads(out.read_text())


def test_thresholds_that_hold(nginx: NginxServer, tmp_path: Path) -> None:
    code, doc = run(nginx, tmp_path, "p99<10s", "error_rate<0.1%", "reuse>99%", "connections<=1")
    assert code == 0 and doc["gate_failures"] == []
    results = doc["thresholds"]
    assert isinstance(results, list) and [r["ok"] for r in results] == [True] * 4
    assert results[2]["value"] == 0.995  # 199 of 200 requests on a reused connection


def test_a_failed_threshold_fails_the_run(nginx: NginxServer, tmp_path: Path) -> None:
    code, doc = run(nginx, tmp_path, "p50<1us", "failure_rate<1%")
    assert code == 3
    [failure] = doc["gate_failures"]  # type: ignore[misc]
    assert failure.startswith("threshold p50<1us failed: the run's value was ")
    assert failure.endswith(" ms")


def test_a_bad_threshold_sends_nothing(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = nginx.stub_status()["requests"]
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/"}\n')
    assert main(["run", str(records), "-t", nginx.url, "--threshold", "fast"]) == 2
    assert "--threshold 'fast'" in capsys.readouterr().err
    assert nginx.stub_status()["requests"] == before + 1  # only this stub_status call
