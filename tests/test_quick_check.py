"""The hot path's compiled check never passes a response that check() would fault, vouches
for the plain common case, and leaves a run's counts exactly as the full check leaves them."""

from __future__ import annotations

from typing import Any

import httptools
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from servers import NginxServer
from tether.check import check, quick_check
from tether.engine.connection import STRICT_HEADS
from tether.engine.pacer import parse_rate
from tether.engine.runner import RunOptions, run
from tether.model import (
    UNSURE,
    BodyExpect,
    Expect,
    HeaderExpect,
    Headers,
    Mismatch,
    Outcome,
    Record,
    head_lower,
    header_key,
    one_header,
)

RECORD = Record(method="GET", url="/")


def full_check(expect: Expect, status: int, head: bytes) -> list[Mismatch]:
    return check(expect, Outcome(record=RECORD, status=status, headers=Headers(head), body=b""))


def quick_passes(expect: Expect, status: int, head: bytes, parsed: bool = False) -> bool:
    quick = quick_check(expect, parsed)
    return quick is not None and quick.passes(status, head)


def llhttp_accepts(data: bytes) -> bool:
    try:
        httptools.HttpResponseParser(object()).feed_data(data)
    except httptools.HttpParserError:
        return False
    return True


# --- the property: quick passes => check finds nothing -----------------------------------------

NAMES = ["Location", "location", "LOCATION", "X-A", "x-a", "ETag"]
# Values with the edges and bytes where a raw search and a full parse could part ways.
VALUE_BYTES = st.sampled_from([b"/x", b"/y", b"", b" ", b"\t", b"a b", b"\xa0", b"\x0b", b"\xe9"])
values = st.lists(VALUE_BYTES, max_size=3).map(b"".join)
# A line of a head: a field, a field with a blank before its colon, a folded continuation.
field_lines = st.one_of(
    st.tuples(st.sampled_from(NAMES), values).map(lambda f: f[0].encode() + b":" + f[1]),
    st.tuples(st.sampled_from(NAMES), values).map(lambda f: f[0].encode() + b" :" + f[1]),
    values.map(lambda v: b" " + v),
)
line_ends = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])
prefixes = st.sampled_from([b"", b"", b"HTTP/1.1 100 Continue\r\nLocation: /y\r\n\r\n"])


@st.composite
def heads(draw: Any) -> tuple[int, bytes]:
    status = draw(st.sampled_from([200, 201, 302]))
    lines = draw(st.lists(st.tuples(field_lines, line_ends), max_size=6))
    body = draw(st.sampled_from([b"", b"Location: /x\r\n"]))  # a body that looks like a field
    head = b"HTTP/1.1 %d R\r\n" % status + b"".join(line + end for line, end in lines)
    return status, draw(prefixes) + head + b"\r\n" + body


header_rules = st.one_of(
    st.builds(
        HeaderExpect,
        st.sampled_from(["location", "x-a", "etag"]),
        st.just("equals"),
        st.sampled_from(["/x", "/y", "", "a b", "\xe9", "/x/y", "/x\r\nX-A: a b"]),
    ),
    st.builds(HeaderExpect, st.sampled_from(["location", "x-a"]), st.just("absent")),
)
expects = st.builds(
    Expect,
    status=st.sampled_from([(), (200,), (302,), (200, 201)]),
    headers=st.lists(header_rules, max_size=3, unique_by=lambda r: r.name).map(tuple),
)


@given(expects, heads())
def test_quick_never_passes_what_check_faults(expect: Expect, response: tuple[int, bytes]) -> None:
    status, head = response
    if quick_passes(expect, status, head):
        assert full_check(expect, status, head) == []


@given(expects, heads())
def test_on_heads_the_parser_took_it_never_passes_what_check_faults(
    expect: Expect, response: tuple[int, bytes]
) -> None:
    # What the engine runs: the head has been through llhttp, which refuses heads that are
    # not plain, so the quick check does not look for those itself.
    status, head = response
    assume(llhttp_accepts(head))
    if quick_passes(expect, status, head, parsed=True):
        assert full_check(expect, status, head) == []


def test_the_engine_parser_refuses_heads_that_are_not_plain() -> None:
    assert STRICT_HEADS


@given(expects, st.sampled_from([200, 302]), st.sampled_from([b"/x", b"  /x\t", b"/y", b""]))
def test_on_a_plain_head_quick_agrees_with_check(expect: Expect, status: int, loc: bytes) -> None:
    head = b"HTTP/1.1 %d R\r\nServer: s\r\nLocation: %s\r\nX-A: a b\r\n\r\n" % (status, loc)
    assume(quick_check(expect) is not None)
    assert quick_passes(expect, status, head) == (full_check(expect, status, head) == [])


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
    assert full_check(expect, 302, head) != []  # the value is "/x, /y"


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


def nginx_records() -> list[Record]:
    def loc(i: int) -> str:
        return f"https://example.org/r/{i}"

    good = [
        Record(
            "GET", f"/r/{i}", expect=Expect((302,), (HeaderExpect("location", "equals", loc(i)),))
        )
        for i in range(20)
    ]
    wrong = [
        Record("GET", f"/r/{i}", expect=Expect((302,), (HeaderExpect("location", "equals", "/"),)))
        for i in range(7)
    ]
    absent = [
        Record("GET", "/", expect=Expect((200,), (HeaderExpect("location", "absent"),))),
        Record("GET", "/r/1", expect=Expect(headers=(HeaderExpect("location", "absent"),))),
    ]
    return good + wrong + absent


def counts(summary: Any, open_model: bool) -> dict[str, Any]:
    """What a run counted, without timings (which differ from run to run). In the open model
    how many connections a run needs is a matter of timing too (a request due while every
    connection is busy opens one), so only their sum with reuse is compared there."""
    doc = summary.to_dict()
    connections = doc["connections"]
    reuse = {"opened": connections["opened"], "reused": connections["reused"]}
    return {
        **{k: doc[k] for k in ("requests", "ok", "mismatches", "errors", "status")},
        "examples": len(doc["mismatch_examples"]),
        "undrained": doc["undrained_responses"],
        **({"opened + reused": sum(reuse.values())} if open_model else reuse),
        "groups": [{k: v for k, v in g.items() if k != "latency_ms"} for g in doc["groups"]],
        "latencies": (
            summary.latency.count,
            [g.latency.count for g in summary.groups.by_key.values()],
        ),
    }


@pytest.mark.parametrize("rate", [None, "400"])
def test_quick_and_full_paths_count_a_run_alike(nginx: NginxServer, rate: str | None) -> None:
    records = nginx_records()
    options = RunOptions(
        target=nginx.url,
        concurrency=3,
        requests=3 * len(records),
        rate=rate and parse_rate(rate, None),
    )
    seen: list[Outcome] = []
    quick = run(records.__iter__, options)
    full = run(records.__iter__, options, sink=lambda outcome, _: seen.append(outcome))
    assert len(seen) == 3 * len(records)  # the sink saw every outcome: the full path ran
    assert counts(quick, rate is not None) == counts(full, rate is not None)
    assert quick.ok == 3 * 21 and quick.mismatched == 3 * 8  # "/" has no Location
