"""The compiled HTTP/2 connection counts as the h2-library one does: the same records run
on both paths against one server give the same summary, less what timing decides
(:func:`helpers.comparable`). The library path is the oracle: every kind of response
(vouched for, a mismatch handed over, a body checked, reset, refused, over the drain limit,
with and without a content-length, trailers, request bodies that wait for the window)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from h2servers import H2Behaviour, H2Server, Route, framed
from helpers import both, comparable, pure
from tether.engine import compiled
from tether.engine.options import ClientOptions
from tether.model import BodyExpect, Expect, HeaderExpect, Record
from tether.run.options import RunOptions

BIG = b"b" * 10_000

ROUTES = {
    "/hdr": framed(200, b"with x-a", (b"x-a", b"v")),
    "/gone": framed(404, b"not here"),
    "/nolen": Route(200, (), b"no length " * 50, chunk=100),
    "/big": framed(200, BIG),
    "/big-nolen": Route(200, (), BIG, chunk=1000),
    "/trailers": Route(200, (), b"then trailers", trailers=((b"x-t", b"1"),)),
    "/empty": framed(204, b""),
}


def get(path: str, expect: Expect, method: str = "GET", body: bytes = b"") -> Record:
    return Record(method, path, body=body, expect=expect)


def records() -> list[Record]:
    ok = Expect((200,))
    return [
        get("/a", ok),
        get("/a", Expect((201,))),  # a mismatch: handed to the Python side at its head
        get("/hdr", Expect((200,), headers=(HeaderExpect("x-a", "equals", "v"),))),
        get("/hdr", Expect((200,), headers=(HeaderExpect("x-a", "equals", "w"),))),
        get("/gone", Expect((404,))),
        get("/nolen", ok),
        get("/big", ok),  # over the drain limit: read so far, then reset
        get("/big-nolen", ok),  # found over it only as it comes
        get("/trailers", ok),
        get("/empty", Expect((204,))),
        get("/a", ok, "POST", b"p" * 100_000),  # waits for the server's window
        get("/rst/cancel", ok),
        get("/refuse/once", ok),
        # a body checked: the Python side's from the start
        get("/a", Expect((200,), body=(BodyExpect("equals", "hello\n"),))),
    ]


@pytest.fixture(scope="module")
def h2c() -> Iterator[H2Server]:
    with H2Server(H2Behaviour(routes=ROUTES)) as server:
        yield server


@pytest.mark.parametrize("concurrency", [1, 4])
def test_every_kind_of_h2_response_is_counted_alike(h2c: H2Server, concurrency: int) -> None:
    h2c.forget_refused()  # (as each run finds it)
    recs = records()
    asked = RunOptions(target=h2c.url, concurrency=concurrency, requests=4 * len(recs))
    options = ClientOptions(http2_prior_knowledge=True, drain_limit=4096, follow_redirects=0)
    fast, slow, counted = both(recs, asked, options, h2c.forget_refused)
    sequential = concurrency == 1
    docs = [comparable(summary, sequential, False) for summary in (fast, slow)]
    for doc in docs:
        # How often a body waits for the window depends on when the server's updates come.
        h2 = doc["connections"]["h2"]
        assert h2.pop("flow_control_stalls") > 0 and h2.pop("flow_control_stall_s") > 0
    assert docs[0] == docs[1]
    assert fast.engine == compiled.ENGINE and slow.engine == "python"
    assert fast.ledger.carried == slow.ledger.carried == {"h2": fast.requests}
    if not pure():
        assert counted > len(recs)  # vouched for from end to end
    assert fast.mismatches == slow.mismatches > 0 and fast.errors == slow.errors > 0
