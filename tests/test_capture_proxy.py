"""``tether capture``: the reverse proxy in front of real nginx and of small servers of the
tests' own, driven by curl, by tether itself and by raw sockets (the hostile clients)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capturing import (
    CountingUpstream,
    body_of,
    capturing,
    exchange,
    free_port,
    records,
    status_of,
)
from servers import NginxServer

TETHER = [sys.executable, "-m", "tether"]

JSON_LOCATIONS = """
    location = /j {{ default_type application/json; return 200 '{{"id": 7, "name": "x"}}'; }}
    location = /auth {{ default_type text/plain; return 200 "$http_authorization|$http_cookie"; }}
    location = /k64 {{ alias {k64}; }}
    location = /empty {{ return 204; }}
"""


def k64_body() -> bytes:
    """The 64 KiB body nginx serves at /k64."""
    return bytes(range(256)) * 256


@pytest.fixture(scope="module")
def upstream(nginx_factory, tmp_path_factory: pytest.TempPathFactory) -> NginxServer:
    """nginx with a JSON route, a 64 KiB file, an echo of the secret headers and a 204."""
    k64 = tmp_path_factory.mktemp("k64") / "k64.bin"
    k64.write_bytes(k64_body())
    return nginx_factory(locations=JSON_LOCATIONS.format(k64=k64))


def run_tether(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``tether args`` to its end."""
    return subprocess.run(
        [*TETHER, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


def curl(url: str, *args: str) -> tuple[int, str, str, bytes]:
    """Status, Content-Type, Location and body of one curl request (its own connection)."""
    out = subprocess.run(
        ["curl", "-s", "-D", "-", *args, url], capture_output=True, timeout=30, check=True
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    fields = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status_of(head), fields.get("content-type", ""), fields.get("location", ""), body


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_ten_curl_requests_come_back_as_nginx_sent_them_and_replay_clean(
    upstream: NginxServer, tmp_path: Path
) -> None:
    paths = ["/", "/r/a", "/k64", "/j", "/r/b?x=1", "/", "/k64", "/j", "/r/c", "/"]
    out = tmp_path / "records.jsonl"
    with capturing(upstream.url, out) as proxy:
        before = upstream.stub_status()
        through = [curl(proxy.url + path) for path in paths]
        after = upstream.stub_status()
        said = proxy.stop()
    direct = [curl(upstream.url + path) for path in paths]
    assert through == direct
    assert {status for status, *_ in through} == {200, 302}
    assert through[2][3] == k64_body()
    # One upstream connection carried all ten (the stub_status call is the one more).
    assert after["accepts"] - before["accepts"] == 1 + 1
    assert after["requests"] - before["requests"] == 10 + 1
    assert "10 records written" in said
    assert len(records(out)) == 10
    replay = run_tether("run", str(out), "-t", upstream.url, "-q")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert replay.stdout.startswith("10 requests, all matched, 1 connection")


def test_a_load_through_the_proxy_loses_nothing_and_keeps_its_upstream_connections(
    upstream: NginxServer, tmp_path: Path
) -> None:
    out = tmp_path / "records.jsonl"
    with capturing(upstream.url, out, "--max-idle-per-host", "8") as proxy:
        before = upstream.stub_status()
        load = run_tether("run", proxy.url + "/j", "-c", "20", "-n", "3000", "--json", "-")
        after = upstream.stub_status()
        said = proxy.stop()
    assert load.returncode == 0, load.stderr
    summary = json.loads(load.stdout)
    assert summary["requests"] == 3000
    assert summary["connections"]["opened"] == 20  # the proxy keeps its clients' connections
    assert after["requests"] - before["requests"] - 1 == 3000
    assert after["accepts"] - before["accepts"] - 1 <= 8
    assert len(records(out)) == 3000
    assert "3,000 records written" in said


@pytest.fixture
def counting() -> CountingUpstream:
    server = CountingUpstream()
    yield server
    server.stop()


HOSTILE = [
    # (what the client sends, half-closes after it, the status, words of the sentence)
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", False, 408, b"head did not arrive within"),
    (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
        False,
        408,
        b"body did not arrive within",
    ),
    (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
        True,
        400,
        b"ended inside a request body (10 of its 100 bytes)",
    ),
    (
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 5000 + b"\r\n\r\n",
        False,
        431,
        b"over",
    ),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 5000, False, 431, b"over 1,024 bytes"),
    (b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n", False, 400, b"malformed request"),
    (b"CONNECT example.org:443 HTTP/1.1\r\nHost: x\r\n\r\n", False, 501, b"does not tunnel"),
]


@pytest.mark.parametrize(("sent", "shut", "status", "words"), HOSTILE)
def test_a_client_that_misbehaves_gets_a_4xx_and_never_reaches_the_upstream(
    counting: CountingUpstream, tmp_path: Path, sent: bytes, shut: bool, status: int, words: bytes
) -> None:
    out = tmp_path / "records.jsonl"
    limits = ("--client-timeout", "0.5s", "--max-request-head", "1k")
    with capturing(counting.url, out, *limits) as proxy:
        started = time.monotonic()
        got = exchange(proxy.port, sent, shut=shut)
        took = time.monotonic() - started
        said = proxy.stop()
    assert status_of(got) == status, got
    assert words in body_of(got)
    assert took < 5  # answered and closed, not left hanging
    assert counting.connections == 0 and counting.requests == 0
    assert records(out) == []
    assert f"1 client requests refused with {status}" in said


def test_an_upstream_that_refuses_gives_502_with_a_sentence_and_no_record(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    with capturing(f"http://127.0.0.1:{free_port()}", out) as proxy:
        got = exchange(proxy.port, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        said = proxy.stop()
    assert status_of(got) == 502
    assert b"did not answer whole" in body_of(got) and b"refused" in body_of(got).lower()
    assert records(out) == []
    assert "answered 502/504: the upstream failed" in said


def test_an_upstream_that_closes_mid_body_gives_502_and_no_record(tmp_path: Path) -> None:
    server = CountingUpstream("mid-body")
    out = tmp_path / "records.jsonl"
    try:
        with capturing(server.url, out) as proxy:
            got = exchange(proxy.port, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            proxy.stop()
    finally:
        server.stop()
    assert status_of(got) == 502
    assert b"did not answer whole" in body_of(got)
    assert records(out) == []


def test_pipelined_requests_are_answered_in_order_on_one_connection(
    upstream: NginxServer, tmp_path: Path
) -> None:
    out = tmp_path / "records.jsonl"
    sent = b"".join(
        b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path for path in (b"/j", b"/r/z", b"/empty")
    )
    sent += b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    with capturing(upstream.url, out) as proxy:
        got = exchange(proxy.port, sent)
        proxy.stop()
    statuses = [int(part[:3]) for part in got.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 302, 204, 200]
    assert got.endswith(b"hello\n")
    assert b"Connection: close" in got.rsplit(b"HTTP/1.1 ", 1)[1]
    assert [r["url"] for r in records(out)] == ["/j", "/r/z", "/empty", "/"]


def test_head_keeps_the_upstreams_length_and_sends_no_body(
    upstream: NginxServer, tmp_path: Path
) -> None:
    out = tmp_path / "records.jsonl"
    with capturing(upstream.url, out) as proxy:
        got = exchange(proxy.port, b"HEAD /k64 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        proxy.stop()
    assert b"Content-Length: 65536\r\n" in got
    assert got.endswith(b"\r\n\r\n")
    assert records(out)[0]["expect"] == {"status": 200}


def test_secrets_are_placeholders_a_run_refuses_until_h_fills_them(
    upstream: NginxServer, tmp_path: Path
) -> None:
    out = tmp_path / "records.jsonl"
    out.write_text("old\n")
    out.chmod(0o644)
    request = b"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer s3cret\r\nCookie: sid=42\r\n"
    with capturing(upstream.url, out) as proxy:
        got = exchange(proxy.port, request + b"Connection: close\r\n\r\n")
        proxy.stop()
    assert body_of(got) == b"Bearer s3cret|sid=42"  # the upstream got the real ones
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    text = out.read_text()
    assert "s3cret" not in text and "sid=42" not in text
    (record,) = records(out)
    assert record["headers"]["Authorization"].startswith("(secret not recorded")
    refused = run_tether("run", str(out), "-t", upstream.url)
    assert refused.returncode != 0
    assert f"{out}:1" in refused.stdout
    assert "-H 'Authorization: VALUE'" in refused.stderr + refused.stdout
    filled = run_tether(
        "run", str(out), "-t", upstream.url, "-H", "Authorization: Bearer s3cret",
        "-H", "Cookie: sid=42",
    )  # fmt: skip
    assert filled.returncode == 0, filled.stdout + filled.stderr


def test_keep_secrets_records_them(upstream: NginxServer, tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    with capturing(upstream.url, out, "--keep-secrets") as proxy:
        exchange(
            proxy.port,
            b"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: B x\r\nConnection: close\r\n\r\n",
        )
        proxy.stop()
    assert records(out)[0]["headers"]["Authorization"] == "B x"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    replay = run_tether("run", str(out), "-t", upstream.url)
    assert replay.returncode == 0, replay.stdout + replay.stderr


def test_limit_ends_the_capture_by_itself(upstream: NginxServer, tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    with capturing(upstream.url, out, "--limit", "3") as proxy:
        for _ in range(3):
            exchange(proxy.port, b"GET /j HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        said = proxy.wait(timeout=15)
    assert proxy.code == 0
    assert "3 records written" in said and "stopped by" not in said
    assert len(records(out)) == 3


def _closing(request: bytes) -> bytes:
    return request.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)


def test_filters_bodies_and_digests(upstream: NginxServer, tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    args = ("--exclude", "/r/", "--max-body", "1k")
    with capturing(upstream.url, out, *args) as proxy:
        for request in (
            b"GET /r/no HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /j HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x01",
            b"POST /j HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000,
            b"GET /k64 HTTP/1.1\r\nHost: a\r\n\r\n",
        ):
            assert status_of(exchange(proxy.port, _closing(request))) in (200, 302)
        said = proxy.stop()
    got = records(out)
    assert [r["url"] for r in got] == ["/j", "/k64"]
    assert got[0]["body_b64"] == "//4AAQ=="
    assert got[0]["expect"]["body"] == {"json": {"id": 7, "name": "x"}}
    assert "sha256" in got[1]["expect"]["body"]  # 64 KiB is over --max-body 1k
    assert "1 not recorded: outside --only/--exclude" in said
    assert "1 not recorded: its request body is over --max-body (1,024 bytes)" in said


def test_records_pipe_straight_into_a_run(upstream: NginxServer, tmp_path: Path) -> None:
    summary_path = tmp_path / "s.json"
    run = subprocess.Popen(
        [*TETHER, "run", "-", "-t", upstream.url, "--json", str(summary_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert run.stdin is not None
    with capturing(upstream.url, "-", stdout=run.stdin) as proxy:
        before = upstream.stub_status()["requests"]
        for path in (b"/", b"/j", b"/r/q"):
            exchange(proxy.port, _closing(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path))
        # Each line reaches the run as it completes, not when the capture ends: the run's
        # three requests reach nginx while the capture still runs.
        deadline, asked, seen = time.monotonic() + 20, 1, 0
        while seen < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = upstream.stub_status()["requests"] - before - asked
            asked += 1
        proxy.stop()
    out, err = run.communicate(timeout=60)  # its stdin closed: the records end
    assert seen >= 6, "the run did not get the records before the capture ended"
    assert run.returncode == 0, out.decode() + err.decode()
    summary = json.loads(summary_path.read_text())
    assert summary["requests"] == 3


def test_convert_reads_what_capture_writes(upstream: NginxServer, tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    with capturing(upstream.url, out) as proxy:
        exchange(
            proxy.port,
            b"POST /j HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        )
        proxy.stop()
    converted = run_tether("convert", str(out))
    assert converted.returncode == 0, converted.stderr
    assert [json.loads(line) for line in converted.stdout.splitlines()] == records(out)


def test_a_listen_address_in_use_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_tether(
            "capture", "--listen", f"127.0.0.1:{port}", "--upstream", "http://127.0.0.1:1",
            "-o", str(tmp_path / "r.jsonl"),
        )  # fmt: skip
    assert done.returncode == 2
    assert "--listen" in done.stderr


SERVICE = """
    location /u/ {{ default_type application/json;
        return 200 '{{"id": 1, "name": "{name}", "t": "$request_id"}}'; }}
    location = /other {{ default_type application/json;
        return 200 '{{"ok": true, "t": "$request_id"}}'; }}
"""


@pytest.fixture(scope="module")
def three(nginx_factory) -> tuple[NginxServer, NginxServer, NginxServer]:
    """The upstream, its second instance, and a candidate whose /u/ answers another name;
    every response carries a field of its own (nginx's request id: noise)."""
    return (
        nginx_factory(locations=SERVICE.format(name="a")),
        nginx_factory(locations=SERVICE.format(name="a")),
        nginx_factory(locations=SERVICE.format(name="b")),
    )


def test_mirror_reports_the_candidates_difference_and_not_the_noise(
    three: tuple[NginxServer, NginxServer, NginxServer], tmp_path: Path
) -> None:
    upstream, secondary, candidate = three
    report = tmp_path / "diff.json"
    args = ("--mirror", candidate.url, "--mirror-secondary", secondary.url, "--json", str(report))
    with capturing(upstream.url, tmp_path / "records.jsonl", *args) as proxy:
        before = candidate.stub_status()["requests"]
        for path in (b"/u/1", b"/u/2", b"/other", b"/u/3", b"/other", b"/u/4"):
            request = b"GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % path
            assert b'"name": "a"' in exchange(proxy.port, request) or path == b"/other"
        post = b"POST /u/5 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        exchange(proxy.port, post)
        said = proxy.stop()
    assert proxy.code == 1  # differences remain
    doc = json.loads(report.read_text())
    assert doc["records"] == 6
    assert [(d["group"], d["field"], d["count"]) for d in doc["differences"]] == [
        ("GET /u/{id}", "body $.name", 4)
    ]
    assert {(n["group"], n["field"]) for n in doc["noise"]} == {
        ("GET /u/{id}", "body $.t"),
        ("GET /other", "body $.t"),
    }
    assert doc["not_mirrored"] == {"unsafe_method": 1, "busy": 0}
    assert "mirror: differs: GET /u/{id} body $.name" in said
    assert "body $.t" not in said.split("noise")[0]
    # The POST reached the upstream only: the candidate's writes are the user's choice.
    assert candidate.stub_status()["requests"] - before - 1 == 6


def test_a_stalled_candidate_never_holds_the_client(tmp_path: Path, upstream: NginxServer) -> None:
    stalled = CountingUpstream("stall")
    try:
        with capturing(upstream.url, tmp_path / "r.jsonl", "--mirror", stalled.url) as proxy:
            started = time.monotonic()
            for _ in range(3):
                request = b"GET /j HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                assert status_of(exchange(proxy.port, request)) == 200
            took = time.monotonic() - started
            proxy.stop()
    finally:
        stalled.stop()
    assert took < 2.0, took  # each answer came from the upstream, not after the candidate
    assert stalled.requests >= 1
    assert proxy.code == 0  # nothing compared, so nothing differs


def test_mirror_unsafe_mirrors_writes(
    three: tuple[NginxServer, NginxServer, NginxServer], tmp_path: Path
) -> None:
    upstream = three[0]
    args = ("--mirror", upstream.url, "--mirror-unsafe", "--json", str(tmp_path / "d.json"))
    with capturing(upstream.url, tmp_path / "r.jsonl", *args) as proxy:
        post = (
            b"POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        exchange(proxy.port, post)
        proxy.stop()
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["records"] == 1 and doc["not_mirrored"]["unsafe_method"] == 0


def test_a_chunked_body_an_expect_and_http_1_0_are_framed_by_the_proxy(
    counting: CountingUpstream, tmp_path: Path
) -> None:
    out = tmp_path / "records.jsonl"
    chunked = (
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    with capturing(counting.url, out) as proxy:
        assert status_of(exchange(proxy.port, chunked)) == 200
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n")
            sock.sendall(b"Content-Length: 2\r\nConnection: close\r\n\r\n")
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(b"ok")
            assert status_of(sock.recv(1000)) == 200
        old = exchange(proxy.port, b"GET /old HTTP/1.0\r\n\r\n")
        proxy.stop()
    assert status_of(old) == 200 and b"Connection: close\r\n" in old  # and closed: read to EOF
    got = records(out)
    assert [(r["method"], r["url"], r.get("body")) for r in got] == [
        ("POST", "/c", "abcde"),
        ("PUT", "/e", "ok"),
        ("GET", "/old", None),
    ]
    assert all("headers" not in r for r in got)  # Host, the framing and Expect are the hop's
    upstream_heads = b"\n".join(counting.heads).lower()
    assert b"content-length: 5" in upstream_heads and b"transfer-encoding" not in upstream_heads
    assert b"expect" not in upstream_heads


def test_a_records_reader_that_goes_away_ends_the_capture(
    counting: CountingUpstream, tmp_path: Path
) -> None:
    request = b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    with capturing(counting.url, "-") as proxy:
        exchange(proxy.port, request)
        assert proxy.proc.stdout is not None
        assert json.loads(proxy.proc.stdout.readline())["url"] == "/x"
        proxy.proc.stdout.close()  # the reader (a run, a head -n 1) is gone
        for _ in range(20):
            if proxy.proc.poll() is not None:
                break
            try:
                exchange(proxy.port, request)  # answered: the client is never the one to pay
            except ConnectionRefusedError:
                break  # it has stopped listening: it is on its way out
            time.sleep(0.05)
        said = proxy.wait()
    assert proxy.code == 1
    assert "stopped: the records could not be written on (Broken pipe)" in said
    assert "Traceback" not in said and "Exception" not in said


def test_a_stream_is_a_flow_only_when_its_first_record_is_a_step(upstream: NginxServer) -> None:
    plain = json.dumps({"method": "GET", "url": "/j", "expect": {"status": 200}})
    step = json.dumps({"method": "GET", "url": "/j?u={{user}}", "capture": {"u": {"status": True}}})
    done = run_tether("run", "-", "-t", upstream.url, stdin=f"{plain}\n{step}\n".encode())
    assert done.returncode == 2, done.stdout + done.stderr
    assert "<stdin>:2" in done.stdout and "is a flow's step" in done.stdout
    assert "1 requests" in done.stdout or "requests     1" in done.stdout
