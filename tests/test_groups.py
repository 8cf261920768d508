"""Per-group results: templates, the bound on groups, and a run's groups against nginx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tether
from servers import NginxServer
from tether.cli import main
from tether.metrics.groups import MAX_GROUPS, OTHER, Groups, group_key, template
from tether.model import Expect, Record


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/users/42/posts", "/users/{id}/posts"),
        ("/r/c0042?x=1", "/r/{id}"),
        ("/api/v1/items", "/api/v1/items"),
        ("/o/123e4567-e89b-12d3-a456-426614174000", "/o/{id}"),
        ("/blob/deadbeefdeadbeef00", "/blob/{id}"),
        ("/", "/"),
    ],
)
def test_template(path: str, expected: str) -> None:
    assert template(path) == expected


def test_tag_wins_over_the_template() -> None:
    assert group_key("GET", "/users/1", "") == "GET /users/{id}"
    assert group_key("GET", "/users/1", "login") == "login"


def test_groups_are_bounded() -> None:
    groups = Groups()
    for i in range(MAX_GROUPS + 30):
        groups.get(f"g{i}").requests += 1
    assert len(groups.by_key) == MAX_GROUPS + 1
    assert groups.by_key[OTHER].requests == 30


def test_a_run_reports_each_group(nginx: NginxServer) -> None:
    records = [Record("GET", f"/r/{i}", expect=Expect(status=(302,))) for i in range(30)]
    records += [Record("GET", "/", tag="home", expect=Expect(status=(201,))) for _ in range(5)]
    doc = tether.run(records, target=nginx.url).to_dict()
    by_name = {g["group"]: g for g in doc["groups"]}
    assert set(by_name) == {"GET /r/{id}", "home"}
    assert by_name["GET /r/{id}"]["requests"] == by_name["GET /r/{id}"]["ok"] == 30
    assert by_name["home"]["mismatches"] == 5
    assert by_name["home"]["latency_ms"]["p50"] > 0
    assert doc["groups"][0]["group"] == "GET /r/{id}"  # busiest first


def test_text_summary_lists_the_groups(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [{"url": "/", "tag": "home"}, {"url": "/r/1", "tag": "[bold]short[/]"}] * 3
    records = tmp_path / "r.jsonl"
    records.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["run", str(records), "-t", nginx.url]) == 0
    out = capsys.readouterr().out
    assert "groups (2)" in out
    assert "[bold]short[/]" in out  # a tag is shown as written, never read as markup
