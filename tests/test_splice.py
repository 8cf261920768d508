"""A flow's request as the compiled path sends it: its bytes encoded once with their holes
(engine/splice.py) and filled per send, byte for byte what the Python path encodes from the
filled record. The compiled path's own (not on the pure-Python pass)."""

from __future__ import annotations

import asyncio

from tether.engine import compiled
from tether.engine.client import Client
from tether.engine.splice import LENGTH, Where, splice


def test_holes_are_cut_where_they_stand_and_filled_in_place() -> None:
    head = b"POST /i/{{id}} HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nX-T: {{t}}\r\n\r\n"
    cut = splice(head + b'{"n":{{n}}}', 11)
    assert [where for _, where in cut.holes] == [Where.TARGET, Where.HEADER, Where.BODY]
    assert LENGTH in cut.head
    sent = cut.fill([b"7", b"abc", b"123456789"], b"Cookie: s=1\r\n")
    assert sent == (
        b"POST /i/7 HTTP/1.1\r\nHost: h\r\nContent-Length: 15\r\nX-T: abc\r\n"
        b'Cookie: s=1\r\n\r\n{"n":123456789}'
    )


def test_text_that_looks_like_a_hole_stays_text_where_there_are_none() -> None:
    request = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n{{a}} {}"
    cut = splice(request, 8, holes=False)
    assert cut.holes == ()
    assert cut.fill([], b"Cookie: a=b\r\n") == request.replace(
        b"\r\n\r\n", b"\r\nCookie: a=b\r\n\r\n"
    )


def test_a_body_without_holes_stays_whole_after_the_cookie_line() -> None:
    cut = splice(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok", 2)
    assert cut.body is None
    assert cut.fill([], b"Cookie: a=b\r\n").endswith(b"Cookie: a=b\r\n\r\nok")
    assert cut.fill([]) == b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"


def test_the_compiled_splice_sends_what_the_full_plan_would() -> None:
    # A step's bytes as its compiled job sends them (its holes filled into the bytes
    # encoded once) are the bytes the Python path encodes from the filled record.
    from tether.run.flows import FlowSettings, Step

    assert compiled.native is not None, "the compiled extension did not build"

    record = {
        "method": "PUT",
        "url": "/items/{{id}}?who={{user}}",
        "headers": {"Authorization": "Bearer {{token}}", "X-N": "{{id}}-{{id}}"},
        "body": '{"name": "{{user}}", "n": {{id}}}',
        "expect": {"status": 200},
    }

    async def both() -> tuple[bytes, bytes]:
        from tether.engine.options import ClientOptions
        from tether.flow.cookies import CookieJar
        from tether.records.jsonl import from_object
        from tether.run.flows import Slots, _Cursor, filled

        client = Client(ClientOptions(), target="http://127.0.0.1:8080", counter_slots=4)
        step = Step.of(from_object(record, 1, "f", templates=True), "PUT /items")
        slots = Slots()
        step.compile(client, lambda group: group, jar=True, slots=slots)
        assert step.native is not None

        class User:
            def __init__(self) -> None:
                self.values = {"id": "42", "user": "é ü", "token": "abc.def"}
                self.jar = CookieJar()
                self.cursor = _Cursor()

        user = User()
        user.jar.store(["sid=s1; Path=/"], "http", "127.0.0.1", "/", 0.0)
        user.cursor.slots = slots.fill(user.values, user.jar)
        fast = step.fast(user)  # type: ignore[arg-type]
        full = client.prepare(filled(step, user.values, user.jar, client.base)).request.http11
        await client.aclose()
        assert FlowSettings().cookies
        return fast, full

    fast, full = asyncio.run(both())
    assert fast == full
    assert b"who=%C3%A9%20%C3%BC" in fast and b'"name": "\xc3\xa9 \xc3\xbc"' in fast
