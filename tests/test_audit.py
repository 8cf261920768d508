"""The connection audit: each leaky use of requests, httpx and urllib3 is caught against a real
server, its correct twin passes, and the counts match the server's own."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import requests
import urllib3

from servers import ConnInfo, NginxServer, ThreadServer, keepalive_handler, read_request, response
from tether.audit.pytest_plugin import ConnectionAudit
from tether.audit.verdict import diff, merge, verdict
from tether.cli import main

HOST = "127.0.0.1"


def audit_of(nginx: NginxServer, connection_audit: ConnectionAudit) -> tuple[int, int, list[str]]:
    a = connection_audit
    return a.connections(HOST, nginx.port), a.requests(HOST, nginx.port), a.verdicts()


# --- requests and httpx against nginx ------------------------------------------------------------


def no_session(url: str) -> None:
    for _ in range(20):
        requests.get(url)


def one_session(url: str) -> None:
    with requests.Session() as s:
        for _ in range(20):
            s.get(url)


def stream_never_read(url: str) -> None:
    with requests.Session() as s:
        for _ in range(20):
            s.get(url, stream=True)  # neither read nor closed


def stream_read(url: str) -> None:
    with requests.Session() as s:
        for _ in range(20):
            with s.get(url, stream=True) as r:
                r.content  # noqa: B018 (reading it is the point)


def httpx_stream_never_closed(url: str) -> None:
    with httpx.Client() as client:
        for _ in range(20):
            client.send(client.build_request("GET", url), stream=True)


def httpx_stream_closed(url: str) -> None:
    with httpx.Client() as client:
        for _ in range(20):
            with client.stream("GET", url) as r:
                r.read()


@pytest.mark.parametrize(
    ("leaky", "correct"),
    [(no_session, one_session), (stream_never_read, stream_read)],
    ids=["requests-session", "requests-stream"],
)
@pytest.mark.parametrize("which", ["leaky", "correct"])
def test_requests_patterns(
    nginx: NginxServer,
    which: str,
    leaky: Callable[[str], None],
    correct: Callable[[str], None],
) -> None:
    before = nginx.stub_status()["accepts"]  # (its own connection: before the audit starts)
    audit = ConnectionAudit()
    (leaky if which == "leaky" else correct)(nginx.url + "/")
    opened, sent, verdicts = audit_of(nginx, audit)
    assert sent == 20
    assert opened == nginx.stub_status()["accepts"] - before - 1  # the server's own count
    if which == "leaky":
        assert opened == 20 and len(verdicts) == 1
        assert "20 requests over 20 connections" in verdicts[0]
    else:
        assert opened == 1 and verdicts == []


@pytest.mark.parametrize("which", ["leaky", "correct"])
def test_httpx_streams(nginx: NginxServer, which: str, connection_audit: ConnectionAudit) -> None:
    (httpx_stream_never_closed if which == "leaky" else httpx_stream_closed)(nginx.url + "/")
    opened, sent, verdicts = audit_of(nginx, connection_audit)
    assert sent == 20
    assert (opened, len(verdicts)) == ((20, 1) if which == "leaky" else (1, 0))


# --- urllib3 with more threads than pooled connections -------------------------------------------


@pytest.fixture
def slow_server() -> Iterator[ThreadServer]:
    """Keep-alive, 20 ms per response: threads overlap, so each holds a connection at once."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            conn.count_request()
            await asyncio.sleep(0.02)
            writer.write(response(200, b"ok"))
            await writer.drain()

    with ThreadServer(handler) as server:
        yield server


def hammer(pool: urllib3.PoolManager, url: str, threads: int = 8, rounds: int = 10) -> None:
    """Rounds of one request per thread, all at once (a fan-out): every connection comes back
    to the pool at the end of a round, more than a small pool keeps."""
    barrier = threading.Barrier(threads)

    def one() -> None:
        for _ in range(rounds):
            pool.request("GET", url).data  # noqa: B018 (read: the connection goes back)
            barrier.wait(10)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)


@pytest.mark.parametrize("maxsize", [1, 8])
def test_urllib3_pool_smaller_than_the_threads(
    slow_server: ThreadServer, maxsize: int, connection_audit: ConnectionAudit
) -> None:
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # "pool is full"
    hammer(urllib3.PoolManager(maxsize=maxsize), f"{slow_server.url}/")
    a = connection_audit
    assert a.requests(HOST, slow_server.port) == 80
    assert a.connections(HOST, slow_server.port) == slow_server.accepted
    if maxsize == 1:
        assert a.connections(HOST, slow_server.port) > 20 and len(a.verdicts()) == 1
    else:
        assert a.connections(HOST, slow_server.port) <= 8 and a.verdicts() == []


# --- tether audit -- a program -------------------------------------------------------------------

PROGRAM = """
import subprocess, sys, requests
url = sys.argv[1]
for _ in range(15):
    requests.get(url)
if len(sys.argv) > 2:  # and a child process, leaky the same way
    subprocess.run([sys.executable, sys.argv[0], url], check=True)
"""


def audit_cli(tmp_path: Path, *argv: str) -> tuple[int, dict[str, object]]:
    out = tmp_path / "audit.json"
    code = main(["audit", "--json", str(out), "-q", "--", *argv])
    return code, json.loads(out.read_text())


def test_the_audit_counts_a_program_and_its_children(nginx: NginxServer, tmp_path: Path) -> None:
    program = tmp_path / "leaky.py"
    program.write_text(PROGRAM)
    before = nginx.stub_status()["accepts"]
    code, doc = audit_cli(tmp_path, sys.executable, str(program), nginx.url + "/", "child")
    accepted = nginx.stub_status()["accepts"] - before - 1
    assert code == 3 and doc["processes"] == 2
    peers = doc["peers"]
    assert isinstance(peers, list)
    assert peers[0]["peer"] == f"{HOST}:{nginx.port}"
    assert peers[0]["connections"] == 30 == accepted and peers[0]["requests"] == 30
    assert doc["verdicts"] == [peers[0]["verdict"]]


def test_a_correct_program_passes(nginx: NginxServer, tmp_path: Path) -> None:
    program = tmp_path / "good.py"
    program.write_text(
        "import sys, requests\n"
        "with requests.Session() as s:\n"
        "    for _ in range(15): s.get(sys.argv[1])\n"
    )
    code, doc = audit_cli(tmp_path, sys.executable, str(program), nginx.url + "/")
    assert code == 0 and doc["verdicts"] == [] and doc["processes"] == 1


def test_what_cannot_be_seen_is_said(tmp_path: Path) -> None:
    code, doc = audit_cli(tmp_path, sys.executable, "-I", "-c", "pass")
    assert code == 0 and "no Python process reported" in str(doc["notes"])
    code, doc = audit_cli(tmp_path, sys.executable, "-c", "import uvloop")
    assert doc["unseen"] == ["uvloop"] and "not seen here" in str(doc["notes"])


def test_the_programs_failure_is_its_exit_status(tmp_path: Path) -> None:
    code, _ = audit_cli(tmp_path, sys.executable, "-c", "raise SystemExit(7)")
    assert code == 7
    assert main(["audit", "--", "no-such-command-here"]) == 2


def audit_said(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The exit status and the terminal report of ``tether audit -- argv``, its lines joined
    (rich folds a long sentence to the console's width)."""
    code = main(["audit", "--", *argv])
    return code, " ".join(capsys.readouterr().out.split())


def urlopen_program(port: int, times: int) -> list[str]:
    """A program sending ``times`` requests on a new connection each (urllib.request sends
    Connection: close)."""
    url = f"http://{HOST}:{port}/"
    loop = f"[u.urlopen({url!r}).read() for _ in range({times})]"
    return [sys.executable, "-c", f"import urllib.request as u; {loop}"]


def test_too_few_requests_are_not_called_reused(capsys: pytest.CaptureFixture[str]) -> None:
    with ThreadServer(keepalive_handler()) as server:
        code, said = audit_said(capsys, *urlopen_program(server.port, 9))
        assert code == 0 and server.accepted == 9
        assert f"9 requests to {HOST}:{server.port}: too few to judge reuse (it takes 10)" in said
        assert "reused." not in said
        assert main(["audit", "-q", "--", *urlopen_program(server.port, 1)]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "1 request over 1 connection to 1 peer",
            f"1 request to {HOST}:{server.port}: too few to judge reuse (it takes 10)",
        ]


def test_reuse_is_said_of_the_peers_judged(capsys: pytest.CaptureFixture[str]) -> None:
    # Each argument PORT:TIMES: that many requests to that port, all on one connection.
    reusing = (
        "import http.client, sys\n"
        "for port, times in (map(int, arg.split(':')) for arg in sys.argv[1:]):\n"
        "    conn = http.client.HTTPConnection('127.0.0.1', port)\n"
        "    for _ in range(times):\n"
        "        conn.request('GET', '/'); conn.getresponse().read()\n"
        "    conn.close()\n"
    )
    with ThreadServer(keepalive_handler()) as busy, ThreadServer(keepalive_handler()) as quiet:
        program = [sys.executable, "-c", reusing, f"{busy.port}:12"]
        code, said = audit_said(capsys, *program)
        assert code == 0 and "Connections were reused." in said and "too few" not in said
        code, said = audit_said(capsys, *program, f"{quiet.port}:3")
    assert code == 0 and "Connections were reused." not in said
    assert f"Connections to {HOST}:{busy.port} were reused." in said
    assert f"3 requests to {HOST}:{quiet.port}: too few to judge reuse (it takes 10)" in said


def test_no_request_at_all_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    code, said = audit_said(capsys, sys.executable, "-c", "pass")
    assert code == 0 and said == "No HTTP request was seen."  # and no table of nothing
    code, said = audit_said(capsys, sys.executable, "-I", "-c", "pass")
    assert said.startswith("No HTTP request was seen. no Python process reported: ")


# --- the pytest plugin ---------------------------------------------------------------------------


def test_pytest_reports_connections_per_test(pytester: pytest.Pytester, nginx: NginxServer) -> None:
    pytester.makepyfile(
        f"""
        import requests

        URL = "{nginx.url}/"

        def test_leaky():
            for _ in range(12):
                requests.get(URL)

        def test_fixture(connection_audit):
            with requests.Session() as s:
                for _ in range(12):
                    s.get(URL)
            assert connection_audit.requests_per_connection("127.0.0.1", {nginx.port}) == 12
        """
    )
    result = pytester.runpytest_subprocess("--tether-audit")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*tether connection audit*",
            "*test_leaky",
            f"*127.0.0.1:{nginx.port}: 12 connections, 12 requests (1 per connection)",
            "*connections are not being reused*",
        ]
    )


# A test module for pytester: requests to a server on 127.0.0.1, on a new connection each
# (urllib.request sends Connection: close) or all on one (http.client.HTTPConnection).
STRICT_TESTS = """
import http.client, urllib.request
import pytest

HOST, PORT = "127.0.0.1", {port}

def new_connection_each():
    for _ in range(12):
        urllib.request.urlopen(f"http://{{HOST}}:{{PORT}}/").read()

def test_not_reused():
    new_connection_each()

def test_reused():
    conn = http.client.HTTPConnection(HOST, PORT)
    for _ in range(12):
        conn.request("GET", "/")
        conn.getresponse().read()
    conn.close()

@pytest.mark.tether_audit_strict
def test_marked_not_reused():
    new_connection_each()

def test_failing_on_its_own():
    new_connection_each()
    assert False, "its own failure"
"""


@pytest.fixture
def strict_tests(pytester: pytest.Pytester) -> Iterator[tuple[pytest.Pytester, ThreadServer]]:
    with ThreadServer(keepalive_handler()) as server:
        pytester.makepyfile(STRICT_TESTS.format(port=server.port))
        yield pytester, server


def test_strict_mode_fails_a_test_whose_connections_were_not_reused(
    strict_tests: tuple[pytest.Pytester, ThreadServer],
) -> None:
    pytester, server = strict_tests
    result = pytester.runpytest_subprocess("--tether-audit-strict", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=3)
    verdict = (
        f"127.0.0.1:{server.port}: 12 requests over 12 connections (1.0 per connection): "
        "connections are not being reused. Use one Session or Client for all requests, and "
        "read every response to its end or close it"
    )
    # The verdict is the failure's message (no traceback); a test that failed on its own
    # keeps its own failure.
    result.stdout.fnmatch_lines(["*_ test_not_reused _*", verdict, "*_ test_marked_not_reused _*"])
    result.stdout.fnmatch_lines(["*_ test_failing_on_its_own _*", "*its own failure*"])
    own = result.stdout.str().split("_ test_failing_on_its_own _")[1].split("tether connection")
    assert "not being reused" not in own[0]
    result.stdout.fnmatch_lines(["*tether connection audit*"])  # the report as --tether-audit's


def test_the_marker_alone_fails_the_marked_test(
    strict_tests: tuple[pytest.Pytester, ThreadServer],
) -> None:
    pytester, _ = strict_tests
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)  # the marked one, and the one failing anyway
    result.stdout.fnmatch_lines(["*_ test_marked_not_reused _*", "*not being reused*"])
    assert "tether connection audit" not in result.stdout.str()


# --- verdicts ------------------------------------------------------------------------------------


def entry(opened: int, requests_: int, peak: int) -> dict[str, int]:
    return {"opened": opened, "requests": requests_, "closed": 0, "open_now": 0, "peak_open": peak}


def test_verdicts() -> None:
    assert verdict("h:1", entry(5, 9, 1)) is None  # too few requests to tell
    assert verdict("h:1", entry(1, 1000, 1)) is None
    assert "not being reused" in (verdict("h:1", entry(600, 1000, 1)) or "")
    churned = verdict("h:1", entry(60, 1000, 8)) or ""
    assert "at most 8 open at once: 52 were closed and replaced" in churned
    assert verdict("h:1", entry(9, 1000, 8)) is None  # the server closing one now and then


def test_what_is_said_of_reuse_and_of_too_few_requests() -> None:
    from tether.audit.verdict import overall, reused, rows, unjudged

    fine, few, none = entry(1, 12, 1), entry(9, 9, 1), entry(2, 0, 1)
    leaky = entry(20, 20, 1)
    assert overall(rows({})) == "no HTTP request was seen" and unjudged(rows({})) == []
    assert reused(rows({})) is None
    assert overall(rows({"h:1": entry(1, 1, 1)})) == "1 request over 1 connection to 1 peer"
    assert overall(rows({"h:1": few, "h:2": fine})) == "21 requests over 10 connections to 2 peers"
    assert reused(rows({"h:1": fine})) == "Connections were reused."
    assert reused(rows({"h:1": few})) is None  # never "reused" below the threshold
    assert unjudged(rows({"h:1": few})) == [
        "9 requests to h:1: too few to judge reuse (it takes 10)"
    ]
    assert reused(rows({"h:1": fine, "h:2": few})) == "Connections to h:1 were reused."
    assert reused(rows({"h:1": fine, "h:2": leaky})) is None  # the verdict says it
    assert unjudged(rows({"h:1": none})) == [
        "2 connections to h:1 but no HTTP/1.x request seen: nothing to judge"
    ]
    assert unjudged(rows({"h:1": fine, "h:2": leaky})) == []


def test_merge_and_diff() -> None:
    a, b = {"h:1": entry(1, 10, 1)}, {"h:1": entry(2, 5, 2), "h:2": entry(1, 1, 1)}
    assert merge([a, b])["h:1"]["requests"] == 15 and set(merge([a, b])) == {"h:1", "h:2"}
    assert diff(b, {"h:1": entry(1, 1, 1)}) == {
        "h:1": {**entry(1, 4, 2)},
        "h:2": entry(1, 1, 1),
    }
