"""A byte that is not UTF-8 spoils its own record only, in every input format: the error names
its line (and file), every other record is sent, as the server counts them; on standard input
too, and --strict still sends nothing. An access log's path bytes go out percent-encoded (a
raw byte, or nginx's ``\\xHH`` for it); a HAR's bad byte is one error naming its line and
offset, the entries before it sent."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import redirect_record
from servers import EchoServer, NginxFactory, NginxServer
from test_records_formats import har_entry, wait_for_lines
from tether.cli import main
from tether.records import har


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    """``tether run ARGV --json -``: (exit status, the summary document, standard error)."""
    status = main(["run", *argv, "--json", "-"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def jsonl_with_a_bad_byte(path: Path) -> Path:
    """10,000 records the test nginx answers as expected; line 5000's URL holds ``\\xff``."""
    lines = [json.dumps(redirect_record(i)).encode() + b"\n" for i in range(10_000)]
    lines[4_999] = b'{"url": "/r/\xff"}\n'
    path.write_bytes(b"".join(lines))
    return path


BAD_5000 = "not valid UTF-8: byte 0xFF at column 13 (invalid start byte)"


def test_a_bad_byte_in_jsonl_spoils_its_line_only(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = jsonl_with_a_bad_byte(tmp_path / "r.jsonl")
    before = nginx.stub_status()["requests"]
    status, doc, err = run_json(capsys, str(records), "-t", nginx.url)
    served = nginx.stub_status()["requests"] - before - 1  # less the second status read
    assert status == 2
    assert doc["requests"] == doc["ok"] == served == 9_999
    assert doc["input_errors"] == 1
    assert doc["input_error_examples"] == [
        {"source": str(records), "line": 5000, "error": BAD_5000}
    ]
    assert f"r.jsonl:5000: {BAD_5000}" in " ".join(err.split())  # rich wraps long lines


def test_a_bad_byte_on_standard_input_spoils_its_line_only(
    nginx: NginxServer, tmp_path: Path
) -> None:
    records = jsonl_with_a_bad_byte(tmp_path / "r.jsonl")
    out = tmp_path / "s.json"
    before = nginx.stub_status()["requests"]
    with records.open("rb") as stdin:  # a real pipe into a real process
        argv = ["run", "-", "-t", nginx.url, "--json", str(out), "-q"]
        done = subprocess.run(
            [sys.executable, "-m", "tether", *argv], stdin=stdin, capture_output=True, timeout=120
        )
    served = nginx.stub_status()["requests"] - before - 1
    assert done.returncode == 2, done.stderr
    doc = json.loads(out.read_text())
    assert doc["requests"] == doc["ok"] == served == 9_999
    assert doc["input_error_examples"] == [{"source": "<stdin>", "line": 5000, "error": BAD_5000}]


def test_strict_names_the_bad_byte_and_sends_nothing(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = jsonl_with_a_bad_byte(tmp_path / "r.jsonl")
    before = nginx.stub_status()["requests"]
    status = main(["run", str(records), "-t", nginx.url, "--strict"])
    assert nginx.stub_status()["requests"] - before == 1  # the second status read alone
    err = capsys.readouterr().err
    assert status == 2 and f"r.jsonl:5000: {BAD_5000}" in err and "nothing was sent" in err


# --- the other line formats: the record holding the byte, and only it, is skipped --------------

# Each: (name, format, the file's lines with {url} for the server's, the bad line's number, the
# error's text, the paths the server must receive).
CASES = [
    (
        "vegeta.txt",
        "vegeta",
        ["GET {url}/v/1", "X-A: 1", "", "GET {url}/v/2", b"X-A: caf\xff", "", "GET {url}/v/3"],
        5,
        "byte 0xFF at column 9 (invalid start byte); the record from line 4 is skipped",
        ["/v/1", "/v/3"],
    ),
    (
        "targets.json",
        "vegeta-json",
        [
            '{"method": "GET", "url": "/j/1"}',
            b'{"method": "GET", "url": "/j/2", "header": {"X-A": ["caf\xff"]}}',
            '{"method": "GET", "url": "/j/3"}',
        ],
        2,
        "byte 0xFF at column 57 (invalid start byte)",
        ["/j/1", "/j/3"],
    ),
    (
        "c.curl",
        "curl",
        ["curl {url}/c/1", "curl {url}/c/2 \\", b"  -H 'X-A: caf\xe9'", "curl {url}/c/3"],
        3,
        "byte 0xE9 at column 15 (invalid continuation byte); the record from line 2 is skipped",
        ["/c/1", "/c/3"],
    ),
    (
        "r.csv",
        "csv",
        ["url,header.X-A", "/s/1,a", b'/s/2,"two', b'caf\xff lines"', "/s/3,b"],
        4,
        "byte 0xFF at column 4 (invalid start byte); the record from line 3 is skipped",
        ["/s/1", "/s/3"],
    ),
]


@pytest.mark.parametrize(
    ("name", "fmt", "lines", "line", "problem", "sent"), CASES, ids=[c[1] for c in CASES]
)
def test_a_bad_byte_spoils_its_record_only(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    fmt: str,
    lines: list[str | bytes],
    line: int,
    problem: str,
    sent: list[str],
) -> None:
    with EchoServer() as server:
        path = tmp_path / name
        raw = [text if isinstance(text, bytes) else text.encode() for text in lines]
        path.write_bytes(b"\n".join(raw).replace(b"{url}", server.url.encode()) + b"\n")
        status, doc, _ = run_json(capsys, str(path), "-t", server.url)
        assert [c.target for c in server.captured] == sent
    assert status == 2 and doc["requests"] == doc["ok"] == len(sent)
    error = {"source": str(path), "line": line, "error": f"not valid UTF-8: {problem}"}
    assert doc["input_errors"] == 1 and doc["input_error_examples"] == [error], fmt


# --- access logs: the path's bytes go out percent-encoded, as servers logged them --------------


def log_line(target: bytes, agent: bytes = b"curl/8.5") -> bytes:
    """One line of the combined format, with these bytes as they are."""
    request = b'"GET %s HTTP/1.1" 200 6 "-" "%s"\n' % (target, agent)
    return b"127.0.0.1 - - [27/Nov/2026:10:00:00 +0000] " + request


def test_a_raw_byte_in_a_logged_path_is_sent_percent_encoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "access.log"
    targets = [b"/a/1", b"/caf\xff/x", b"/caf\\xC3\\xA9", b"/a/4", b"/a/5"]
    lines = [log_line(t) for t in targets]
    lines[3] = log_line(b"/a/4", agent=b"Mozilla \xff\xfe")  # a bad byte nothing sends
    log.write_bytes(b"".join(lines))
    with EchoServer() as server:
        status, doc, _ = run_json(capsys, str(log), "-t", server.url)
        received = [c.target for c in server.captured]
    # Line 2's raw byte and line 3's nginx escape of two (an é), each percent-encoded.
    assert received == ["/a/1", "/caf%FF/x", "/caf%C3%A9", "/a/4", "/a/5"]
    assert status == 0 and doc["requests"] == doc["ok"] == 5 and doc["input_errors"] == 0


def test_nginx_logs_a_raw_byte_escaped_and_it_replays_percent_encoded(
    nginx_factory: NginxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "access.log"
    nginx = nginx_factory(server=f"access_log {log} combined;")
    for target in (b"/a/1", b"/caf\xff/x", b"/a/3"):
        with socket.create_connection(("127.0.0.1", nginx.port), timeout=5) as raw:
            raw.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target)
            while raw.recv(65536):  # to the close, bounded by the timeout
                pass
    wait_for_lines(log, 3)
    assert b'"GET /caf\\xFF/x HTTP/1.1"' in log.read_bytes()  # how nginx writes the byte
    with EchoServer() as server:
        status, doc, _ = run_json(capsys, str(log), "-t", server.url)
        assert [c.target for c in server.captured] == ["/a/1", "/caf%FF/x", "/a/3"]
    assert status == 0 and doc["input_errors"] == 0


# --- HAR: one document, so one error naming the byte's line and offset --------------------------


def test_a_bad_byte_in_a_har_is_one_error_naming_its_line_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EchoServer() as server:
        entries = [har_entry("GET", f"{server.url}/h/{n}") for n in (1, 2, 3)]
        doc = {"log": {"version": "1.2", "creator": {"name": "test"}, "entries": entries}}
        text = json.dumps(doc, indent=1).encode().replace(b"/h/2", b"/h/\xff")
        archive = tmp_path / "s.har"
        archive.write_bytes(text)
        offset = text.index(b"\xff")
        line, column = text[:offset].count(b"\n") + 1, offset - text.rfind(b"\n", 0, offset)
        status, summary, err = run_json(capsys, str(archive), "-t", server.url)
        assert [c.target for c in server.captured] == ["/h/1"]  # the entry before it
    where = f"line {line}, column {column}, offset {offset}"
    problem = f"not valid UTF-8: byte 0xFF at {where} (invalid start byte)"
    [error] = summary["input_error_examples"]
    assert status == 2 and summary["input_errors"] == 1 and error["line"] == 2  # entry 2
    assert error["error"] == f"{problem}; nothing after it can be read"
    assert "Traceback" not in err


def test_a_lone_surrogate_escape_in_a_har_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "s.har"
    archive.write_text('{"log": {"entries": [{"request": {"method": "GET", "url": "/\\udcff"}}]}}')
    with EchoServer() as server:
        status, summary, _ = run_json(capsys, str(archive), "-t", server.url)
        assert server.captured == []
    [error] = summary["input_error_examples"]
    assert status == 2 and "lone surrogate" in error["error"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
def test_the_har_check_names_the_byte_wherever_reads_split_it(size: int) -> None:
    # "é" and "𝄞" before the bad byte, and one split across reads: the line, column and
    # offset stay the byte's own, and every byte before it is handed over.
    text = "a\né𝄞\nxy".encode() + b"\xe2\x82(tail\n"
    checked = har._Utf8(io.BytesIO(text))
    got = b""
    with pytest.raises(har._NotUtf8, match=r"byte 0xE2 at line 3, column 3, offset 11 "):
        for _ in range(len(text) + 2):  # bounded: each read takes a byte or ends it
            got += checked.read(size)
    assert text.startswith(got) and len(got) >= 11  # all 11 bytes before the bad one
