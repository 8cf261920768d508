"""check(): every expectation kind, matching and not, with readable mismatches."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tether.check import check
from tether.model import BodyExpect, Expect, HeaderExpect, Mismatch, Outcome, Record

RECORD = Record(method="GET", url="/")


def outcome(
    status: int = 200,
    headers: dict[str, str] | None = None,
    body: bytes | None = b"",
    **more: Any,
) -> Outcome:
    return Outcome(record=RECORD, status=status, headers=headers or {}, body=body, **more)


def body_check(rule: str, value: Any, body: bytes | None, **more: Any) -> list[Mismatch]:
    expect = Expect(body=(BodyExpect(rule, value),))  # type: ignore[arg-type]
    return check(expect, outcome(body=body, **more))


def json_check(want: Any, body: Any) -> list[Mismatch]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return body_check("json", want, raw)


# --- nothing expected, errors -------------------------------------------------------------------


def test_empty_expect_matches_anything() -> None:
    assert check(Expect(), outcome(status=500, body=None)) == []


def test_an_error_outcome_has_no_mismatches() -> None:
    expect = Expect(status=(200,), body=(BodyExpect("equals", "x"),))
    failed = outcome(status=0, body=None, error="connection refused", error_kind="connect")
    assert check(expect, failed) == []


# --- status -------------------------------------------------------------------------------------


def test_status_matches() -> None:
    assert check(Expect(status=(302,)), outcome(status=302)) == []
    assert check(Expect(status=(200, 204)), outcome(status=204)) == []


def test_status_mismatch_single() -> None:
    assert check(Expect(status=(302,)), outcome(status=200)) == [Mismatch("status", "302", "200")]


def test_status_mismatch_list() -> None:
    assert check(Expect(status=(200, 204)), outcome(status=404)) == [
        Mismatch("status", "one of 200, 204", "404")
    ]


# --- headers ------------------------------------------------------------------------------------


def headers_check(rule: HeaderExpect, headers: dict[str, str]) -> list[Mismatch]:
    return check(Expect(headers=(rule,)), outcome(headers=headers))


def test_header_equals() -> None:
    rule = HeaderExpect("location", "equals", "https://example.org/abc")
    assert headers_check(rule, {"location": "https://example.org/abc"}) == []
    assert headers_check(rule, {"location": "https://example.org/ABC"}) == [
        Mismatch("header location", "https://example.org/abc", "https://example.org/ABC")
    ]
    assert headers_check(rule, {}) == [
        Mismatch("header location", "https://example.org/abc", "(absent)")
    ]


def test_header_equals_is_exact() -> None:
    rule = HeaderExpect("x-a", "equals", "v")
    assert headers_check(rule, {"x-a": "v "}) == [Mismatch("header x-a", "v", "v ")]
    assert headers_check(HeaderExpect("x-a", "equals", ""), {"x-a": ""}) == []
    assert headers_check(HeaderExpect("x-a", "equals", ""), {}) == [
        Mismatch("header x-a", "(empty)", "(absent)")
    ]


def test_header_name_given_in_any_case_is_looked_up_lower_case() -> None:
    rule = HeaderExpect("Content-Type", "equals", "text/html")
    assert headers_check(rule, {"content-type": "text/html"}) == []
    assert headers_check(rule, {"content-type": "text/plain"})[0].field == "header content-type"


def test_header_regex_searches_anywhere() -> None:
    rule = HeaderExpect("content-type", "regex", "html")
    assert headers_check(rule, {"content-type": "text/html; charset=utf-8"}) == []


def test_header_regex_anchored_by_its_author() -> None:
    rule = HeaderExpect("content-type", "regex", "^text/html$")
    assert headers_check(rule, {"content-type": "text/html"}) == []
    assert headers_check(rule, {"content-type": "text/html; charset=utf-8"}) == [
        Mismatch("header content-type", "matching /^text/html$/", "text/html; charset=utf-8")
    ]
    assert headers_check(rule, {}) == [
        Mismatch("header content-type", "matching /^text/html$/", "(absent)")
    ]


def test_header_invalid_regex_is_a_mismatch_not_a_crash() -> None:
    (mismatch,) = headers_check(HeaderExpect("x", "regex", "("), {"x": "v"})
    assert mismatch.got.startswith("(invalid regex: ")


def test_header_absent() -> None:
    rule = HeaderExpect("x-powered-by", "absent")
    assert headers_check(rule, {"server": "nginx"}) == []
    assert headers_check(rule, {"x-powered-by": "PHP/8"}) == [
        Mismatch("header x-powered-by", "(absent)", "PHP/8")
    ]


def test_every_failed_expectation_is_reported() -> None:
    expect = Expect(
        status=(302,),
        headers=(
            HeaderExpect("location", "equals", "/a"),
            HeaderExpect("server", "absent"),
        ),
        body=(BodyExpect("contains", "moved"),),
    )
    found = check(expect, outcome(status=200, headers={"server": "x"}, body=b"ok"))
    assert [m.field for m in found] == [
        "status",
        "header location",
        "header server",
        "body.contains",
    ]


def test_long_header_values_are_shortened() -> None:
    (mismatch,) = headers_check(HeaderExpect("x", "equals", "a"), {"x": "b" * 1000})
    assert mismatch.got == "b" * 200 + "…"


def test_control_characters_are_escaped() -> None:
    (mismatch,) = body_check("equals", "a", b"line1\nline2\t\x00")
    assert mismatch.got == "line1\\nline2\\t\\x00"


# --- body: equals / contains --------------------------------------------------------------------


def test_body_equals() -> None:
    assert body_check("equals", "héllo", "héllo".encode()) == []
    assert body_check("equals", "hello", b"help") == [Mismatch("body.equals", "hello", "help")]
    assert body_check("equals", "x", b"") == [Mismatch("body.equals", "x", "(empty)")]


def test_body_equals_decodes_bad_utf8_with_replacement() -> None:
    assert body_check("equals", "a\ufffdb", b"a\xffb") == []


def test_body_equals_shows_long_values_around_the_difference() -> None:
    want = "x" * 1000 + "A" + "y" * 1000
    got = "x" * 1000 + "B" + "y" * 1000
    (mismatch,) = body_check("equals", want, got.encode())
    assert mismatch.field == "body.equals"
    assert mismatch.expected.startswith("…" + "x" * 40 + "A")
    assert mismatch.got.startswith("…" + "x" * 40 + "B")
    assert mismatch.got.endswith("…")
    assert len(mismatch.got) <= 202


def test_body_equals_prefix_difference() -> None:
    (mismatch,) = body_check("equals", "abc", b"abcdef")
    assert mismatch == Mismatch("body.equals", "abc", "abcdef")


def test_body_contains() -> None:
    assert body_check("contains", "<title>Hi</title>", b"<html><title>Hi</title></html>") == []
    assert body_check("contains", "Bye", b"<html>Hi</html>") == [
        Mismatch("body.contains", "Bye", "<html>Hi</html>")
    ]


def test_body_not_kept_is_a_mismatch() -> None:
    assert body_check("contains", "x", None) == [Mismatch("body.contains", "x", "(body not kept)")]
    assert body_check("json", {"a": 1}, None) == [
        Mismatch("body.json", '{"a": 1}', "(body not kept)")
    ]


# --- body: sha256 -------------------------------------------------------------------------------


DIGEST = hashlib.sha256(b"payload").hexdigest()


def test_sha256_from_the_engine_digest() -> None:
    assert body_check("sha256", DIGEST, None, body_sha256=DIGEST) == []
    assert body_check("sha256", DIGEST, None, body_sha256=DIGEST.upper()) == []
    other = hashlib.sha256(b"other").hexdigest()
    assert body_check("sha256", DIGEST, None, body_sha256=other) == [
        Mismatch("body.sha256", DIGEST, other)
    ]


def test_sha256_computed_from_a_kept_body() -> None:
    assert body_check("sha256", DIGEST, b"payload") == []
    assert body_check("sha256", DIGEST, b"nope") == [
        Mismatch("body.sha256", DIGEST, hashlib.sha256(b"nope").hexdigest())
    ]


def test_sha256_without_body_or_digest() -> None:
    assert body_check("sha256", DIGEST, None) == [
        Mismatch("body.sha256", DIGEST, "(body not hashed)")
    ]


# --- body: truncated ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value"),
    [("equals", "x"), ("contains", "x"), ("sha256", DIGEST), ("json", {"a": 1})],
)
def test_truncated_body_fails_every_body_rule(rule: str, value: Any) -> None:
    found = body_check(
        rule, value, b"x" * 262144, body_size=262144, body_truncated=True, body_sha256=DIGEST
    )
    assert len(found) == 1
    assert found[0].field == f"body.{rule}"
    assert found[0].got == (
        "body not read to its end (262,144 bytes read): over --max-body or --drain-timeout"
    )


def test_truncated_body_without_kept_bytes_uses_body_size() -> None:
    (mismatch,) = body_check("sha256", DIGEST, None, body_size=1000, body_truncated=True)
    assert mismatch.got.startswith("body not read to its end (1,000 bytes read)")


def test_truncated_body_is_fine_without_body_rules() -> None:
    expect = Expect(status=(200,))
    assert check(expect, outcome(body=None, body_size=9, body_truncated=True)) == []


# --- body: json ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("want", "got"),
    [
        ({}, {"a": 1}),
        ({"a": 1}, {"a": 1, "b": 2}),
        ({"user": {"id": 7}}, {"user": {"id": 7, "name": "x"}, "ok": True}),
        ([1, {"a": 2}], [1, {"a": 2, "b": 3}]),
        ([], []),
        (1, 1.0),
        (1.0, 1),
        (None, None),
        (True, True),
        ("s", "s"),
        ({"a": None}, {"a": None}),
    ],
)
def test_json_subset_matches(want: Any, got: Any) -> None:
    assert json_check(want, got) == []


@pytest.mark.parametrize(
    ("want", "got", "expected"),
    [
        ({"user": {"id": 7}}, {"user": {"id": 8}}, Mismatch("body.json $.user.id", "7", "8")),
        ({"user": {"id": 7}}, {"user": {}}, Mismatch("body.json $.user.id", "7", "(absent)")),
        ({"user": {"id": 7}}, {"user": [7]}, Mismatch("body.json $.user", '{"id": 7}', "[7]")),
        ({"a": None}, {}, Mismatch("body.json $.a", "null", "(absent)")),
        ({"a": None}, {"a": 0}, Mismatch("body.json $.a", "null", "0")),
        ([1, 2], [1, 2, 3], Mismatch("body.json $", "a list of 2 items", "a list of 3 items")),
        ([1], [], Mismatch("body.json $", "a list of 1 item", "a list of 0 items")),
        ([1, [2, 3]], [1, [2, 4]], Mismatch("body.json $[1][1]", "3", "4")),
        (
            {"items": [{"n": 1}]},
            {"items": {"n": 1}},
            Mismatch("body.json $.items", '[{"n": 1}]', '{"n": 1}'),
        ),
        (True, 1, Mismatch("body.json $", "true", "1")),
        (1, True, Mismatch("body.json $", "1", "true")),
        (False, 0, Mismatch("body.json $", "false", "0")),
        (0, None, Mismatch("body.json $", "0", "null")),
        ("1", 1, Mismatch("body.json $", '"1"', "1")),
        (None, "null", Mismatch("body.json $", "null", '"null"')),
        ({"a b": 1}, {"a b": 2}, Mismatch('body.json $["a b"]', "1", "2")),
        ({"é": 1}, {"é": 2}, Mismatch('body.json $["\\u00e9"]', "1", "2")),
        ({"1x": 1}, {}, Mismatch('body.json $["1x"]', "1", "(absent)")),
    ],
)
def test_json_subset_mismatches(want: Any, got: Any, expected: Mismatch) -> None:
    assert json_check(want, got) == [expected]


def test_json_reports_the_first_difference_in_document_order() -> None:
    want = {"a": {"b": 1, "c": 2}, "d": 3}
    assert json_check(want, {"a": {"b": 9, "c": 9}, "d": 9}) == [
        Mismatch("body.json $.a.b", "1", "9")
    ]
    assert json_check(want, {"a": {"b": 1}}) == [Mismatch("body.json $.a.c", "2", "(absent)")]
    assert json_check(want, {"a": {"b": 1, "c": 2}}) == [Mismatch("body.json $.d", "3", "(absent)")]


def test_json_body_that_is_not_json() -> None:
    (mismatch,) = json_check({"a": 1}, b"<html>")
    assert mismatch.field == "body.json $"
    assert mismatch.expected == '{"a": 1}'
    assert mismatch.got.startswith("not JSON: Expecting value: line 1 column 1")
    (mismatch,) = json_check(None, b"")
    assert mismatch.got.startswith("not JSON: ")
    (mismatch,) = json_check(1, b"\xff\xfe\xfd")
    assert mismatch.got.startswith("not JSON: ")


def test_json_deeply_nested_body_does_not_crash() -> None:
    (mismatch,) = json_check({"a": 1}, b"[" * 200_000 + b"]" * 200_000)
    assert mismatch.field == "body.json $"
    assert mismatch.got.startswith("not JSON: ")


def test_json_deep_but_parseable_body() -> None:
    depth = 900
    body = b'{"a":' * depth + b"1" + b"}" * depth
    want: Any = 2
    for _ in range(depth):
        want = {"a": want}
    (mismatch,) = json_check(want, body)
    assert mismatch.field == "body.json $" + ".a" * depth
    assert (mismatch.expected, mismatch.got) == ("2", "1")


def test_json_long_values_are_shortened() -> None:
    (mismatch,) = json_check({"a": "x" * 500}, {"a": "y" * 500})
    assert mismatch.field == "body.json $.a"
    assert mismatch.expected.endswith("…")
    assert len(mismatch.expected) == 201


def test_json_utf8_body() -> None:
    assert json_check({"name": "Zoë"}, '{"name": "Zoë"}'.encode()) == []
