"""The capture proxy's pure rules: what a hop keeps (RFC 9110 7.6.1), the quick head rewrite
held to the slow one, what a record keeps of an exchange, and the closing sentence."""

from __future__ import annotations

import itertools

import pytest

from tether.capture import Capture
from tether.commands.capture import closing_lines
from tether.errors import InputError
from tether.http.heads import Headers, head_fields
from tether.ledger import CloseReason, Ledger
from tether.model import Outcome, Record
from tether.proxy.forward import Tally
from tether.proxy.hops import (
    forwarded_request,
    framed,
    response_bytes,
    returned,
    returned_head,
    returned_response,
)
from tether.proxy.options import CaptureOptions
from tether.proxy.recording import RecordRules, path_of, record_of, wanted
from tether.proxy.serve import Captured, listen_address
from tether.secrets import is_placeholder, placeholder_in


def test_hop_by_hop_fields_and_those_connection_names_stay_behind() -> None:
    fields = [
        ("Host", "a"),
        ("Connection", "keep-alive, X-Private"),
        ("X-Private", "p"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Proxy-Connection", "keep-alive"),
        ("Content-Length", "2"),
        ("Expect", "100-continue"),
        ("Accept", "*/*"),
        ("Authorization", "B x"),
    ]
    assert forwarded_request(fields) == [("Accept", "*/*"), ("Authorization", "B x")]


def test_a_response_keeps_its_length_only_where_it_describes_a_body_not_sent() -> None:
    fields = [("Content-Type", "text/plain"), ("Content-Length", "5"), ("Connection", "close")]
    assert returned_response(fields, keep_length=False) == [("Content-Type", "text/plain")]
    assert returned_response(fields, keep_length=True) == fields[:2]


HEADS = [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 302 Found\r\nLocation: /x\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nKeep-Alive: timeout=5\r\n\r\n",
    b"HTTP/1.1 200 \r\nTransfer-Encoding: chunked\r\nX-A: \r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nconnection: close\r\nx-b: 1\r\n\r\n",
]


@pytest.mark.parametrize(
    ("head", "via", "close"), list(itertools.product(HEADS, (False, True), (False, True)))
)
def test_the_quick_head_rewrite_says_what_the_slow_one_says(
    head: bytes, via: bool, close: bool
) -> None:
    quick = returned_head(head, via=via)
    assert quick is not None
    status = int(head[9:12])
    reason = head.split(b"\r\n", 1)[0].split(b" ", 2)[2].decode()
    fields = returned_response(head_fields(head), keep_length=False, via=via)
    slow = response_bytes(status, reason, fields, b"body", head_only=False, close=close)
    assert framed(quick, b"body", close=close) == slow


def test_the_answer_takes_the_slow_way_where_the_quick_one_cannot_tell() -> None:
    named = b"HTTP/1.1 200 OK\r\nConnection: X-A\r\nX-A: 1\r\nX-B: 2\r\n\r\n"
    assert returned(named, 200, b"hi", head_only=False, close=False) == (
        b"HTTP/1.1 200 OK\r\nX-B: 2\r\nContent-Length: 2\r\n\r\nhi"
    )
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nKeep-Alive: timeout=5\r\n\r\n"
    assert returned(head, 200, b"", head_only=True, close=True) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
    )


def test_the_quick_head_rewrite_leaves_what_it_cannot_tell() -> None:
    assert returned_head(b"HTTP/1.1 200 OK\r\nConnection: X-A\r\nX-A: 1\r\n\r\n", via=False) is None
    assert returned_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", via=False) is None


def test_bodiless_statuses_and_head_get_no_framing_of_a_body() -> None:
    assert b"Content-Length" not in response_bytes(
        204, "No Content", [], b"", head_only=False, close=False
    )
    head = response_bytes(200, "OK", [("Content-Length", "9")], b"", head_only=True, close=False)
    assert head == b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"


def _outcome(body: bytes, status: int = 200, head: bytes = b"") -> Outcome:
    head = head or b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n\r\n" % status
    return Outcome(Record("GET", "/"), status=status, headers=Headers(head), body=body)


def test_a_record_keeps_the_request_and_expects_its_response() -> None:
    rules = RecordRules()
    fields = [("Accept", "*/*"), ("Cookie", "sid=1"), ("authorization", "B x")]
    made = record_of(3, "GET", "/users/42?x=1", fields, b"", _outcome(b'{"a": [1]}'), rules)
    assert isinstance(made, Record)
    assert (made.line, made.source, made.tag) == (3, "capture", "GET /users/{id}")
    assert made.expect.status == (200,)
    assert made.expect.body[0].value == {"a": [1]}
    assert made.headers[0] == ("Accept", "*/*")
    assert placeholder_in(made.headers) == "Cookie"
    assert is_placeholder("authorization", made.headers[2][1])
    kept = record_of(1, "GET", "/", fields, b"", _outcome(b"{}"), RecordRules(keep_secrets=True))
    assert isinstance(kept, Record) and kept.headers == tuple(fields)


def test_a_body_past_max_body_is_a_digest_in_a_response_and_no_record_in_a_request() -> None:
    rules = RecordRules(Capture(digest_over=4), max_body=4)
    made = record_of(1, "GET", "/", [], b"", _outcome(b'{"long": 1}'), rules)
    assert isinstance(made, Record) and made.expect.body[0].rule == "sha256"
    refused = record_of(1, "POST", "/", [], b"12345", _outcome(b"{}"), rules)
    assert refused == "its request body is over --max-body (4 bytes)"


def test_only_and_exclude_filter_by_prefix_and_targets_become_paths() -> None:
    rules = RecordRules(only=("/api/",), exclude=("/api/health",))
    assert wanted("/api/users", rules)
    assert not wanted("/api/health", rules) and not wanted("/static/x", rules)
    assert path_of("http://h:1/a/b?q=1") == "/a/b?q=1"
    assert path_of("/x") == "/x"


def test_listen_addresses() -> None:
    assert listen_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert listen_address("[::1]:8081") == ("::1", 8081)
    for bad in ("8081", "host:", "h:99999", ":80"):
        with pytest.raises(InputError, match="--listen"):
            listen_address(bad)


def test_the_closing_lines_say_what_was_written_and_what_was_not() -> None:
    ledger = Ledger()
    ledger.on_open()
    ledger.on_close(CloseReason.SHUTDOWN, requests=7)
    tally = Tally(exchanges=9, written=7, filtered=1)
    tally.upstream_failed["connect"] += 1
    done = Captured(tally, accepted=3, refused={408: 2}, ledger=ledger, mirror=None)
    lines = closing_lines(done, CaptureOptions(upstream="http://u", output="-"))
    assert lines[0] == "capture: 9 requests from 3 client connections; 7 records written to stdout"
    assert "  1 not recorded: outside --only/--exclude" in lines
    assert "  1 answered 502/504: the upstream failed (connect)" in lines
    assert "  2 client requests refused with 408" in lines
    assert lines[-1] == "  upstream: 1 connections opened for 7 requests (7.0 per connection)"
