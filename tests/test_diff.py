"""tether diff: a primary and a candidate that differ in one field and share one random field;
the random one is noise only a secondary can reveal."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from servers import ThreadServer, json_server
from tether.cli import main
from tether.diff import Differences, compare, fields
from tether.model import Outcome, Record


def service(version: int) -> ThreadServer:
    """JSON with a random "id" on every response, and "v" set to ``version``."""
    return json_server(
        lambda target: {"path": target, "id": secrets.token_hex(4), "v": version, "tags": ["a"]}
    )


@pytest.fixture
def records(tmp_path: Path) -> Path:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"url": f"/users/{i}"}) + "\n" for i in range(6)))
    return path


def run_diff(tmp_path: Path, records: Path, *targets: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "diff.json"
    code = main(["diff", str(records), *targets, "--json", str(out), "-c", "2"])
    return code, json.loads(out.read_text())


def test_without_a_secondary_the_random_field_shows_as_a_difference(
    records: Path, tmp_path: Path
) -> None:
    with service(1) as primary, service(2) as candidate:
        code, doc = run_diff(
            tmp_path, records, "--primary", primary.url, "--candidate", candidate.url
        )
    assert code == 1 and doc["records"] == 6 and doc["records_differing"] == 6
    assert {(d["field"], d["count"]) for d in doc["differences"]} == {
        ("body $.v", 6),
        ("body $.id", 6),
    }
    [v] = [d for d in doc["differences"] if d["field"] == "body $.v"]
    assert v["group"] == "GET /users/{id}"
    assert (v["examples"][0]["primary"], v["examples"][0]["candidate"]) == ("1", "2")


def with_secondary(tmp_path: Path, records: Path, candidate_v: int) -> tuple[int, dict[str, Any]]:
    with service(1) as primary, service(1) as secondary, service(candidate_v) as candidate:
        return run_diff(
            tmp_path,
            records,
            "--primary", primary.url,
            "--candidate", candidate.url,
            "--secondary", secondary.url,
        )  # fmt: skip


def test_a_secondary_filters_the_noise(records: Path, tmp_path: Path) -> None:
    code, doc = with_secondary(tmp_path, records, candidate_v=2)
    assert code == 1
    assert [d["field"] for d in doc["differences"]] == ["body $.v"]
    assert [n["field"] for n in doc["noise"]] == ["body $.id"]


def test_the_same_service_has_no_differences(records: Path, tmp_path: Path) -> None:
    code, doc = with_secondary(tmp_path, records, candidate_v=1)
    assert code == 0 and doc["differences"] == []


def test_fields_of_a_response() -> None:
    record = Record("GET", "/")
    body = b'{"a": {"b": [1, {"c": null}]}, "e": {}}'
    got = fields(Outcome(record, status=200, headers={"x": "1", "date": "now"}, body=body))
    assert got == {
        "status": "200",
        "header x": "1",
        "body $.a.b[0]": "1",
        "body $.a.b[1].c": "null",
        "body $.e": "{}",
    }
    assert fields(Outcome(record, error="refused", error_kind="connect")) == {"error": "connect"}
    assert set(fields(Outcome(record, status=200, headers={}, body=b"<html>"))) == {
        "status",
        "body sha256",
    }


def test_compare_and_count() -> None:
    assert compare({"a": "1", "b": "2"}, {"a": "1", "c": "3"}) == {
        "b": ("2", "(absent)"),
        "c": ("(absent)", "3"),
    }
    found = Differences()
    for i in range(5):
        found.add("g", f"r:{i}", {"v": "1"}, {"v": "2"}, None)
    assert found.to_dict()["differences"][0]["count"] == 5
    assert len(found.to_dict()["differences"][0]["examples"]) == 3
