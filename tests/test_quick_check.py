"""The hot path's compiled check never passes a response that an independent oracle faults,
vouches for the plain common case, and leaves a run's counts exactly as the full check leaves
them.

The oracle reads a head with llhttp (through httptools) and applies the expectation's rules
itself, as :mod:`tether.check` documents them: nothing of tether's own head parsing
(``head_lower``, ``one_header``, ``Headers``, ``header_key``) is used to judge it."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

import httptools
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from helpers import comparable
from servers import NginxFactory, NginxServer
from tether.check import QuickCheck, check, quick_check
from tether.engine.client import Client
from tether.engine.connection import STRICT_HEADS
from tether.http.heads import UNSURE, Headers, head_fields, head_lower, header_key, one_header
from tether.model import BodyExpect, Expect, HeaderExpect, Outcome, Record
from tether.run.options import RunOptions
from tether.run.pacer import parse_rate
from tether.run.session import planner, run

# --- the oracle ---------------------------------------------------------------------------------


class Heads:
    """An httptools protocol keeping the status and header fields of every message llhttp
    reads, interim (1xx) ones included."""

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.messages: list[tuple[int, list[tuple[bytes, bytes]]]] = []
        self._fields: list[tuple[bytes, bytes]] = []

    def on_message_begin(self) -> None:
        self._fields = []

    def on_header(self, name: bytes, value: bytes) -> None:
        # httptools joins the pieces llhttp hands it (a name or a value split across reads,
        # even fed a byte at a time) before this call: one call is one whole field, and two
        # calls with one name are that field repeated.
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.messages.append((self.parser.get_status_code(), self._fields))


def llhttp_head(data: bytes, lenient: bool = False) -> tuple[int, list[tuple[bytes, bytes]]] | None:
    """The status and fields of the final response head llhttp reads at the start of
    ``data``; None when it refuses the head. ``lenient``: with llhttp's leniencies for header
    values and bare LF line ends (what a tolerant reader takes from a head that is not plain)."""
    proto = Heads()
    parser = httptools.HttpResponseParser(proto)
    proto.parser = parser
    if lenient:
        parser.set_dangerous_leniencies(lenient_headers=True, lenient_optional_cr_before_lf=True)
    try:
        parser.feed_data(data)
    except httptools.HttpParserError:
        return None
    final = [message for message in proto.messages if not 100 <= message[0] < 200]
    return final[0] if final else None


def llhttp_accepts(data: bytes) -> bool:
    return llhttp_head(data) is not None


def oracle(expect: Expect, status: int, data: bytes, lenient: bool = False) -> list[str]:
    """The fields (named as :func:`tether.check.check` names them) in which the response
    with ``status`` and the head at the start of ``data`` fails ``expect``; empty when it
    meets it. Header rules are judged on llhttp's reading of the head, by the check's
    documented semantics: names compare case-insensitively, repeated fields join with
    ``", "``, a value is trimmed of blanks (SP and HTAB: RFC 9110's OWS, nothing else) and
    decoded as Latin-1, ``equals`` is exact, ``absent`` means no such field at all.

    A head llhttp refuses is read again with ``lenient`` (else it stays refused); a head
    with no reading at all fails every header rule: nothing can vouch for what is in it."""
    faults = ["status"] if expect.status and status not in expect.status else []
    if not expect.headers:
        return faults
    read = llhttp_head(data) or (llhttp_head(data, lenient=True) if lenient else None)
    if read is None:
        return faults + [f"header {rule.name}" for rule in expect.headers]
    parsed_status, fields = read
    assert parsed_status == status  # the heads below carry the status they are given
    for rule in expect.headers:
        name = rule.name.lower().encode("latin-1")
        values = [value.strip(b" \t") for field, value in fields if field.lower() == name]
        got = b", ".join(values).decode("latin-1") if values else None
        if rule.rule == "absent":
            bad = got is not None
        elif rule.rule == "equals":
            bad = got != rule.value
        else:
            bad = got is None or re.search(rule.value, got) is None
        if bad:
            faults.append(f"header {rule.name}")
    return faults


@pytest.mark.parametrize(
    ("rule", "head", "faults"),
    [
        # Names compare case-insensitively; the value is trimmed of SP and HTAB only.
        (HeaderExpect("location", "equals", "/x"), b"LOCATION: \t/x \t\r\n", False),
        (HeaderExpect("location", "equals", "/x"), b"Location: /x\xa0\r\n", True),
        (HeaderExpect("location", "equals", "/x"), b"Location: /x/y\r\n", True),
        (HeaderExpect("location", "equals", "/x"), b"X-Location: /x\r\n", True),
        # Repeated fields join; Latin-1 decodes every byte.
        (HeaderExpect("location", "equals", "/x, /y"), b"Location: /x\r\nlocation: /y\r\n", False),
        (HeaderExpect("location", "equals", "/x"), b"Location: /x\r\nlocation: /x\r\n", True),
        (HeaderExpect("location", "equals", "\xe9"), b"Location: \xe9\r\n", False),
        (HeaderExpect("location", "equals", ""), b"Location:\r\n", False),
        (HeaderExpect("location", "absent"), b"X-A: location\r\n", False),
        (HeaderExpect("location", "absent"), b"location:\r\n", True),
    ],
)
def test_the_oracle_judges_as_check_documents(
    rule: HeaderExpect, head: bytes, faults: bool
) -> None:
    data = b"HTTP/1.1 200 OK\r\n" + head + b"\r\n"
    assert bool(oracle(Expect(headers=(rule,)), 200, data)) == faults


def test_the_oracle_reads_the_final_head_and_fails_a_head_it_cannot_read() -> None:
    expect = Expect(headers=(HeaderExpect("location", "equals", "/x"),))
    interim = (
        b"HTTP/1.1 100 Continue\r\nLocation: /y\r\n\r\nHTTP/1.1 200 OK\r\nLocation: /x\r\n\r\n"
    )
    assert oracle(expect, 200, interim) == []
    folded = b"HTTP/1.1 200 OK\r\nLocation: /x\r\n /y\r\n\r\n"
    assert oracle(expect, 200, folded) == ["header location"]  # llhttp refuses it
    assert oracle(expect, 200, folded, lenient=True) == ["header location"]  # "/x /y"
    assert oracle(expect, 200, b"HTTP/1.1 200 OK\nLocation: /x\n\n", lenient=True) == []
    assert oracle(expect, 200, b"HTTP/1.1 200 OK\r\nLocation : /x\r\n\r\n", lenient=True)
    assert oracle(Expect(status=(200,)), 302, b"") == ["status"]


RECORD = Record(method="GET", url="/")


def quick_passes(expect: Expect, status: int, head: bytes, parsed: bool = False) -> bool:
    quick = quick_check(expect, parsed)
    return quick is not None and quick.passes(status, head)


# --- the properties: quick passes => the oracle finds nothing; on plain heads they agree ------

NAMES = ["Location", "location", "LOCATION", "X-A", "x-a", "ETag", "X-Location"]
# Values with the edges and bytes where a raw search and a full parse could part ways.
VALUE_BYTES = st.sampled_from([b"/x", b"/y", b"", b" ", b"\t", b"a b", b"\xa0", b"\x0b", b"\xe9"])
values = st.one_of(
    # What the rules below ask for, some with blanks around, so that rules often hold.
    st.sampled_from([b"/x", b" /x \t", b"\t/y", b"a b", b"\xe9", b"", b"/x/y"]),
    st.lists(VALUE_BYTES, max_size=3).map(b"".join),
)
blanks = st.sampled_from([b"", b"", b" \t"])
plain_values = values.filter(lambda v: b"\x0b" not in v)  # no control bytes but HTAB
# A line of a head: a field, a field with a blank before its colon, a folded continuation.
field_lines = st.one_of(
    st.tuples(st.sampled_from(NAMES), values).map(lambda f: f[0].encode() + b":" + f[1]),
    st.tuples(st.sampled_from(NAMES), values).map(lambda f: f[0].encode() + b" :" + f[1]),
    values.map(lambda v: b" " + v),
)
line_ends = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])
prefixes = st.sampled_from([b"", b"", b"HTTP/1.1 100 Continue\r\nLocation: /y\r\n\r\n"])
bodies = st.sampled_from([b"", b"Location: /x\r\n"])  # a body that looks like a field


@st.composite
def messy_heads(draw: Any) -> tuple[int, bytes]:
    """Heads that are mostly not plain: bare LFs, folds, blanks before colons, control bytes,
    repeated names, an interim response first."""
    status = draw(st.sampled_from([200, 201, 302]))
    lines = draw(st.lists(st.tuples(field_lines, line_ends), max_size=6))
    head = b"HTTP/1.1 %d R\r\n" % status + b"".join(line + end for line, end in lines)
    return status, draw(prefixes) + head + b"\r\n" + draw(bodies)


@st.composite
def plain_heads(draw: Any) -> tuple[int, bytes]:
    """The common kind: one final response, CRLF line ends, every field on its own line as
    ``Name:value``, no name twice, values of visible bytes and blanks."""
    status = draw(st.sampled_from([200, 201, 302]))
    names = draw(st.lists(st.sampled_from(NAMES), max_size=5, unique_by=str.lower))
    fields = b"".join(name.encode() + b":" + draw(plain_values) + b"\r\n" for name in names)
    return status, b"HTTP/1.1 %d R\r\n" % status + fields + b"\r\n" + draw(bodies)


header_rules = st.one_of(
    st.builds(
        HeaderExpect,
        st.sampled_from(["location", "x-a", "etag"]),
        st.just("equals"),
        st.sampled_from(
            ["/x", "/y", "", "a b", "\xe9", "/x/y", "/x, /y", "/x\xa0", "/x\r\nX-A: a b"]
        ),
    ),
    st.builds(HeaderExpect, st.sampled_from(["location", "x-a"]), st.just("absent")),
)
expects = st.builds(
    Expect,
    status=st.sampled_from([(), (200,), (302,), (200, 201)]),
    headers=st.lists(header_rules, max_size=3, unique_by=lambda r: r.name).map(tuple),
)


@st.composite
def near_heads(draw: Any, expect: Expect, plain: bool = False) -> tuple[int, bytes]:
    """A head built to meet ``expect``, or to just miss it: for each ``equals`` rule its
    field with the value as asked (blanks around it or not) or just off it, for each
    ``absent`` rule nothing, a name that only looks like it, or the field itself; names in
    any case, other fields between. Unless ``plain``, a rule's field may come twice, and the
    head be spoilt as :func:`messy_heads` are. Random heads would hardly ever meet a rule."""
    status = draw(st.sampled_from([*(expect.status or (200,)) * 3, 200, 201, 302]))
    vals = plain_values if plain else values
    lines: list[bytes] = []
    for rule in expect.headers:
        name = draw(st.sampled_from([rule.name, rule.name.upper(), rule.name.title()])).encode()
        want = rule.value.encode("latin-1")
        if rule.rule == "equals":
            off = [want + b"/", want + b"\xa0", want[:-1], want.upper()]  # NBSP is no blank
            near = draw(st.sampled_from([want, want, want, *off]))
            lead, trail = draw(st.sampled_from([b"", b" ", b" ", b"\t"])), draw(blanks)
            field = name + b":" + lead + near + trail
        elif (spelt := draw(st.sampled_from([None, None, b"x-" + name, name]))) is not None:
            field = spelt + b":" + draw(vals)
        else:
            continue
        lines.append(field)
        if not plain and draw(st.integers(0, 3)) == 0:
            # The field again, as it was or with another value: a full parse joins the two.
            lines.append(draw(st.sampled_from([field, field.partition(b":")[0] + b":/y"])))
    taken = {line.partition(b":")[0].lower() for line in lines}
    for other in draw(st.lists(st.sampled_from(NAMES), max_size=3)):
        if not (plain and other.lower().encode() in taken):
            lines.append(other.encode() + b":" + draw(vals))
            taken.add(other.lower().encode())
    lines = draw(st.permutations(lines))
    ends = [b"\r\n"] * len(lines)
    prefix = b""
    if not plain and lines:
        at = draw(st.integers(0, len(lines) - 1))
        spoil = draw(st.sampled_from(["none"] * 4 + ["lf", "fold", "colon", "vt", "interim"]))
        if spoil == "lf":
            ends[at] = b"\n"
        elif spoil == "fold":
            lines.insert(at + 1, b" " + draw(vals))
            ends.append(b"\r\n")
        elif spoil == "colon":
            lines[at] = lines[at].replace(b":", b" :", 1)
        elif spoil == "vt":
            lines[at] += b"\x0b"
        elif spoil == "interim":
            prefix = draw(prefixes)
    head = b"HTTP/1.1 %d R\r\n" % status + b"".join(map(bytes.__add__, lines, ends))
    return status, prefix + head + b"\r\n" + draw(bodies)


def cases(plain: bool) -> st.SearchStrategy[tuple[Expect, tuple[int, bytes]]]:
    """An expectation and a response: a head of any kind, or (twice as often) one built to
    nearly meet it."""
    anyhow = plain_heads() if plain else st.one_of(plain_heads(), messy_heads())
    return expects.flatmap(
        lambda e: st.tuples(
            st.just(e), st.one_of(anyhow, near_heads(e, plain), near_heads(e, plain))
        )
    )


@settings(deadline=None, max_examples=400)  # more: a header rule is met in few examples
@given(cases(plain=False))
def test_quick_never_passes_what_the_oracle_faults(case: tuple[Expect, tuple[int, bytes]]) -> None:
    # A head no parser has vetted (parsed=False): the quick check must see for itself what is
    # not plain. The oracle reads what llhttp refuses leniently, and fails every header rule
    # on a head it cannot read at all.
    expect, (status, head) = case
    if quick_passes(expect, status, head):
        assert oracle(expect, status, head, lenient=True) == []


@settings(deadline=None, max_examples=400)  # more: a header rule is met in few examples
@given(cases(plain=False))
def test_on_heads_llhttp_takes_quick_never_passes_what_the_oracle_faults(
    case: tuple[Expect, tuple[int, bytes]],
) -> None:
    # What the engine runs: the head has been through llhttp, which refuses heads that are
    # not plain, so the quick check does not look for those itself.
    expect, (status, head) = case
    assume(llhttp_accepts(head))
    if quick_passes(expect, status, head, parsed=True):
        assert oracle(expect, status, head) == []


def test_the_engine_parser_refuses_heads_that_are_not_plain() -> None:
    assert STRICT_HEADS


@settings(deadline=None, max_examples=400)  # more: a header rule is met in few examples
@given(cases(plain=True), st.booleans())
def test_on_a_plain_head_quick_agrees_with_the_oracle(
    case: tuple[Expect, tuple[int, bytes]], parsed: bool
) -> None:
    expect, (status, head) = case
    assert llhttp_accepts(head)
    assume(quick_check(expect) is not None)
    assert quick_passes(expect, status, head, parsed) == (oracle(expect, status, head) == [])


@settings(deadline=None, max_examples=400)  # more: a header rule is met in few examples
@given(cases(plain=True))
def test_on_http2_fields_the_vouch_agrees_with_check(
    case: tuple[Expect, tuple[int, bytes]],
) -> None:
    # An HTTP/2 response has fields, not a head: its headers are decoded from them, and the
    # vouch reads those, as check does (a repeated field joined, then compared).
    expect, (status, head) = case
    quick = quick_check(expect)
    assume(quick is not None)
    assert quick is not None
    fields = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in head_fields(head)]
    headers = Headers.of_fields(fields)
    outcome = Outcome(Record("GET", "/"), status, headers)
    assert quick.vouches(status, headers) == (check(expect, outcome) == [])


@settings(deadline=None, max_examples=400)
@given(cases(plain=False))
def test_on_heads_llhttp_takes_the_full_check_judges_as_the_oracle(
    case: tuple[Expect, tuple[int, bytes]],
) -> None:
    # What the quick check falls back on is held to the oracle too, field by field.
    expect, (status, head) = case
    assume(llhttp_accepts(head))
    outcome = Outcome(RECORD, status=status, headers=Headers(head), body=b"")
    assert sorted({m.field for m in check(expect, outcome)}) == sorted(
        set(oracle(expect, status, head))
    )


# --- what falls back ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expect",
    [
        Expect(body=(BodyExpect("equals", "x"),)),
        Expect(headers=(HeaderExpect("location", "regex", "^/x"),)),
        Expect(headers=(HeaderExpect("location", "equals", " /x"),)),  # no parsed value has that
        Expect(headers=(HeaderExpect("location", "equals", "\u2603"),)),  # not Latin-1
        Expect(headers=(HeaderExpect("location", "equals", "/x\r\nX: y"),)),  # two lines
    ],
)
def test_rules_only_check_can_judge_are_not_compiled(expect: Expect) -> None:
    assert quick_check(expect) is None


def test_status_only_and_empty_expectations_compile() -> None:
    assert quick_passes(Expect(), 500, b"")
    assert quick_passes(Expect(status=(200,)), 200, b"")
    assert not quick_passes(Expect(status=(200,)), 404, b"")


@pytest.mark.parametrize("parsed", [False, True])
def test_a_repeated_header_is_left_to_check(parsed: bool) -> None:
    head = b"HTTP/1.1 302 R\r\nLocation: /x\r\nlocation: /y\r\n\r\n"
    expect = Expect(headers=(HeaderExpect("location", "equals", "/x"),))
    assert not quick_passes(expect, 302, head, parsed)
    assert oracle(expect, 302, head) != []  # the value is "/x, /y"


def test_a_repeated_field_is_unsure_the_full_parse_joins_them() -> None:
    head = b"HTTP/1.1 200 OK\r\nLocation: /x\r\nlocation: /x\r\n\r\n"
    assert one_header(head, head_lower(head), header_key("Location")) is UNSURE


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nLocation: /x\r\n\r\n",
        b"HTTP/1.1 200 OK\nLocation: /x\n\n",
        b"HTTP/1.1 200 OK\r\nLocation : /x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nLocation: /x\r\n  /y\r\n\r\n",  # folded onto the next line
        b"HTTP/1.1 200 OK\r\nLocation: /x\r\n",  # no end of head
    ],
)
def test_heads_a_raw_search_could_misread_are_left_to_the_full_parse(head: bytes) -> None:
    assert head_lower(head) == b""


def test_one_header_reads_the_raw_value_case_kept_blanks_stripped() -> None:
    head = b"HTTP/1.1 200 OK\r\nLOCATION: \t/A b \r\nX-Location: /no\r\n\r\n"
    assert one_header(head, head_lower(head), header_key("location")) == b"/A b"
    assert one_header(head, head_lower(head), header_key("etag")) is None


# --- a run: the quick path and the full path count alike ------------------------------------------

MIXED_LOCATIONS = """
location = /close { keepalive_timeout 0; return 200 "bye\\n"; }
location = /gone { return 404; }
location = /twice { add_header X-A "a b"; add_header X-A "c"; return 200 "twice\\n"; }
location = /oops { return 503; }
"""


@pytest.fixture(scope="module")
def mixed(nginx_factory: NginxFactory) -> NginxServer:
    """An nginx with, besides the standard locations, one that closes every connection it
    answers (keep-alive off there), a 404, a 503 and a response with a repeated header."""
    return nginx_factory(locations=MIXED_LOCATIONS)


def equals(name: str, value: str, *status: int) -> Expect:
    return Expect(status, (HeaderExpect(name, "equals", value),))


def mixed_records() -> list[Record]:
    """Records whose responses the quick check vouches for, or cannot judge, or fails; with
    a close by the server, a body over the drain limit, and a mix of statuses among them."""

    def loc(i: int) -> str:
        return f"https://example.org/r/{i}"

    def get(path: str, expect: Expect) -> Record:
        return Record("GET", path, expect=expect)

    return [
        *(get(f"/r/{i}", equals("location", loc(i), 302)) for i in range(20)),
        *(get(f"/r/{i}", equals("location", loc(1), 302)) for i in range(10, 14)),  # a prefix
        *(get(f"/r/{i}", equals("location", "/")) for i in range(3)),
        get("/", Expect((200,), (HeaderExpect("location", "absent"),))),
        get("/", equals("content-type", "text/plain", 200)),
        get("/r/1", Expect(headers=(HeaderExpect("location", "absent"),))),
        get("/close", Expect((200,))),
        get("/close", Expect((201,))),
        get("/gone", Expect((404,))),
        get("/gone", Expect((200,))),
        get("/twice", equals("x-a", "a b, c", 200)),  # repeated: for the full check to join
        get("/twice", equals("x-a", "a b", 200)),
        get("/big", Expect((200,))),  # over the drain limit: the connection closes undrained
        get("/big", Expect((200,), (HeaderExpect("x-a", "absent"),))),
        get("/oops", Expect((503,))),
        get("/oops", Expect()),
    ]


MIXED_MISMATCHES = 4 + 3 + 1 + 1 + 1 + 1  # per pass: prefixes, "/", absent, /close, /gone, /twice
CYCLES = 3


@pytest.mark.parametrize(
    ("concurrency", "rate"), [(1, None), (3, None), (3, "400")], ids=["one", "three", "open"]
)
def test_quick_and_full_paths_count_a_run_alike(
    mixed: NginxServer, concurrency: int, rate: str | None
) -> None:
    records = mixed_records()
    options = RunOptions(
        target=mixed.url,
        concurrency=concurrency,
        requests=CYCLES * len(records),
        rate=None if rate is None else parse_rate(rate, None),
    )
    quick = run(records.__iter__, options)
    full = run(records.__iter__, dataclasses.replace(options, check_in_full=True))
    sequential, open_model = concurrency == 1 and rate is None, rate is not None
    assert comparable(quick, sequential, open_model) == comparable(full, sequential, open_model)
    # ... and what they count is what the records ask for (so that is not nothing alike).
    assert quick.requests == CYCLES * len(records) and quick.errors == 0
    assert quick.mismatches == CYCLES * MIXED_MISMATCHES
    assert quick.ledger.closed_by_server == CYCLES * 2  # /close, twice a pass
    assert quick.ledger.closed_undrained == quick.undrained_responses == CYCLES * 2  # /big
    assert set(quick.status) == {200, 302, 404, 503}


def test_check_in_full_compiles_no_quick_check() -> None:
    record = Record("GET", "/", expect=Expect((200,)))

    async def quick_of(check_in_full: bool) -> QuickCheck | None:
        async with Client(target="http://127.0.0.1:9") as client:
            return planner(client, check_in_full)(record).quick

    assert asyncio.run(quick_of(False)) is not None
    assert asyncio.run(quick_of(True)) is None
