"""The config file: its settings are the run's defaults, flags win, mistakes are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers import NginxServer
from tether.cli import main


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # where tether looks for its config
    path = tmp_path / "r.jsonl"
    path.write_text('{"url": "/", "expect": {"status": 200}}\n')
    return path


def summary(records: Path, nginx: NginxServer, *more: str) -> tuple[int, dict[str, object]]:
    out = records.parent / "s.json"
    code = main(["run", str(records), "-t", nginx.url, "-q", "--json", str(out), *more])
    return code, json.loads(out.read_text())


def test_tether_toml_sets_the_defaults(records: Path, nginx: NginxServer) -> None:
    (records.parent / "tether.toml").write_text(
        'concurrency = 3\nrequests = 30\nthreshold = ["p99<10s", "reuse>50%"]\n'
        "max-idle-per-host = 3\n"
    )
    code, doc = summary(records, nginx)
    assert code == 0 and doc["concurrency"] == 3 and doc["requests"] == 30
    assert [t["threshold"] for t in doc["thresholds"]] == ["p99<10s", "reuse>50%"]  # type: ignore[attr-defined]
    code, doc = summary(records, nginx, "-c", "2")  # a flag wins
    assert doc["concurrency"] == 2 and doc["requests"] == 30


def test_pyproject_tool_tether(records: Path, nginx: NginxServer) -> None:
    (records.parent / "pyproject.toml").write_text("[tool.tether]\nrequests = 7\n")
    assert summary(records, nginx)[1]["requests"] == 7


def test_an_explicit_config(records: Path, nginx: NginxServer) -> None:
    other = records.parent / "ci.toml"
    other.write_text("requests = 5\n")
    assert summary(records, nginx, "--config", str(other))[1]["requests"] == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "concurency = 3\n",
            "tether.toml: unknown setting 'concurency' (did you mean 'concurrency'?)",
        ),
        ("concurrency = \n", "tether.toml: not valid TOML"),
        ('concurrency = "many"\n', "'many' is not a valid integer"),
    ],
)
def test_config_mistakes_are_named(
    records: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (records.parent / "tether.toml").write_text(text)
    assert main(["run", str(records), "-t", "http://127.0.0.1:1", "-q"]) == 2
    assert message in capsys.readouterr().err
