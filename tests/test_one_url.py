"""One URL where the records file goes, as hey and oha users type it: ``tether run URL`` with
``-m``, ``-H``, ``--body``/``--body-file`` and ``--expect-status``/``--expect-header``. It
used to say "records file 'http://...' not found"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import write_records
from servers import EchoServer, response
from tether.cli import main


def test_a_url_is_sent_as_often_as_asked_over_its_connections(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with EchoServer() as srv:
        status = main(["run", f"{srv.url}/health", "-c", "4", "-n", "200", "--json", str(out)])
        sent = srv.captured
        accepted = srv.accepted
    assert status == 0
    doc = json.loads(out.read_text())
    assert doc["requests"] == doc["ok"] == len(sent) == 200
    assert {(c.request.method, c.target) for c in sent} == {("GET", "/health")}
    assert doc["connections"]["opened"] == accepted == 4


def test_method_headers_and_body_come_from_the_flags(tmp_path: Path) -> None:
    with EchoServer() as srv:
        args = ["run", f"{srv.url}/items?x=1", "-m", "post", "-H", "X-Trace: abc"]
        args += ["-H", "Content-Type: application/json", "--body", '{"a": 1}']
        assert main(args) == 0
        (sent,) = srv.captured
    assert sent.request.method == "POST" and sent.target == "/items?x=1"
    assert sent.values("X-Trace") == ["abc"]
    assert sent.values("Content-Type") == ["application/json"]
    assert sent.body == b'{"a": 1}' and sent.values("Content-Length") == ["8"]


def test_a_body_file_is_sent_byte_for_byte(tmp_path: Path) -> None:
    body = bytes(range(256)) * 4
    (tmp_path / "body.bin").write_bytes(body)
    with EchoServer() as srv:
        args = ["run", f"{srv.url}/upload", "-m", "PUT", "--body-file", str(tmp_path / "body.bin")]
        assert main(args) == 0
        (sent,) = srv.captured
    assert sent.request.method == "PUT" and sent.body == body


def test_the_check_comes_from_the_expect_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    with EchoServer() as srv:
        args = ["run", f"{srv.url}/", "-n", "5", "--expect-status", "201"]
        args += ["--expect-status", "202", "--expect-header", "X-Served-By: blue"]
        status = main([*args, "--json", str(out)])
    doc = json.loads(out.read_text())
    assert status == 1 and doc["mismatches"] == 5
    fields = {example["field"] for example in doc["mismatch_examples"]}
    assert fields == {"status", "header x-served-by"}

    with EchoServer() as srv:
        assert main(["run", f"{srv.url}/", "-n", "3", "--expect-status", "200"]) == 0


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["-H", "no colon here"], "-H 'no colon here': give it as 'Name: value'"),
        (["-H", "Bad Name: x"], "invalid header name"),
        (["-m", "GE T"], "must be an HTTP method"),
        (["--body", "x", "--body-file", "README.md"], "give --body or --body-file, not both"),
        (["--expect-header", "X-A"], "--expect-header 'X-A': give it as 'Name: value'"),
        (["-H", "Transfer-Encoding: chunked"], "-H: a Transfer-Encoding header ('chunked')"),
        (["-H", "Content-Length: 5", "--body", "abc"], "-H: Content-Length '5' is not the"),
    ],
)
def test_a_bad_flag_is_a_usage_error_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], flags: list[str], said: str
) -> None:
    with EchoServer() as srv:
        status = main(["run", f"{srv.url}/", *flags])
        assert srv.captured == []
    assert status == 2
    assert said in capsys.readouterr().err


def test_the_url_flags_with_a_records_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 2, lambda i: {"url": f"/p/{i}"})
    with EchoServer() as srv:
        status = main(["run", str(records), "-t", srv.url, "--body", "x", "-m", "POST"])
        assert srv.captured == []
    assert status == 2
    assert "--method, --body go with a URL in place of the records file" in (
        capsys.readouterr().err
    )


def test_h_with_a_records_file_sets_the_header_on_every_record(tmp_path: Path) -> None:
    records = write_records(
        tmp_path / "r.jsonl", 2, lambda i: {"url": f"/p/{i}", "headers": {"x-a": "own", "X-B": "b"}}
    )
    with EchoServer() as srv:
        status = main(["run", str(records), "-t", srv.url, "-H", "X-A: given", "-q"])
        heads = [request.head.lower() for request in srv.captured]
    assert status == 0
    assert len(heads) == 2
    for head in heads:
        assert head.count(b"x-a:") == 1 and b"x-a: given" in head and b"x-b: b" in head


def test_h_with_a_records_file_never_frames_a_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 1, lambda i: {"url": "/"})
    status = main(["run", str(records), "-t", "http://127.0.0.1:1", "-H", "Content-Length: 5"])
    assert status == 2
    assert "-H Content-Length: tether frames every record's body itself" in capsys.readouterr().err


def test_a_url_splits_over_workers_like_a_records_file(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with EchoServer() as srv:
        args = ["run", f"{srv.url}/w", "-m", "DELETE", "-c", "4", "-n", "401", "--workers", "2"]
        assert main([*args, "--json", str(out)]) == 0
        sent = srv.captured
    assert json.loads(out.read_text())["requests"] == len(sent) == 401
    assert {(c.request.method, c.target) for c in sent} == {("DELETE", "/w")}


def test_a_url_with_a_duration_is_sent_until_the_time_is_up(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with EchoServer() as srv:
        assert main(["run", f"{srv.url}/d", "-c", "2", "-d", "300ms", "--json", str(out)]) == 0
        sent = len(srv.captured)
    doc = json.loads(out.read_text())
    assert doc["requests"] == sent > 10 and 0.25 <= doc["duration_s"] < 2


@pytest.mark.parametrize(
    ("flags", "code"),
    [([], 1), (["--expect-status", "any"], 0), (["--expect-status", "404"], 0)],
)
def test_a_url_run_expects_2xx_or_3xx_unless_told(
    capsys: pytest.CaptureFixture[str], flags: list[str], code: int
) -> None:
    with EchoServer({"/missing": response(404, b"no")}) as srv:
        status = main(["run", f"{srv.url}/missing", "-n", "3", *flags])
    out = " ".join(capsys.readouterr().out.split())  # the terminal's wrapping undone
    assert status == code, out
    said = "A run of one URL expects a 2xx or 3xx status unless --expect-status says otherwise"
    assert (said in out) is (code == 1)
    if code == 1:
        assert "3 of 3 responses did not match" in out and "2xx or 3xx" in out


def test_expect_status_takes_a_status_or_any(capsys: pytest.CaptureFixture[str]) -> None:
    for given, said in (
        (["abc"], "--expect-status 'abc': give a status from 100 to 599, or any"),
        (["700"], "--expect-status '700': give a status from 100 to 599, or any"),
        (["any", "200"], "--expect-status any takes any status: give it alone"),
    ):
        flags = [arg for value in given for arg in ("--expect-status", value)]
        assert main(["run", "http://127.0.0.1:1/", *flags]) == 2
        assert said in capsys.readouterr().err
