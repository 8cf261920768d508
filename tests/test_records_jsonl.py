"""The JSON Lines records reader: every field, every kind of bad input, streaming."""

from __future__ import annotations

import base64
import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.errors import InputError, RecordError
from tether.model import NO_EXPECT, BodyExpect, Expect, HeaderExpect, Record
from tether.records.jsonl import parse_line, read

SRC = "records.jsonl"


def parse(obj: Any, line: int = 7) -> Record:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return parse_line(text, line, SRC)


def problem(obj: Any, line: int = 7) -> str:
    """The full message of the RecordError that ``obj`` raises; it must name the line."""
    with pytest.raises(RecordError) as info:
        parse(obj, line)
    err = info.value
    assert err.source == SRC
    assert err.line == line
    assert str(err) == f"{SRC}:{line}: {err.problem}"
    return str(err)


# --- good records -----------------------------------------------------------------------------


def test_minimal_record_defaults() -> None:
    record = parse({"url": "/r/abc"}, line=3)
    assert record == Record(method="GET", url="/r/abc", line=3, source=SRC)
    assert record.expect is NO_EXPECT
    assert record.where == "records.jsonl:3"


def test_full_record_from_the_docs() -> None:
    line = (
        '{"method": "GET", "url": "/r/abc", "headers": {"Accept": "text/html"}, "body": "...",'
        ' "expect": {"status": 302, "headers": {"Location": "https://example.org/abc"}}}'
    )
    record = parse_line(line, 1, SRC)
    assert record.method == "GET"
    assert record.url == "/r/abc"
    assert record.headers == (("Accept", "text/html"),)
    assert record.body == b"..."
    assert record.expect == Expect(
        status=(302,), headers=(HeaderExpect("location", "equals", "https://example.org/abc"),)
    )


@pytest.mark.parametrize(("given", "sent"), [("get", "GET"), ("Post", "POST"), ("PURGE", "PURGE")])
def test_method_is_upper_cased(given: str, sent: str) -> None:
    assert parse({"method": given, "url": "/"}).method == sent


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/r/abc?x=1&y=%20",
        "http://example.org",
        "https://example.org:8443/a/b?c#d",
        "http://127.0.0.1:8080/",
        "http://[::1]:80/x",
        "HTTPS://Example.ORG/",
    ],
)
def test_good_urls(url: str) -> None:
    assert parse({"url": url}).url == url


def test_headers_keep_order_and_case() -> None:
    record = parse({"url": "/", "headers": {"X-B": "2", "x-a": "1\ttab ok", "Empty": ""}})
    assert record.headers == (("X-B", "2"), ("x-a", "1\ttab ok"), ("Empty", ""))


def test_body_text_is_utf8() -> None:
    assert parse({"url": "/", "body": "héllo ✓"}).body == "héllo ✓".encode()


def test_body_b64_is_decoded() -> None:
    raw = bytes(range(256))
    record = parse({"url": "/", "body_b64": base64.b64encode(raw).decode()})
    assert record.body == raw


def test_free_keys_are_accepted_and_ignored() -> None:
    record = parse({"url": "/", "id": 42, "comment": {"any": "thing"}})
    assert record == Record(method="GET", url="/", line=7, source=SRC)


def test_tag_names_the_records_group() -> None:
    assert parse({"url": "/", "tag": "login"}).tag == "login"
    with pytest.raises(RecordError, match='"tag"'):
        parse({"url": "/", "tag": ["a", 1]})


def test_status_single_and_list() -> None:
    assert parse({"url": "/", "expect": {"status": 100}}).expect.status == (100,)
    assert parse({"url": "/", "expect": {"status": [200, 204, 200, 599]}}).expect.status == (
        200,
        204,
        599,
    )


def test_header_rules() -> None:
    record = parse(
        {
            "url": "/",
            "expect": {
                "headers": {
                    "Location": "https://example.org/abc",
                    "Content-Type": {"regex": "^text/html(;|$)"},
                    "X-Powered-By": {"absent": True},
                }
            },
        }
    )
    assert record.expect.headers == (
        HeaderExpect("location", "equals", "https://example.org/abc"),
        HeaderExpect("content-type", "regex", "^text/html(;|$)"),
        HeaderExpect("x-powered-by", "absent", ""),
    )


def test_body_rules_each_become_one_expectation() -> None:
    digest = "AB" * 32
    record = parse(
        {
            "url": "/",
            "expect": {
                "body": {
                    "equals": "x",
                    "contains": "y",
                    "sha256": digest,
                    "json": {"a": [1, None, True]},
                }
            },
        }
    )
    assert record.expect.body == (
        BodyExpect("equals", "x"),
        BodyExpect("contains", "y"),
        BodyExpect("sha256", digest.lower()),
        BodyExpect("json", {"a": [1, None, True]}),
    )


@pytest.mark.parametrize("value", [None, 0, "", [], {}, False, 1.5])
def test_body_json_takes_any_json_value(value: Any) -> None:
    record = parse({"url": "/", "expect": {"body": {"json": value}}})
    assert record.expect.body == (BodyExpect("json", value),)


def test_empty_expect_means_anything() -> None:
    assert parse({"url": "/", "expect": {}}).expect == Expect()


# --- bad records: every message names the line and says what is wrong -------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"url": "/"', "not valid JSON: Expecting ',' delimiter (column 12)"),
        ("{url: 1}", "not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"url": "/"} x', "not valid JSON: Extra data (column 14)"),
        ("", "not valid JSON: Expecting value (column 1)"),
        ('{"url": "/", "id": NaN}', "not valid JSON: NaN is not allowed"),
        ('{"url": "/", "id": -Infinity}', "not valid JSON: -Infinity is not allowed"),
        ("[" * 100_000, "not valid JSON"),
        ('{"url": "/", "url": "/x"}', 'duplicate key "url"'),
        ('{"url": "/", "expect": {"body": {"json": {"a": 1, "a": 2}}}}', 'duplicate key "a"'),
        ('{"id": ' + "9" * 5000 + ', "url": "/"}', "not valid JSON"),
    ],
)
def test_bad_json(text: str, message: str) -> None:
    assert message in problem(text)


@pytest.mark.parametrize("obj", ["[]", '"GET /"', "1", "null", "true"])
def test_record_must_be_an_object(obj: Any) -> None:
    assert problem(obj).startswith(f"{SRC}:7: a record must be a JSON object, got ")


def test_unknown_key_with_a_suggestion() -> None:
    assert problem({"ulr": "/"}) == f'{SRC}:7: unknown key "ulr" (did you mean "url"?)'


def test_unknown_key_lists_what_is_allowed() -> None:
    assert problem({"url": "/", "zzz": 1}) == (
        f'{SRC}:7: unknown key "zzz"; allowed: at, body, body_b64, capture, comment, expect,'
        " flow, headers, id, method, tag, url"
    )


@pytest.mark.parametrize("method", ["", "G ET", "GET\r\n", "GÉT", 1, None, ["GET"]])
def test_bad_method(method: Any) -> None:
    assert '"method" must be an HTTP method such as "GET", got ' in problem(
        {"method": method, "url": "/"}
    )


def test_url_is_required() -> None:
    assert problem({"method": "GET"}) == f'{SRC}:7: "url" is required'


@pytest.mark.parametrize("url", ["", 5, None, ["/"]])
def test_url_must_be_a_non_empty_string(url: Any) -> None:
    assert '"url" must be a non-empty string, got ' in problem({"url": url})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/a b", '"url" has " " at position 2; percent-encode it'),
        ("/caf\u00e9", '"url" has "\u00e9" at position 4; percent-encode it'),
        ("/x\r\nHost: evil", '"url" has "\\r" at position 2; percent-encode it'),
        ("r/abc", '"url" must be an absolute http(s) URL or a path starting with "/"'),
        ("ftp://example.org/", '"url" must be an absolute http(s) URL or a path starting'),
        ("http:/nohost", '"url" must be an absolute http(s) URL or a path starting'),
        ("http://", '"url" must be an absolute http(s) URL or a path starting'),
        ("http://example.org:99999/", '"url" is not a valid URL: '),
        ("http://[::1/", '"url" is not a valid URL: '),
        ("//example.org/x", '"url" must not start with "//"'),
    ],
)
def test_bad_url(url: str, message: str) -> None:
    assert message in problem({"url": url})


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (["Accept"], '"headers" must be an object of header name to value, got ["Accept"]'),
        ("Accept: x", '"headers" must be an object of header name to value'),
        ({"Bad Name": "x"}, '"headers" has an invalid header name "Bad Name"'),
        ({"": "x"}, '"headers" has an invalid header name ""'),
        ({"X-A:": "x"}, '"headers" has an invalid header name "X-A:"'),
        ({"X-A": 1}, '"headers.X-A" must be a string, got 1'),
        ({"X-A": None}, '"headers.X-A" must be a string, got null'),
        ({"X-A": "a\r\nX-Evil: 1"}, '"headers.X-A" has control character "\\r" at position 1'),
        ({"X-A": "a\nb"}, '"headers.X-A" has control character "\\n" at position 1'),
        ({"X-A": "a\x00"}, '"headers.X-A" has control character "\\u0000" at position 1'),
        ({"X-A": "\ud800"}, '"headers.X-A" has an unpaired surrogate at position 0'),
    ],
)
def test_bad_headers(headers: Any, message: str) -> None:
    assert message in problem({"url": "/", "headers": headers})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"body": 1}, '"body" must be a string, got 1'),
        ({"body": {"a": 1}}, '"body" must be a string, got {"a": 1}'),
        ({"body": "\udfff"}, '"body" has an unpaired surrogate at position 0'),
        ({"body": "x", "body_b64": "eA=="}, 'give "body" or "body_b64", not both'),
        ({"body_b64": "not base64!"}, '"body_b64" is not valid base64: '),
        ({"body_b64": "eA="}, '"body_b64" is not valid base64: '),
        ({"body_b64": "é"}, '"body_b64" is not valid base64: '),
        ({"body_b64": 7}, '"body_b64" must be a string, got 7'),
    ],
)
def test_bad_body(extra: dict[str, Any], message: str) -> None:
    assert message in problem({"url": "/", **extra})


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ([], '"expect" must be an object, got []'),
        (None, '"expect" must be an object, got null'),
        ({"stauts": 200}, 'unknown key "stauts" in "expect" (did you mean "status"?)'),
        (
            {"status": "abc"},
            '"expect.status" must be an integer 100-599 or a list of them, got "abc"',
        ),
        ({"status": 99}, '"expect.status" must be an integer 100-599 or a list of them, got 99'),
        ({"status": 600}, "got 600"),
        ({"status": 200.0}, "got 200.0"),
        ({"status": True}, "got true"),
        ({"status": []}, "got []"),
        ({"status": [200, "301"]}, '"expect.status[1]" must be an integer 100-599, got "301"'),
        ({"status": [200, [301]]}, '"expect.status[1]" must be an integer 100-599, got [301]'),
    ],
)
def test_bad_expect_and_status(expect: Any, message: str) -> None:
    assert message in problem({"url": "/", "expect": expect})


def test_status_message_matches_the_docs_exactly() -> None:
    assert problem({"url": "/", "expect": {"status": "abc"}}, line=12) == (
        'records.jsonl:12: "expect.status" must be an integer 100-599 or a list of them, got "abc"'
    )


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ("Location", '"expect.headers" must be an object of header name to rule'),
        ({"Bad Name": "x"}, '"expect.headers" has an invalid header name "Bad Name"'),
        (
            {"Location": "a", "location": "b"},
            '"expect.headers" names "location" twice (header names ignore case)',
        ),
        ({"Location": 1}, '"expect.headers.Location" must be a string, {"regex": "..."} or'),
        ({"Location": None}, '"expect.headers.Location" must be a string, {"regex": '),
        ({"Location": "\ud800"}, '"expect.headers.Location" has an unpaired surrogate'),
        ({"Location": {}}, '"expect.headers.Location" must have exactly one of "regex" or'),
        (
            {"Location": {"regex": "a", "absent": True}},
            '"expect.headers.Location" must have exactly one of "regex" or "absent"',
        ),
        (
            {"Location": {"regexp": "a"}},
            'unknown key "regexp" in "expect.headers.Location" (did you mean "regex"?)',
        ),
        (
            {"Location": {"regex": "(unclosed"}},
            '"expect.headers.Location.regex" is not a valid regular expression: '
            "missing ), unterminated subpattern at position 0",
        ),
        ({"Location": {"regex": "a{2,1}"}}, "is not a valid regular expression"),
        ({"Location": {"regex": 5}}, '"expect.headers.Location.regex" must be a string, got 5'),
        ({"Location": {"absent": False}}, '"expect.headers.Location.absent" must be true'),
        ({"Location": {"absent": 1}}, '"expect.headers.Location.absent" must be true'),
    ],
)
def test_bad_header_expectations(headers: Any, message: str) -> None:
    assert message in problem({"url": "/", "expect": {"headers": headers}})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("hello", '"expect.body" must be an object, got "hello"'),
        ({"equal": "x"}, 'unknown key "equal" in "expect.body" (did you mean "equals"?)'),
        ({"equals": 1}, '"expect.body.equals" must be a string, got 1'),
        ({"contains": ["a"]}, '"expect.body.contains" must be a string, got ["a"]'),
        ({"sha256": "abc"}, '"expect.body.sha256" must be 64 hex digits, got "abc"'),
        ({"sha256": "g" * 64}, '"expect.body.sha256" must be 64 hex digits'),
        ({"sha256": "a" * 65}, '"expect.body.sha256" must be 64 hex digits'),
        ({"sha256": None}, '"expect.body.sha256" must be 64 hex digits, got null'),
    ],
)
def test_bad_body_expectations(body: Any, message: str) -> None:
    assert message in problem({"url": "/", "expect": {"body": body}})


def test_long_values_are_shortened_in_messages() -> None:
    message = problem({"url": "/", "expect": {"status": "x" * 1000}})
    assert message.endswith("…")
    assert len(message) < 200


# --- read(): the stream ------------------------------------------------------------------------


def test_read_skips_blanks_and_comments_and_numbers_lines() -> None:
    stream = io.StringIO(
        "\ufeff# a comment\n"
        "\n"
        '{"url": "/a"}\n'
        "   \t\n"
        "  # indented comment\n"
        '{"url": "/b", "method": "post"}\r\n'
        '{"url": "/c"}'  # no final newline
    )
    records = list(read(stream, SRC))
    assert [(r.url, r.line, r.source) for r in records if isinstance(r, Record)] == [
        ("/a", 3, SRC),
        ("/b", 6, SRC),
        ("/c", 7, SRC),
    ]


def test_read_yields_errors_and_goes_on() -> None:
    stream = io.StringIO('{"url": "/a"}\n{"url": 1}\nnot json\n{"url": "/d"}\n')
    items = list(read(stream, SRC))
    assert [type(i) for i in items] == [Record, RecordError, RecordError, Record]
    assert str(items[1]) == f'{SRC}:2: "url" must be a non-empty string, got 1'
    assert str(items[2]).startswith(f"{SRC}:3: not valid JSON: ")
    assert isinstance(items[3], Record)
    assert items[3].line == 4


def test_read_default_source() -> None:
    (item,) = read(io.StringIO("[]\n"))
    assert isinstance(item, RecordError)
    assert str(item).startswith("<records>:1: ")


def test_read_first_line_bom() -> None:
    (item,) = read(io.StringIO('\ufeff{"url": "/"}\n'), SRC)
    assert isinstance(item, Record)


def test_read_accepts_any_iterable_of_lines() -> None:
    items = list(read(['{"url": "/a"}\n', "", '{"url": "/b"}'], SRC))
    assert [i.url for i in items if isinstance(i, Record)] == ["/a", "/b"]


class EndlessLines:
    """A file-like object over a generator that never ends, counting the lines handed out."""

    def __init__(self) -> None:
        self.handed_out = 0
        self._lines = self._generate()

    def _generate(self) -> Iterator[str]:
        for n in itertools.count():
            yield "# comment\n" if n % 3 == 2 else f'{{"url": "/item/{n}"}}\n'

    def __iter__(self) -> EndlessLines:
        return self

    def __next__(self) -> str:
        self.handed_out += 1
        return next(self._lines)

    def readline(self) -> str:
        return next(self)


def test_read_is_lazy_on_an_endless_stream() -> None:
    stream = EndlessLines()
    items = read(stream, SRC)
    assert stream.handed_out == 0  # a generator: nothing read before the first next()
    first = next(items)
    assert isinstance(first, Record)
    assert first.url == "/item/0"
    assert stream.handed_out == 1
    taken = list(itertools.islice(items, 1000))
    assert all(isinstance(i, Record) for i in taken)
    assert stream.handed_out < 1600  # roughly 1000 records plus the comments between them


def test_read_streams_a_large_text_stream() -> None:
    count = 50_000
    stream = io.StringIO("".join(f'{{"url": "/n/{n}"}}\n' for n in range(count)))
    items = read(stream, SRC)
    first = next(items)
    assert isinstance(first, Record)
    # Only the first line has been consumed from the stream so far.
    assert stream.readline() == '{"url": "/n/1"}\n'
    assert sum(1 for _ in items) == count - 2


def test_read_raises_input_error_on_undecodable_bytes() -> None:
    stream = io.TextIOWrapper(io.BytesIO(b'{"url": "/a"}\n{"url": "/\xff"}\n'), encoding="utf-8")
    items = read(stream, "bad.jsonl")
    with pytest.raises(InputError, match=r"^bad\.jsonl:\d+: not valid UTF-8"):
        list(items)


# --- fuzz: parse_line raises RecordError or nothing --------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
near_strings = st.sampled_from(
    ["", "/", "/a", "http://x", "https://h:1/p", "GET", "get", "a b", "^x(", "\r\n", "ab" * 32]
)
near_values = json_values | near_strings | st.lists(st.integers(0, 700), max_size=3)
rules = st.fixed_dictionaries(
    {},
    optional={
        "regex": near_values,
        "absent": near_values,
        "equals": near_values,
        "contains": near_values,
        "sha256": near_values | st.text("0123456789abcdefABCDEF", min_size=64, max_size=64),
        "json": json_values,
        "x": near_values,
    },
)
near_records = st.fixed_dictionaries(
    {},
    optional={
        "method": near_values,
        "url": near_values,
        "headers": st.dictionaries(st.text(max_size=6) | near_strings, near_values, max_size=3),
        "body": near_values,
        "body_b64": near_values | st.sampled_from(["eA==", "eA=", "****"]),
        "tag": near_values,
        "typo": near_values,
        "expect": st.fixed_dictionaries(
            {},
            optional={
                "status": near_values | st.integers(90, 610),
                "headers": st.dictionaries(near_strings, near_values | rules, max_size=3),
                "body": rules | near_values,
                "other": near_values,
            },
        )
        | near_values,
    },
)


def _parse_or_record_error(text: str) -> None:
    try:
        record = parse_line(text, 1, SRC)
    except RecordError as err:
        assert str(err).startswith(f"{SRC}:1: ")
        str(err).encode("utf-8")  # always printable
    else:
        assert isinstance(record, Record)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_arbitrary_text(text: str) -> None:
    _parse_or_record_error(text)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_arbitrary_json(value: Any) -> None:
    _parse_or_record_error(json.dumps(value))


@settings(max_examples=1000, deadline=None)
@given(near_records)
def test_fuzz_near_valid_records(value: dict[str, Any]) -> None:
    _parse_or_record_error(json.dumps(value))


def test_at_is_a_recorded_time() -> None:
    assert parse_line('{"url": "/", "at": 1800000000.25}', 1, "r").at == 1800000000.25
    with pytest.raises(RecordError, match='"at" must be a time in seconds since the epoch'):
        parse_line('{"url": "/", "at": "yesterday"}', 1, "r")
