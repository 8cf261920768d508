"""The compiled send path counts a run exactly as the Python path does, on responses it
vouches for and on every kind it hands over (the response from its first byte, or mid
chunked body), and through the events of a connection's life: a server's close, a stale
keep-alive connection, timeouts, a stop.

Each test runs the same records twice against the same server, once compiled and once on
the Python path (``RunOptions.compiled``), and compares the summary documents less what
timing decides (:func:`helpers.comparable`). Responses are written in pieces with pauses
between, so that a head or a body comes in more than one read."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import both, comparable, pure
from servers import ConnInfo, NginxServer, ThreadServer, chunked, read_request, response
from tether.engine import compiled
from tether.engine.cycle import Cycle
from tether.engine.options import ClientOptions
from tether.metrics.groups import MAX_GROUPS, OTHER
from tether.metrics.histogram import BUCKET_COUNT, MAX_VALUE_US, SUB_BUCKETS
from tether.model import Expect, HeaderExpect, Record
from tether.run.options import RunOptions
from tether.run.pacer import parse_rate
from tether.run.session import run

PAUSE = 0.002  # between the pieces of a response: enough for them to arrive apart

# What each path answers: the pieces it is written in, and what the server does after.
Script = tuple[Sequence[bytes], str]  # (pieces, "keep" | "close")

BODY = b"x" * 3000


def split(data: bytes, *at: int) -> list[bytes]:
    """``data`` in pieces, cut at the offsets ``at``."""
    cuts = [0, *at, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(cuts) if data[a:b]]


LONG = response(200, BODY, [("X-A", "v")])
CHUNKED = response(
    200, chunked([b"a" * 10, b"b" * 700, b"c" * 5]), [("Transfer-Encoding", "chunked")]
)
EXTENSION = response(
    200,
    b"5;name=value\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
    [("Transfer-Encoding", "chunked"), ("X-A", "v")],
)
TRAILER = response(
    200, chunked([b"hello"], [("X-T", "1")]), [("Transfer-Encoding", "chunked"), ("X-A", "v")]
)

SCRIPTS: dict[str, Script] = {
    "/len": ([LONG], "keep"),
    "/len-split": (split(LONG, 5, 20, 40, 100, 2000), "keep"),
    "/chunked": ([CHUNKED], "keep"),
    "/chunked-split": (split(CHUNKED, 3, 30, 60, 61, 62, 63, 400, len(CHUNKED) - 3), "keep"),
    "/extension": (split(EXTENSION, EXTENSION.index(b";") - 1, EXTENSION.index(b";") + 2), "keep"),
    "/trailer": (split(TRAILER, len(TRAILER) - 7), "keep"),
    "/nothing": ([response(204, b"", [("X-A", "v")])], "keep"),
    "/not-modified": (
        [b"HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\nX-A: v\r\n\r\n"],
        "keep",
    ),
    "/close": ([response(200, b"bye", [("Connection", "close")])], "close"),
    "/obs-text": ([response(200, b"ok", [("X-A", "v\xe9")])], "keep"),
    "/until-close": ([b"HTTP/1.1 200 OK\r\nX-A: v\r\n\r\nthe rest", b" of it"], "close"),
    "/gone": ([response(404, b"no", [("X-A", "v")])], "keep"),
    "/twice": ([response(200, b"ok", [("X-A", "v"), ("X-A", "v")])], "keep"),
    "/folded": ([b"HTTP/1.1 200 OK\r\nX-A: v\r\n w\r\nContent-Length: 2\r\n\r\nok"], "keep"),
    "/big": ([response(200, b"y" * 5000, [("X-A", "v")])], "keep"),
    "/big-chunked": (
        [response(200, chunked([b"z" * 900] * 6), [("Transfer-Encoding", "chunked")])],
        "keep",
    ),
    "/continue": ([b"HTTP/1.1 100 Continue\r\n\r\n", response(200, b"ok", [("X-A", "v")])], "keep"),
    "/redirect": ([response(302, b"", [("Location", "/len"), ("X-A", "v")])], "keep"),
    "/invalid-chunk": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n"],
        "keep",
    ),
}


def scripted(scripts: dict[str, Script]) -> Callable[..., Any]:
    """A handler answering each request by its path's script, piece by piece."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            conn.count_request()
            pieces, then = scripts[req.target]
            for i, piece in enumerate(pieces):
                if i:
                    await asyncio.sleep(PAUSE)
                writer.write(
                    piece
                    if req.method != "HEAD" or i
                    else piece.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
                )
                await writer.drain()
                if req.method == "HEAD":
                    break
            if then == "close":
                return

    return handler


@pytest.fixture(scope="module")
def scripts() -> Iterator[ThreadServer]:
    with ThreadServer(scripted(SCRIPTS)) as server:
        yield server


def expect(*status: int, value: str = "v") -> Expect:
    return Expect(status, (HeaderExpect("X-A", "equals", value),))


def get(path: str, want: Expect, method: str = "GET") -> Record:
    return Record(method, path, expect=want)


def records() -> list[Record]:
    """Every script, with an expectation each response meets and, for some, one it fails."""
    plain = [get(path, expect(200)) for path in ("/len", "/len-split", "/extension", "/trailer")]
    return [
        *plain,
        get("/chunked", Expect((200,))),
        get("/chunked-split", Expect((200,), (HeaderExpect("x-a", "absent"),))),
        get("/len", expect(200, value="w")),  # the value differs
        get("/len", expect(201)),  # the status differs
        get("/len", expect(200), method="HEAD"),
        get("/nothing", expect(204)),
        get("/not-modified", expect(304)),
        get("/close", Expect((200,))),
        get("/obs-text", expect(200, value="v\xe9")),
        get("/until-close", expect(200)),
        get("/gone", expect(404)),
        get("/gone", expect(200)),
        get("/twice", expect(200)),
        get("/folded", Expect((200,))),
        get("/big", expect(200)),
        get("/len", expect(200)),  # (so that the next is not a new connection's first)
        get("/big-chunked", Expect((200,))),
        get("/continue", expect(200)),
        get("/redirect", expect(302)),
        get("/invalid-chunk", Expect((200,))),
        get("/len", Expect()),
    ]


def test_the_extension_is_built_where_a_compiler_is() -> None:
    # CI builds it from a clean clone as pip would; a pure pass says so in the environment.
    if os.environ.get("CI") and not os.environ.get("TETHER_PURE_PYTHON"):
        assert compiled.native is not None, "the compiled extension did not build"
    assert ("python" if pure() else "compiled") == compiled.ENGINE


def test_the_compiled_histogram_layout_is_the_summarys() -> None:
    from tether.engine import _compiled  # importable even where TETHER_PURE_PYTHON is set

    assert _compiled.layout() == (SUB_BUCKETS, MAX_VALUE_US, BUCKET_COUNT)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_every_kind_of_response_is_counted_alike(scripts: ThreadServer, concurrency: int) -> None:
    recs = records()
    asked = RunOptions(target=scripts.url, concurrency=concurrency, requests=4 * len(recs))
    options = ClientOptions(drain_limit=4096, follow_redirects=0)
    fast, slow, counted = both(recs, asked, options)
    sequential = concurrency == 1
    assert comparable(fast, sequential, False) == comparable(slow, sequential, False)
    assert fast.engine == compiled.ENGINE and slow.engine == "python"
    if not pure():
        # Some responses were vouched for from end to end (a connection's first never is).
        assert counted > len(recs)
    assert fast.mismatches == slow.mismatches > 0 and fast.errors == slow.errors > 0


def test_redirects_followed_are_handed_over(scripts: ThreadServer) -> None:
    recs = [get("/redirect", Expect((200,))), get("/len", expect(200))]
    asked = RunOptions(target=scripts.url, concurrency=1, requests=40)
    fast, slow, counted = both(recs, asked, ClientOptions(follow_redirects=2))
    assert comparable(fast, True, False) == comparable(slow, True, False)
    assert fast.redirects == 20 and fast.ok == 40
    assert pure() or counted > 0


def test_a_server_closing_idle_connections_is_retried_alike() -> None:
    """The server closes each connection right after its third response, with no word: the
    next request goes out on it and is retried on a new one (Go's stale retry)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            if conn.count_request() > 3:
                return  # closed as it is reused
            writer.write(response(200, req.target.encode(), [("X-A", "v")]))
            await writer.drain()
            if conn.requests == 3:
                await asyncio.sleep(0.01)
                return

    with ThreadServer(handler) as server:
        recs = [get("/a", expect(200))]
        asked = RunOptions(target=server.url, concurrency=1, requests=30)
        fast, slow, counted = both(recs, asked)
    assert comparable(fast, True, False) == comparable(slow, True, False)
    assert fast.ok == 30 and fast.errors == 0
    assert fast.ledger.opened == 10
    assert pure() or counted > 0


@pytest.mark.parametrize(
    ("where", "drain_timeout", "errors"),
    [("head", 0.0, {"timeout": 2}), ("body", 0.0, {"timeout": 2}), ("body", 0.1, {})],
    ids=["head", "body", "drain"],
)
def test_a_stalled_response_times_out_alike(
    where: str, drain_timeout: float, errors: dict[str, int]
) -> None:
    """Each connection's third response stalls (mid-head or mid-body) past the timeout;
    with a drain timeout, a body that stalls is left undrained instead (no error)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            data = response(200, b"b" * 100, [("X-A", "v")])
            if conn.count_request() == 3:
                cut = 10 if where == "head" else len(data) - 50
                writer.write(data[:cut])
                await writer.drain()
                await asyncio.sleep(1.0)
                return
            writer.write(data)
            await writer.drain()

    with ThreadServer(handler) as server:
        recs = [get("/a", expect(200))]
        asked = RunOptions(target=server.url, concurrency=1, requests=8)
        options = ClientOptions(
            timeout=0.2 if not drain_timeout else 5, drain_timeout=drain_timeout
        )
        fast, slow, counted = both(recs, asked, options)
    assert comparable(fast, True, False) == comparable(slow, True, False)
    assert fast.error_kinds == errors
    assert fast.undrained_responses == (0 if errors else 2)
    assert pure() or counted > 0


def test_a_duration_stops_the_compiled_loop(nginx: NginxServer) -> None:
    asked = RunOptions(target=nginx.url, concurrency=4, requests=10**9, duration=0.5)
    fast = run([get("/", Expect((200,)))].__iter__, asked)
    assert fast.requests > 100 and fast.ok == fast.requests and fast.errors == 0
    assert fast.duration < 2
    assert fast.ledger.opened == 4
    assert sum(fast.ledger.closed.values()) == 4
    assert fast.engine == compiled.ENGINE


def test_groups_and_latencies_fold_into_the_summary(nginx: NginxServer) -> None:
    recs = [Record("GET", f"/r/{i}", expect=Expect((302,)), tag=f"t{i % 3}") for i in range(6)]
    asked = RunOptions(target=nginx.url, concurrency=2, requests=600)
    fast, slow, counted = both(recs, asked)
    assert comparable(fast, False, False) == comparable(slow, False, False)
    rows = {row["group"]: row["requests"] for row in fast.to_dict()["groups"]}
    assert rows == {"t0": 200, "t1": 200, "t2": 200}
    assert fast.latency.count == 600
    assert sum(point.requests for point in fast.timeline.points) == 600
    assert pure() or counted > 500


def test_the_open_model_is_counted_alike(scripts: ThreadServer) -> None:
    """Each request its own (no cycle: the schedule sends them), latency from when it was
    due, service time from when it went out."""
    recs = records()
    # At a rate slow enough for each response to be in before the next is due, even on a
    # loaded machine: a request due while every connection is busy dials one, and a new
    # connection's first request takes the Python path.
    asked = RunOptions(target=scripts.url, rate=parse_rate("150", None), requests=3 * len(recs))
    fast, slow, counted = both(recs, asked, ClientOptions(drain_limit=4096))
    assert comparable(fast, False, True) == comparable(slow, False, True)
    assert fast.service is not None and slow.service is not None
    assert fast.service.count == slow.service.count == fast.latency.count
    assert pure() or counted > len(recs)


@given(
    items=st.lists(st.integers(), max_size=5),
    remaining=st.integers(-1, 12),
    stop_after=st.integers(0, 14),
)
def test_the_compiled_cycle_hands_out_what_the_python_one_does(
    items: list[int], remaining: int, stop_after: int
) -> None:
    """Two writings of one rule (the compiled path reads its own without a Python call):
    the same items in the same order, the same end, the same stop."""
    from tether.engine import _compiled  # importable even where TETHER_PURE_PYTHON is set

    ours = Cycle(items, remaining)
    theirs = _compiled.Cycle(list(items), [None] * len(items), remaining)
    for i in range(16):
        if i == stop_after:
            ours.stopped = theirs.stopped = True
        assert ours.next() == theirs.next()
    assert ours.remaining == theirs.remaining


def test_a_records_connection_close_ends_its_connection_on_both_paths() -> None:
    """A server that keeps every connection open: a record that says ``Connection: close``
    still gets a connection of its own each time (the compiled path leaves it to Python)."""

    async def keep_open(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            conn.count_request()
            writer.write(response(200, b"ok", [("X-A", "v")]))
            await writer.drain()

    recs = [Record("GET", "/", headers=(("Connection", "close"),), expect=expect(200))]
    with ThreadServer(keep_open) as server:
        asked = RunOptions(target=server.url, concurrency=1, requests=5)
        fast, slow, _ = both(recs, asked)
        assert server.accepted == 10
    assert comparable(fast, True, False) == comparable(slow, True, False)
    assert fast.ledger.opened == 5 and fast.ok == 5


def test_groups_past_the_limit_are_counted_in_other_alike(nginx: NginxServer) -> None:
    recs = [Record("GET", "/", expect=Expect((200,)), tag=f"t{i}") for i in range(MAX_GROUPS + 9)]
    asked = RunOptions(target=nginx.url, concurrency=1, requests=2 * len(recs))
    fast, slow, counted = both(recs, asked)
    assert comparable(fast, True, False) == comparable(slow, True, False)
    rows = {row["group"]: row["requests"] for row in fast.to_dict()["groups"]}
    assert len(rows) == MAX_GROUPS + 1 and rows[OTHER] == 2 * 9
    assert pure() or counted > len(recs)
