"""Whatever bytes a server sends, the engine answers with an Outcome: a response or a request
error, never an exception, and the ledger balances afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers import ConnInfo, ThreadServer, read_request
from tether import Client, ClientOptions, Record

PAYLOADS: dict[str, bytes] = {}


async def replay_payload(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
) -> None:
    """Answer the request for /<key> with PAYLOADS[key], then close."""
    req = await read_request(reader)
    if req is not None:
        writer.write(PAYLOADS.pop(req.target.lstrip("/"), b""))
        await writer.drain()


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with ThreadServer(replay_payload) as srv:
        yield srv


status_lines = st.sampled_from(
    [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.0 200 OK",
        b"HTTP/1.1 100 Continue",
        b"HTTP/1.1 304 NM",
        b"HTTP/1.1 204 No",
        b"HTTP/1.1 999 X",
        b"HTTP/2 200",
        b"HTTP/1.1 20 Short",
        b"garbage",
    ]
)
header_lines = st.lists(
    st.sampled_from(
        [
            b"Content-Length: 5",
            b"Content-Length: 0",
            b"Content-Length: -1",
            b"Content-Length: 99999999999999999999",
            b"Transfer-Encoding: chunked",
            b"Connection: close",
            b"Connection: keep-alive",
            b"X: \x00\xff",
            b"Bad Header",
            b"Content-Length: 5, 6",
            b"Transfer-Encoding: gzip, chunked",
        ]
    ),
    max_size=4,
)
bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"0\r\nX: y\r\n\r\n"]),
)


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    head = b"\r\n".join([draw(status_lines), *draw(header_lines)])
    return head + b"\r\n\r\n" + draw(bodies)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(payload=st.one_of(responses(), st.binary(max_size=200)))
def test_any_server_bytes_give_an_outcome(server: ThreadServer, payload: bytes) -> None:
    key = str(len(PAYLOADS)) + "-" + str(id(payload))
    PAYLOADS[key] = payload

    async def go() -> None:
        client = Client(ClientOptions(timeout=2, drain_timeout=1), target=server.url)
        async with client:
            outcome = await client.fetch(Record("GET", "/" + key))
        assert (outcome.error is None) == (outcome.status >= 200), outcome
        assert outcome.error is None or outcome.error_kind in {
            "protocol",
            "closed",
            "timeout",
            "stale",
        }
        assert client.ledger.open_now == 0
        assert client.ledger.opened == sum(client.ledger.closed.values())

    uvloop.run(go())
