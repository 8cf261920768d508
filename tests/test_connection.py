"""The connection's state in one place: one request at a time (a send on a busy connection
is refused), and one decision of what a lost connection means, for the ledger and for the
request in flight alike."""

from __future__ import annotations

import asyncio
import threading

import pytest
import uvloop

from servers import ConnInfo, ThreadServer, read_request, response
from tether import Client, CloseReason, Record
from tether.engine.exchange import Exchange, Stage, classify_lost
from tether.engine.interface import ConnectionBusy
from tether.errors import ConnectionClosed, RequestError, StaleConnection
from tether.model import BodyNeed


def test_a_send_on_a_busy_connection_is_refused() -> None:
    held, answer = threading.Event(), threading.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, c: ConnInfo) -> None:
        while await read_request(reader) is not None:
            c.count_request()
            held.set()
            await asyncio.to_thread(answer.wait, 10)
            writer.write(response(200, b"ok"))
            await writer.drain()

    async def go(url: str) -> int:
        async with Client(target=url) as client:
            first = asyncio.ensure_future(client.fetch(Record("GET", "/")))
            assert await asyncio.to_thread(held.wait, 10)
            [conn] = client.pool.connections()
            request = client.prepare(Record("GET", "/")).request
            with pytest.raises(ConnectionBusy, match="ACTIVE"):
                conn.send(request, BodyNeed.DISCARD, 0.0, lambda r, e: None)
            answer.set()
            outcome = await first
        assert outcome.error is None
        return outcome.status

    with ThreadServer(hold) as srv:
        assert uvloop.run(go(srv.url)) == 200
    assert (srv.accepted, srv.requests) == (1, 1)  # the refused send wrote nothing


CLOSE_DELIMITED = b"HTTP/1.0 200 OK\r\n\r\n"
WITH_LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"


def exchange(stage: Stage, reused: bool = False, head: bytes = b"") -> Exchange:
    ex = Exchange(1, reused, "GET", BodyNeed.DISCARD, lambda r, e: None, 0.0)
    ex.stage, ex.head = stage, head
    return ex


RESET = ConnectionResetError()

# (ours, the exchange in flight, the transport's exception) -> (ledger reason, error, text)
CASES = [
    (None, None, None, CloseReason.SERVER_IDLE, None, ""),
    (CloseReason.TIMEOUT, None, None, CloseReason.TIMEOUT, None, ""),
    (
        CloseReason.UNDRAINED,
        exchange(Stage.BODY, head=WITH_LENGTH),
        None,
        CloseReason.UNDRAINED,
        ConnectionClosed,
        "connection closed: body over the drain limit",
    ),
    (None, exchange(Stage.BODY, head=CLOSE_DELIMITED), None, CloseReason.SERVER_CLOSE, None, ""),
    (
        None,
        exchange(Stage.BODY, head=CLOSE_DELIMITED),
        RESET,
        CloseReason.SERVER_RESET,
        ConnectionClosed,
        "server reset the connection during the body",
    ),
    (
        None,
        exchange(Stage.BODY, head=WITH_LENGTH),
        None,
        CloseReason.SERVER_CLOSED_MID_RESPONSE,
        ConnectionClosed,
        "server closed the connection during the body",
    ),
    (
        None,
        exchange(Stage.SENT, reused=True),
        None,
        CloseReason.STALE,
        StaleConnection,
        "server closed the reused connection",
    ),
    (
        None,
        exchange(Stage.SENT),
        None,
        CloseReason.SERVER_CLOSED_MID_RESPONSE,
        ConnectionClosed,
        "server closed the connection before responding",
    ),
    (
        None,
        exchange(Stage.HEAD, head=b"HTTP/1.1 200"),
        RESET,
        CloseReason.SERVER_RESET,
        ConnectionClosed,
        "server reset the connection during the headers",
    ),
    (
        None,
        exchange(Stage.HEAD, head=b"HTTP/1.1 200"),
        None,
        CloseReason.SERVER_CLOSED_MID_RESPONSE,
        ConnectionClosed,
        "server closed the connection during the headers",
    ),
    (
        None,
        exchange(Stage.BODY, head=WITH_LENGTH),
        TimeoutError(110, "Connection timed out"),
        CloseReason.SERVER_RESET,
        ConnectionClosed,
        "connection failed during the body: [Errno 110] Connection timed out",
    ),
]


@pytest.mark.parametrize(("ours", "ex", "exc", "reason", "error", "text"), CASES)
def test_a_lost_connection_is_classified_once_for_ledger_and_request(
    ours: CloseReason | None,
    ex: Exchange | None,
    exc: Exception | None,
    reason: CloseReason,
    error: type[RequestError] | None,
    text: str,
) -> None:
    got_reason, got_error = classify_lost(ours, ex, exc)
    assert got_reason is reason
    if error is None:
        assert got_error is None
    else:
        assert isinstance(got_error, error) and text in str(got_error)


def test_the_ledger_says_stale_exactly_when_the_request_may_be_retried() -> None:
    for ours, ex, exc, *_ in CASES:
        reason, error = classify_lost(ours, ex, exc)
        assert (reason is CloseReason.STALE) == isinstance(error, StaleConnection)


def test_a_fetch_in_flight_when_the_client_closes_ends_with_an_error() -> None:
    held = threading.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, c: ConnInfo) -> None:
        await read_request(reader)
        held.set()
        await asyncio.sleep(60)  # never answers: only the client's close ends the request

    async def go(url: str) -> str | None:
        client = Client(target=url)
        fetching = asyncio.ensure_future(client.fetch(Record("GET", "/")))
        assert await asyncio.to_thread(held.wait, 10)
        await client.aclose()
        outcome = await asyncio.wait_for(fetching, 10)  # an outcome, not a hang
        return outcome.error_kind

    with ThreadServer(hold) as srv:
        assert uvloop.run(go(srv.url)) == "closed"
