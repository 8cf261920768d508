"""A flow's captures and cookies as the compiled path takes them itself (engine/_flowstep.pxi),
held to the Python rules they stand in for: json.loads and tether.flow.captures for a JSON
member, tether.flow.cookies for a plain cookie, tether.run.flows for a value's encoding. Each
differential also counts what compiled code took, so that one which took nothing fails.
The compiled path's own (not on the pure-Python pass)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from flowservice import LOGIN, ME, session_server
from servers import ConnInfo, ThreadServer, read_request, response
from tether.engine import compiled
from tether.engine.splice import Where
from tether.flow.captures import json_path, json_value
from tether.flow.cookies import CookieJar
from tether.records import Reading, file_source
from tether.run import flows
from tether.run.flows import _encoded
from tether.run.options import RunOptions
from tether.run.session import run

native: Any = compiled.native
pytestmark = pytest.mark.skipif(native is None, reason="the compiled extension is not built")

KEYS = ["token", "id", "a", "t\u00e9"]


def _string(rng: random.Random) -> str:
    pieces = [
        "abc",
        "tok0",
        " ",
        "a b",
        "}",
        "]",
        ",",
        ":",
        "{",
        '\\"',
        "\\\\",
        "\\n",
        "\\u0041",
        "\\/",
        "\u00e9",
        "",
        "x" * 40,
    ]
    plain = pieces[:9] * 4  # escapes and non-ASCII now and then: those are the sender's
    return '"' + "".join(rng.choice(plain + pieces) for _ in range(rng.randint(0, 3))) + '"'


def _value(rng: random.Random, depth: int) -> str:
    pick = rng.randrange(12 if depth < 4 else 8)
    if pick < 3:
        return _string(rng)
    if pick == 3:
        return rng.choice(
            ["0", "-0", "7", "-12", "1.5", "2e3", "-0.0", "1E+2", "123456789012345678901"]
        )
    if pick == 4:
        return rng.choice(["true", "false", "null"] * 4 + ["NaN", "Infinity"])
    if pick in (5, 6, 7):
        return _string(rng)
    if pick < 10:
        return _object(rng, depth + 1)
    items = [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return "[" + _ws(rng) + ("," + _ws(rng)).join(items) + _ws(rng) + "]"


def _object(rng: random.Random, depth: int) -> str:
    members = []
    for _ in range(rng.randint(0, 4)):
        key = rng.choice(["token", "id", "a", "x"] * 8 + ["t\u00e9", "to\\u006ben"])
        members.append(f'"{key}"{_ws(rng)}:{_ws(rng)}{_value(rng, depth)}')
    return "{" + _ws(rng) + ("," + _ws(rng)).join(members) + _ws(rng) + "}"


def _ws(rng: random.Random) -> str:
    return rng.choice(["", "", " ", "\n", "\t ", "\r\n"])


def _mutated(rng: random.Random, text: str) -> str:
    if not text or rng.random() < 0.7:
        return text
    at = rng.randrange(len(text))
    edit = rng.choice('{}[],:"\\ 0a-.')
    return rng.choice(
        [
            text[:at] + text[at + 1 :],
            text[:at] + edit + text[at:],
            text[:at] + edit + text[at + 1 :],
            text + rng.choice(["x", ",", "}"]),
        ]
    )


def test_a_json_member_is_taken_as_json_loads_reads_it() -> None:
    rng = random.Random(7)
    took = found = 0
    for _ in range(20_000):
        doc = _mutated(rng, _ws(rng) + _object(rng, 0) + _ws(rng)).encode()
        key = rng.choice(KEYS)
        mine = native.json_member(doc, key.encode())
        theirs = json_value(doc, json_path(f"$.{key}"))
        if mine is not None:
            assert mine.decode() == theirs, doc
            took += 1
        found += theirs is not None
    assert took > found // 3  # the common case is taken here


@pytest.mark.parametrize(
    ("doc", "taken"),
    [
        (b'{"token":"abc"}', b"abc"),
        (b' {"token" : "a b" , "x":[1,{"y":"}"}]}\r\n', b"a b"),
        (b'{"token":1,"token":"z"}', b"z"),
        (b'{"token":-12}', b"-12"),
        (b'{"token":true}', b"true"),
        (b'{"token":""}', b""),
        (b'{"token":"a\\"b"}', None),  # escapes: the sender decodes them
        (b'{"token":"z","token":1.5}', None),  # the last one counts
        (b'{"token":-0}', None),  # 0 once read
        (b'{"to\\u006ben":"x","token":"y"}', None),  # a name with escapes may be the key
        (b'{"token":"x",}', None),
        (b'{"token":"x"} x', None),
        (b'[{"token":"x"}]', None),
        (b'{"token":NaN}', None),
        (b'{"token":"x","n":' + b"1" * 5000 + b"}", None),  # int() refuses it
        (b'{"token":"x","deep":' + b"[" * 80 + b"]" * 80 + b"}", None),
        (b'{"token":"caf\xc3\xa9"}', None),
    ],
)
def test_what_a_json_member_gives_or_leaves_to_the_sender(doc: bytes, taken: bytes | None) -> None:
    assert native.json_member(doc, b"token") == taken
    if taken is not None:
        assert json_value(doc, json_path("$.token")) == taken.decode()


def test_a_body_nested_past_what_json_loads_reads_is_a_miss_not_a_crash() -> None:
    deep = b'{"token":"x","deep":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert native.json_member(deep, b"token") is None
    assert json_value(deep, json_path("$.token")) is None  # (a RecursionError before)


NAMES = ["sid", "a", "x-y", "a b", "", "na;me"]
VALUES = ["abc", "", "a b", '"q"', "v,1", "%41", "x" * 5000]
ATTRIBUTES = [
    "Path=/",
    "path=/",
    "Path=/x",
    "Path=",
    "HttpOnly",
    "httponly=1",
    "SameSite=Lax",
    "Secure",
    "Max-Age=0",
    "Max-Age=60",
    "Expires=Wed, 21 Oct 2015 07:28:00 GMT",
    "Domain=127.0.0.1",
    "",
    " ",
    "Unknown=1",
    "Path = / ",
]


def test_a_plain_cookie_is_one_every_request_to_its_host_carries() -> None:
    rng = random.Random(11)
    took = 0
    for _ in range(5_000):
        text = rng.choice(NAMES) + "=" + rng.choice(VALUES)
        for _ in range(rng.randint(0, 3)):
            text += rng.choice([";", "; ", " ;"]) + rng.choice(ATTRIBUTES)
        root = rng.random() < 0.5
        pair = native.simple_cookie(text.encode(), root)
        if pair is None:
            continue
        took += 1
        jar = CookieJar()
        jar.store([text], "http", "127.0.0.1", "/login" if root else "/a/login", 1000.0)
        line = f"{pair[0].decode()}={pair[1].decode()}"
        for scheme in ("http", "https"):
            for path in ("/", "/a/b", "/zzz?q=1"):
                assert jar.header(scheme, "127.0.0.1", path, 1000.0) == line, text
        assert jar.header("http", "127.0.0.2", "/", 1000.0) is None
    assert took > 150


def test_a_value_goes_into_a_hole_encoded_as_the_python_side_encodes_it() -> None:
    rng = random.Random(5)
    for _ in range(5_000):
        value = bytes(rng.choice([*range(0, 128), 32, 65, 97]) for _ in range(rng.randint(0, 8)))
        for where in (Where.TARGET, Where.HEADER):
            assert native.placed(value, int(where)) == _encoded(value.decode("ascii"), where)


def test_a_flow_of_takes_compiled_code_can_make_never_calls_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten iterations of a login and three /me: the token and the cookie are taken, and each
    # iteration begun, by the compiled cursor; the Python side hears of the run's end only.
    calls = []
    following = flows.VirtualUser.following

    def counted(self: Any, *args: Any) -> Any:
        calls.append(self.cursor.pos)
        return following(self, *args)

    monkeypatch.setattr(flows.VirtualUser, "following", counted)
    path = tmp_path / "flow.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (LOGIN, ME, ME, ME)))
    server, sessions = session_server()
    with server:
        summary = run(
            file_source(str(path), Reading()),
            RunOptions(target=server.url, concurrency=1, requests=40),
        )
    doc = summary.to_dict()
    assert (doc["ok"], sessions.counts) == (40, {"login": 10, "me": 30})
    assert doc["flows"]["main"]["completed"] == 10
    assert len(calls) <= 1


def _cookie_server() -> tuple[ThreadServer, list[str]]:
    # /a sets a=1 and b=2, /b sets a=3 and c=4, /c answers 200 only to the Cookie header a
    # jar sends then (a keeps its place: its creation time).
    seen: list[str] = []
    sets = {"/a": ["a=1; Path=/", "b=2"], "/b": ["a=3; HttpOnly", "c=4; Path=/; SameSite=Lax"]}

    async def handler(reader: Any, writer: Any, conn: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            if req.target == "/c":
                seen.append(req.headers.get("cookie", ""))
                ok = req.headers.get("cookie") == "a=3; b=2; c=4"
                writer.write(response(200 if ok else 400, b"c"))
            else:
                fields = [("Set-Cookie", text) for text in sets[req.target]]
                writer.write(response(200, b"set", fields))
            await writer.drain()

    return ThreadServer(handler), seen


@pytest.mark.parametrize("on_compiled", [True, False], ids=["compiled", "python"])
def test_cookies_set_over_steps_go_back_in_the_order_they_were_made(
    tmp_path: Path, on_compiled: bool
) -> None:
    steps = [{"url": u, "expect": {"status": 200}, "flow": "f"} for u in ("/a", "/b", "/c")]
    path = tmp_path / "flow.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in steps))
    server, seen = _cookie_server()
    with server:
        summary = run(
            file_source(str(path), Reading()),
            RunOptions(target=server.url, concurrency=2, requests=30, compiled=on_compiled),
        )
    assert (summary.ok, seen) == (30, ["a=3; b=2; c=4"] * 10)
