"""Response headers parsed lazily from the head's bytes agree with llhttp's own parse."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.http.heads import Headers, head_fields


class Collect:
    """An httptools protocol that keeps what llhttp calls headers."""

    def __init__(self) -> None:
        self.fields: list[tuple[bytes, bytes]] = []
        self.status = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))

    def on_message_complete(self) -> None:
        self.status = self.status or 1


def llhttp_fields(data: bytes) -> list[tuple[bytes, bytes]]:
    proto = Collect()
    httptools.HttpResponseParser(proto).feed_data(data)
    return proto.fields


names = st.sampled_from([b"Location", b"Content-Type", b"X-A", b"Set-Cookie", b"ETag"])
values = st.text(alphabet="abcXYZ019 /:;=-_.,", max_size=30).map(str.encode)


@given(st.lists(st.tuples(names, values), max_size=8), st.binary(max_size=20))
def test_head_fields_agree_with_llhttp(fields: list[tuple[bytes, bytes]], body: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in fields)
    data = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    # llhttp keeps trailing whitespace in a value; RFC 9110 says it is not part of it.
    expected = [
        (n.decode("latin-1"), v.rstrip(b" \t").decode("latin-1")) for n, v in llhttp_fields(data)
    ]
    assert head_fields(data) == expected


def test_interim_heads_are_skipped() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"
    )
    assert Headers(head=data) == {"location": "/x", "content-length": "0"}


def test_repeats_join_and_names_fold_to_lower_case() -> None:
    data = b"HTTP/1.1 200 OK\r\nVary: a\r\nVARY: b\r\nContent-Length: 0\r\n\r\n"
    headers = Headers(head=data)
    assert headers["vary"] == "a, b" and "Vary" not in headers


def test_bare_lf_and_folded_lines() -> None:
    data = b"HTTP/1.0 200 OK\nX-Long: one\n two\nServer: s\n\nbody: not a header"
    assert dict(Headers(head=data)) == {"x-long": "one two", "server": "s"}


def test_body_bytes_after_the_head_are_not_headers() -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nX-Fake: 1"
    assert dict(Headers(head=data)) == {"content-length": "9"}


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nX-A: \xa0a\xa0 \r\nX-A: b\r\n\r\n",  # read in one split
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: \xa0a\xa0 \r\nX-A: b\r\n\r\n",
    ],
)
def test_values_are_trimmed_of_blanks_only(data: bytes) -> None:
    # RFC 9110's optional whitespace is SP and HTAB: a Latin-1 NBSP is part of the value, as
    # the one-header search keeps it (a repeat or an interim head must not change a value).
    assert head_fields(data) == [("X-A", "\xa0a\xa0"), ("X-A", "b")]
    assert Headers(head=data)["x-a"] == "\xa0a\xa0, b"


def test_headers_from_http2_fields_read_as_a_heads_do() -> None:
    fields = [
        (b"location", b"/a"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"x", b"\xe9"),
    ]
    headers = Headers.of_fields(fields)
    assert headers["location"] == "/a" and headers.get("Location") == "/a"
    assert headers["set-cookie"] == "a=1, b=2"  # a repeated field is joined, as in a head
    assert "absent" not in headers and headers.get("absent") is None
    assert headers["x"] == "\xe9"  # Latin-1, one character a byte
    assert dict(headers) == {"location": "/a", "set-cookie": "a=1, b=2", "x": "\xe9"}
    assert dict(Headers.of_fields(fields)) == dict(
        Headers(
            b"HTTP/1.1 200 OK\r\nLocation: /a\r\n"
            b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX: \xe9\r\n\r\n"
        )
    )
