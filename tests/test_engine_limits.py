"""What a hostile or careless server cannot do to the engine, on both send paths: a head with
no end is cut off at the response header limit (an error of its own, the connection closed,
memory bounded); an idle connection is closed at its idle timeout, not up to twice that late;
a server that closes mid-response is told apart from one that resets.

Runs go to a real server on 127.0.0.1 once compiled and once on the Python path (the compiled
path hands heads over 16 KiB, and heads over a smaller limit, to the Python path, which
enforces the limit for both)."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import uvloop

from helpers import comparable, pure, run_on
from servers import (
    ConnInfo,
    Handler,
    ThreadServer,
    endless_head_handler,
    read_request,
    reset,
    response,
)
from tether import Client, ClientOptions, CloseReason, Expect, Ledger, Record
from tether.cli import main
from tether.engine.dispatch import Journey
from tether.engine.options import default_of
from tether.metrics.summary import Summary
from tether.model import HeaderExpect, Outcome, Vouch
from tether.run.options import RunOptions

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter

OK = Expect((200,), (HeaderExpect("X-A", "equals", "v"),))  # one the compiled path vouches for
PATHS = ("compiled", "python")


def get(path: str) -> Record:
    return Record("GET", path, expect=OK)


def took_part(path: str, counted: int) -> bool:
    """The compiled path counted responses itself, where it ran."""
    return path == "python" or pure() or counted > 0


# -- the response head's size limit ----------------------------------------------------------

DEFAULT_LIMIT = default_of(ClientOptions, "max_response_header_bytes")


@pytest.mark.parametrize("limit", [4096, DEFAULT_LIMIT], ids=["4k", "default"])
def test_an_endless_head_ends_at_the_limit_and_the_run_goes_on(limit: int) -> None:
    """``HTTP/1.1 200 OK`` then header lines for ever, and no timeout: the request ends with
    an error of its own as soon as the head passes the limit, its connection is closed, the
    memory stays bounded, and the other records are sent as usual."""
    recs = [get("/a"), get("/endless"), get("/a"), get("/a")]
    options = ClientOptions(timeout=0, max_response_header_bytes=limit)  # only the limit ends it
    docs: list[dict[str, Any]] = []
    sent: list[int] = []
    with ThreadServer(endless_head_handler(seconds=5.0, sent=sent)) as server:
        for n, path in enumerate(PATHS, 1):
            asked = RunOptions(target=server.url, concurrency=1, requests=8)
            summary, counted, took, peak = _traced(path, recs, asked, options)
            # The server saw both connections go (its writes failed), long before its 5 s.
            assert server.wait_until(lambda: len(sent) == 2 * n, 2), path  # noqa: B023
            docs.append(comparable(summary, True, False))
            _endless_head_cut_off(path, summary, counted, took, peak, limit)
    assert docs[0] == docs[1]


def _traced(
    path: str, recs: Sequence[Record], asked: RunOptions, options: ClientOptions
) -> tuple[Summary, int, float, int]:
    """:func:`run_on`, with how long it took and its peak traced memory."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        summary, counted = run_on(path, recs, asked, options)
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return summary, counted, took, peak


def _endless_head_cut_off(
    path: str, summary: Summary, counted: int, took: float, peak: int, limit: int
) -> None:
    """What a run with two endless heads in eight requests must show, on either path."""
    assert took < 4, f"{path}: {took:.1f}s (the server gives up after 5s)"
    assert summary.error_kinds == {"headers_too_large": 2}, path
    assert summary.ok == 6, path
    assert summary.ledger.closed[CloseReason.HEADERS_TOO_LARGE] == 2, path
    assert summary.ledger.opened == 3, path  # a new connection after each one cut off
    assert summary.error_examples[0]["error"] == f"response headers over {limit:,} bytes"
    assert peak < 8 * max(limit, 1 << 20), f"{path}: peak traced memory {peak:,} bytes"
    assert took_part(path, counted)


def head_of(size: int) -> bytes:
    """A plain head of exactly ``size`` bytes, its blank line included, for a 2-byte body."""
    start, end = b"HTTP/1.1 200 OK\r\nX-A: v\r\nContent-Length: 2\r\nX-Pad: ", b"\r\n\r\n"
    return start + b"p" * (size - len(start) - len(end)) + end


def sized_heads(limit: int) -> Handler:
    """Keep-alive, each response in one write: ``/fits`` has a head of exactly ``limit``
    bytes, ``/over`` one byte more, ``/big-body`` a small head and a body much larger than
    the limit, anything else a small response."""
    answers = {
        "/fits": head_of(limit) + b"ok",
        "/over": head_of(limit + 1) + b"ok",
        "/big-body": response(200, b"y" * (4 * limit), [("X-A", "v")]),
    }

    async def handler(reader: Reader, writer: Writer, conn: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            conn.count_request()
            writer.write(answers.get(req.target, response(200, b"ok", [("X-A", "v")])))
            await writer.drain()

    return handler


@pytest.mark.parametrize("limit", [4096, 20000], ids=["under-16k", "over-16k"])
def test_the_limit_counts_the_head_to_the_byte_on_both_paths(limit: int) -> None:
    """A head of exactly the limit is read; one byte more is refused; body bytes that come
    in the same read as the head do not count. Under 16 KiB the compiled path judges
    complete heads against the limit itself; over it, it hands them over."""
    recs = [get("/a"), get("/fits"), get("/a"), get("/over"), get("/big-body"), get("/a")]
    options = ClientOptions(max_response_header_bytes=limit)
    docs = []
    with ThreadServer(sized_heads(limit)) as server:
        for path in PATHS:
            asked = RunOptions(target=server.url, concurrency=1, requests=12)
            summary, counted = run_on(path, recs, asked, options)
            assert summary.error_kinds == {"headers_too_large": 2}, path
            assert summary.ok == 10, path
            assert {e["url"].rsplit("/", 1)[1] for e in summary.error_examples} == {"over"}
            assert took_part(path, counted)
            docs.append(comparable(summary, True, False))
    assert docs[0] == docs[1]


def test_interim_heads_count_towards_the_limit() -> None:
    """1xx heads without end are a head without end too (memory is what the limit bounds)."""

    async def continues(reader: Reader, writer: Writer, conn: ConnInfo) -> None:
        if await read_request(reader) is not None:
            end = time.monotonic() + 5
            while time.monotonic() < end:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)
                await writer.drain()

    async def go(url: str) -> Outcome:
        async with Client(ClientOptions(timeout=0, max_response_header_bytes=8192)) as client:
            return await client.fetch(Record("GET", f"{url}/"))

    with ThreadServer(continues) as server:
        outcome = uvloop.run(asyncio.wait_for(go(server.url), 4))
    assert outcome.error_kind == "headers_too_large"


def test_the_limit_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "r.jsonl"
    lines = [{"url": p, "expect": {"status": 200}} for p in ("/a", "/endless", "/a")]
    records.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with ThreadServer(endless_head_handler(seconds=5.0)) as server:
        argv = ["run", str(records), "-t", server.url, "--timeout", "0", "--json", "-"]
        status = main([*argv, "--max-response-header-bytes", "64k"])
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert status == 1
    assert doc["error_kinds"] == {"headers_too_large": 1} and doc["ok"] == 2
    assert doc["connections"]["closed"]["headers_too_large"] == 1
    assert doc["error_examples"][0]["error"] == "response headers over 65,536 bytes"


# -- the idle timeout ------------------------------------------------------------------------

IDLE = 0.6


def eof_times(ends: list[float]) -> Handler:
    """Keep-alive; appends to ``ends`` when each connection's client closed it (its EOF)."""

    async def handler(reader: Reader, writer: Writer, conn: ConnInfo) -> None:
        while await read_request(reader) is not None:
            conn.count_request()
            writer.write(response(200, b"ok", [("X-A", "v")]))
            await writer.drain()
        ends.append(time.monotonic())

    return handler


class Sent(Journey):
    """A journey awaited once, that says which path answered it."""

    def __init__(self, client: Client, record: Record) -> None:
        vouch = Vouch((200,), ((b"x-a", b"v"),), ())
        prep = client.plan(record, vouch=vouch, counted_as=lambda prep: "all")
        super().__init__(client.dispatch, prep, time.perf_counter())
        self.answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        client.dispatch.send(self)

    def answered(self, outcome: Outcome) -> None:
        self.answer.set_result(outcome.error or "python")

    def counted(self, token: object) -> None:
        self.answer.set_result("compiled")


async def idle_close(
    url: str, path: str, ends: list[float], block: float = 0.0
) -> tuple[float, tuple[str, str], Ledger]:
    """Two requests 0.1 s apart on one connection, then nothing: when it was parked the
    second time, and what answered each. ``block`` holds the loop up that long after
    the first (as a busy loop would: no timer runs meanwhile)."""
    slots = 1 if path == "compiled" else 0
    async with Client(ClientOptions(idle_timeout=IDLE), target=url, counter_slots=slots) as c:
        first = await Sent(c, Record("GET", "/")).answer
        await asyncio.sleep(0.1)
        time.sleep(block)
        second = await Sent(c, Record("GET", "/")).answer
        parked = time.monotonic()
        deadline = parked + 3 * IDLE
        while len(ends) < c.ledger.opened and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
    return parked, (first, second), c.ledger


@pytest.mark.parametrize("path", PATHS)
def test_an_idle_connection_is_closed_at_its_idle_timeout(path: str) -> None:
    """The sweep that would have closed it is due before it was parked again: it must not
    wait a whole idle timeout more (it used to, closing it at nearly twice the timeout)."""
    ends: list[float] = []
    with ThreadServer(eof_times(ends)) as server:
        parked, answers, ledger = uvloop.run(idle_close(server.url, path, ends))
        assert server.accepted == 1
    assert answers == ("python", "python" if path == "python" or pure() else "compiled")
    assert ledger.closed[CloseReason.IDLE_TIMEOUT] == 1
    [end] = ends
    assert IDLE - 0.05 <= end - parked <= IDLE + 0.2, f"closed {end - parked:.3f}s after parking"


@pytest.mark.parametrize("path", PATHS)
def test_a_connection_past_its_idle_timeout_is_never_used(path: str) -> None:
    """Even when no timer could run to close it (the loop was busy), a connection idle past
    its timeout is closed as it is taken, and the request goes out on a new one."""
    ends: list[float] = []
    with ThreadServer(eof_times(ends)) as server:
        _, answers, ledger = uvloop.run(idle_close(server.url, path, ends, block=IDLE))
        assert server.accepted == 2 and server.conn_requests() == [1, 1]
    assert answers == ("python", "python")  # a dial is the Python path's, on either
    assert ledger.closed[CloseReason.IDLE_TIMEOUT] == 2


# -- a connection lost mid-response ------------------------------------------------------------


def cut_off(how: str) -> Handler:
    """Keep-alive; each connection's third response is cut off after 10 of its 100 body
    bytes: with a clean close (FIN), or a reset (SO_LINGER 0: RST)."""

    async def handler(reader: Reader, writer: Writer, conn: ConnInfo) -> None:
        while await read_request(reader) is not None:
            if conn.count_request() < 3:
                writer.write(response(200, b"ok", [("X-A", "v")]))
                await writer.drain()
                continue
            writer.write(b"HTTP/1.1 200 OK\r\nX-A: v\r\nContent-Length: 100\r\n\r\n0123456789")
            await writer.drain()
            await asyncio.sleep(0.05)  # the part is read before the end comes
            if how == "reset":
                reset(writer)
            else:
                writer.write_eof()
                await reader.read()  # the client's close
            return

    return handler


@pytest.mark.parametrize(
    ("how", "reason", "text"),
    [
        ("close", CloseReason.SERVER_CLOSED_MID_RESPONSE, "server closed the connection"),
        ("reset", CloseReason.SERVER_RESET, "server reset the connection"),
    ],
)
def test_a_close_mid_response_is_not_a_reset(how: str, reason: CloseReason, text: str) -> None:
    """A server that closes (FIN) a response it has not finished is counted and said as
    closing it, one that resets it (RST) as resetting it: not the same fault."""
    recs = [get("/")]
    docs = []
    with ThreadServer(cut_off(how)) as server:
        for path in PATHS:
            asked = RunOptions(target=server.url, concurrency=1, requests=6)
            summary, counted = run_on(path, recs, asked, ClientOptions())
            assert summary.error_kinds == {"closed": 2} and summary.ok == 4, path
            closed = dict(summary.ledger.closed)
            assert closed == {reason: 2}, path
            assert all(e["error"] == f"{text} during the body" for e in summary.error_examples)
            assert took_part(path, counted)
            docs.append(comparable(summary, True, False))
    assert docs[0] == docs[1]
