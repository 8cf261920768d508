"""Golden capture: records written back with a known-good service's responses as their
expectations pass against that service, and fail where a candidate differs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from servers import NginxServer, ThreadServer, json_server
from tether.capture import Capture, drop, expectations, parse_json_path
from tether.cli import main
from tether.errors import InputError
from tether.model import BodyExpect, HeaderExpect, Outcome, Record

STAMPS = itertools.count()


def json_service(name: str) -> ThreadServer:
    """JSON whose "timestamp" and item ids change on every response."""

    def make(target: str) -> dict[str, object]:
        items = [{"id": next(STAMPS), "v": 1}, {"id": next(STAMPS), "v": 2}]
        return {"path": target, "name": name, "timestamp": next(STAMPS), "items": items}

    return json_server(make, [("X-Version", "3")])


@pytest.fixture
def records(tmp_path: Path) -> Path:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"url": f"/things/{i}"}) + "\n" for i in range(5)))
    return path


def capture(records: Path, url: str, out: Path, *more: str) -> int:
    return main(["record", str(records), "-t", url, "-o", str(out), *more])


def replay(golden: Path, url: str) -> dict[str, object]:
    summary = golden.with_suffix(".summary.json")
    main(["run", str(golden), "-t", url, "-q", "--json", str(summary)])
    doc: dict[str, object] = json.loads(summary.read_text())
    return doc


def test_golden_records_pass_against_their_service_and_catch_a_change(
    records: Path, tmp_path: Path
) -> None:
    golden = tmp_path / "golden.jsonl"
    ignore = ["--ignore-json-path", "$.timestamp", "--ignore-json-path", "$.items[*].id"]
    with json_service("primary") as primary:
        assert capture(records, primary.url, golden, "--keep-header", "X-Version", *ignore) == 0
        first = json.loads(golden.read_text().splitlines()[0])
        assert first["expect"] == {
            "status": 200,
            "headers": {"x-version": "3"},
            "body": {
                "json": {"path": "/things/0", "name": "primary", "items": [{"v": 1}, {"v": 2}]}
            },
        }
        again = replay(golden, primary.url)
        assert again["ok"] == 5 and again["mismatches"] == 0
    with json_service("candidate") as candidate:
        changed = replay(golden, candidate.url)
    assert changed["mismatches"] == 5
    assert changed["mismatch_examples"][0]["field"] == "body.json $.name"  # type: ignore[index]


def test_without_ignoring_volatile_fields_the_service_fails_itself(
    records: Path, tmp_path: Path
) -> None:
    golden = tmp_path / "golden.jsonl"
    with json_service("primary") as primary:
        assert capture(records, primary.url, golden) == 0
        assert replay(golden, primary.url)["mismatches"] == 5  # the timestamp moved on


def test_nginx_text_and_redirects(nginx: NginxServer, tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "/"}\n{"url": "/r/abc"}\n')
    golden = tmp_path / "golden.jsonl"
    assert capture(records, nginx.url, golden) == 0
    text, redirect = (json.loads(line)["expect"] for line in golden.read_text().splitlines())
    assert text["status"] == 200 and len(text["body"]["sha256"]) == 64
    assert redirect["headers"] == {"location": "https://example.org/r/abc"}
    assert replay(golden, nginx.url)["ok"] == 2


def test_unanswered_records_are_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text('{"url": "http://127.0.0.1:1/"}\n')
    golden = tmp_path / "golden.jsonl"
    assert capture(records, "http://127.0.0.1:1", golden, "--timeout", "2") == 1
    assert golden.read_text() == ""
    assert "r.jsonl:1: not captured" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$.a.b", ("a", "b")),
        ("$.items[*].id", ("items", None, "id")),
        ("$['odd key'][2]", ("odd key", 2)),
        ("$.*.updated_at", (None, "updated_at")),
    ],
)
def test_json_paths(path: str, steps: tuple[object, ...]) -> None:
    assert parse_json_path(path) == steps


@pytest.mark.parametrize("bad", ["a.b", "$", "$.a..b", "$[x]"])
def test_bad_json_paths(bad: str) -> None:
    with pytest.raises(InputError, match="--ignore-json-path"):
        parse_json_path(bad)


def test_drop_leaves_lists_their_length() -> None:
    doc = {"a": {"t": 1, "k": 2}, "items": [{"id": 1, "v": 1}, {"id": 2}], "n": [1, 2]}
    for path in ("$.a.t", "$.items[*].id", "$.n[0]", "$.missing.x"):
        drop(doc, parse_json_path(path))
    assert doc == {"a": {"k": 2}, "items": [{"v": 1}, {}], "n": [1, 2]}


def test_volatile_headers_cannot_be_kept() -> None:
    with pytest.raises(InputError, match="--keep-header date, set-cookie: changes on every"):
        Capture.from_options(["Date", "Set-Cookie", "X-Version"], [])


def test_expectations_from_an_outcome() -> None:
    record = Record("GET", "/")
    plain = Outcome(record, status=201, headers={"location": "/x"}, body=b"\xff\x00")
    expect = expectations(plain, Capture())
    assert expect is not None and expect.status == (201,)
    assert expect.headers == (HeaderExpect("location", "equals", "/x"),)
    assert expect.body[0].rule == "sha256"
    assert expectations(Outcome(record, error="refused"), Capture()) is None
    scalar = Outcome(record, status=200, headers={}, body=b"42")
    assert (expectations(scalar, Capture()) or plain).body == (
        BodyExpect("sha256", "73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049"),
    )
