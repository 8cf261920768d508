"""``tether demo`` tells its story: what the leaky harness's open connections cost the server
(read from the server process itself), and that the bundled records' mismatches are planted."""

from __future__ import annotations

import http.client
import json
import re
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tether.cli import main
from tether.demo.server import parse_vmrss

COST = re.compile(
    r"The leaky harness left 1,000 connections open on the server: (?P<fds>[\d,]+) of the "
    r"(?P<limit>[\d,]+) file descriptors it may hold \((?P<room>[\d,]+) more and it refuses "
    r"connections\) and (?P<memory>[\d.]+) MB more memory; with tether: 1 connection, "
    r"(?P<tether_fds>[\d,]+) descriptors\."
)
PLANTED = (
    "The 3 mismatches are planted on purpose: the records on lines 101, 501 and 901 expect a "
    "stale Location, to show that tether catches a wrong Location and names the record's line:"
)


def table_rows(out: str) -> dict[str, list[str]]:
    """The comparison table's rows: name -> [leaky cell, tether cell]."""
    return {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
        for line in out.splitlines()
        if line.count("│") == 4
    }


def number(text: str) -> int:
    return int(text.replace(",", ""))


def prose(out: str) -> str:
    """The output with rich's wrapping undone."""
    return " ".join(out.split())


def test_demo_says_what_the_leak_costs_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    leaky_fds, tether_fds = map(number, rows["server: file descriptors at peak"])
    # Measured, not derived: the server process holds one descriptor per open connection.
    assert leaky_fds - tether_fds >= 999
    assert tether_fds < 100
    leaky_memory, tether_memory = rows["server: memory added at peak"]
    assert leaky_memory.endswith(" MB") and tether_memory.endswith(" MB")
    found = COST.search(prose(out))
    assert found, out
    # The server inherits this process's soft limit: the yardstick is the real one.
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert number(found["limit"]) == soft
    assert number(found["fds"]) == leaky_fds and number(found["tether_fds"]) == tether_fds
    assert number(found["room"]) == soft - leaky_fds
    assert f"{found['memory']} MB" == leaky_memory


def test_demo_says_its_mismatches_are_planted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert PLANTED in prose(out)
    for i in (100, 500, 900):
        # One line each, a URL never broken across two.
        line = (
            f"  line {i + 1}: header location expected https://example.org/page/old-{i}, "
            f"got https://example.org/page/{i}"
        )
        assert line in out.splitlines()


def test_demo_of_other_records_claims_nothing_planted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "mine.jsonl"
    lines = [
        {"url": f"/r/c{i:04d}", "expect": {"status": 302 if i != 3 else 200}} for i in range(20)
    ]
    records.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["demo", "--records", str(records)]) == 0
    out = prose(capsys.readouterr().out)
    assert "20 recorded redirects" in out
    assert "planted" not in out
    assert (
        "The 1 mismatch tether caught, each naming its record's line: "
        "line 4: status expected 200, got 302"
    ) in out
    assert "The leaky harness left 20 connections open on the server:" in out


@contextmanager
def demo_server(fd_limit: int) -> Iterator[int]:
    """``tether serve-demo`` in a child process whose soft descriptor limit is ``fd_limit``."""

    def lower() -> None:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (fd_limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        )

    argv = [sys.executable, "-m", "tether", "serve-demo", "--port", "0"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=lower
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline().rsplit(":", 1)[1])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def served(port: int, sockets: list[socket.socket]) -> bool:
    """Whether a new connection gets its request answered (it stays open, as a leak's)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    sockets.append(sock)
    try:
        sock.sendall(b"GET /r/c0001 HTTP/1.1\r\nHost: x\r\n\r\n")
        return sock.recv(64).startswith(b"HTTP/1.1 302 Found")
    except OSError:  # reset: accepted only to be closed
        return False


def test_the_room_it_reports_is_where_the_server_refuses() -> None:
    with demo_server(fd_limit=64) as port:
        stats = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        stats.request("GET", "/_stats/process")
        usage = json.loads(stats.getresponse().read())
        assert usage["fd_limit"] == 64
        room = usage["fd_limit"] - usage["fds"]
        assert 0 < room < 64
        sockets: list[socket.socket] = []
        try:
            assert all(served(port, sockets) for _ in range(room))
            assert not served(port, sockets)
        finally:
            for sock in sockets:
                sock.close()
            stats.close()


def test_resident_memory_is_read_from_vmrss() -> None:
    status = "Name:\tpython\nVmPeak:\t  9000 kB\nVmRSS:\t   38912 kB\nThreads:\t1\n"
    assert parse_vmrss(status) == 38912 * 1024
    assert parse_vmrss("Name:\tpython\n") is None
