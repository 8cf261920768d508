"""The cookie jar: Set-Cookie parsing (RFC 6265 5.2), storage (5.3), the Cookie header
(5.4) and the bounds that keep a hostile server from growing a user's jar."""

from __future__ import annotations

import pytest

from tether.flow.cookies import CookieJar, SetCookie, parse_set_cookie

NOW = 1_700_000_000.0
JUNE_9_2021 = 1623233894.0  # Wed, 09 Jun 2021 10:18:14 GMT


def parsed(text: str, now: float = NOW) -> SetCookie:
    """The parse of a value the test knows to be valid."""
    cookie = parse_set_cookie(text, now)
    assert cookie is not None
    return cookie


def jar_with(*values: str, host: str = "example.com", path: str = "/") -> CookieJar:
    """A jar that stored ``values`` from one response of ``http://host/path`` at NOW."""
    jar = CookieJar()
    jar.store(values, "http", host, path, NOW)
    return jar


def sent(jar: CookieJar, host: str = "example.com", path: str = "/", scheme: str = "http") -> str:
    """The Cookie header ``jar`` gives a request at NOW, "" for none."""
    return jar.header(scheme, host, path, NOW) or ""


# Parsing


def test_parse_reads_every_attribute() -> None:
    cookie = parsed(
        "sid=abc; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Domain=Example.COM; Path=/app; "
        "Secure; HttpOnly; SameSite=Lax"
    )
    assert cookie == SetCookie(
        name="sid",
        value="abc",
        expires=JUNE_9_2021,
        max_age_seen=False,
        domain="example.com",
        path="/app",
        secure=True,
        http_only=True,
        same_site="Lax",
    )


def test_parse_without_attributes_is_a_session_cookie() -> None:
    assert parsed("sid=abc") == SetCookie("sid", "abc")


def test_parse_attribute_names_ignore_case() -> None:
    cookie = parsed(
        "a=b; mAX-aGE=60; DOMAIN=example.com; pAtH=/x; SECURE; httponly; samesite=Strict"
    )
    assert (cookie.expires, cookie.max_age_seen) == (NOW + 60, True)
    assert (cookie.domain, cookie.path, cookie.same_site) == ("example.com", "/x", "Strict")
    assert cookie.secure and cookie.http_only


def test_parse_keeps_a_quoted_value_as_given() -> None:
    assert parsed('sid="a b c"; Path=/').value == '"a b c"'


def test_parse_splits_at_the_first_equals_and_strips_blanks() -> None:
    cookie = parsed(" \ttoken = a=b==  ; Path = /p ")
    assert (cookie.name, cookie.value, cookie.path) == ("token", "a=b==", "/p")


def test_parse_ignores_unknown_attributes() -> None:
    assert parsed("a=b; Priority=High; Partitioned; =x; ;; Path=/q") == SetCookie(
        "a", "b", path="/q"
    )


@pytest.mark.parametrize("text", ["abc", "abc; Path=/", "=abc", " \t=abc", "", "; a=b"])
def test_parse_ignores_a_pair_without_equals_or_name(text: str) -> None:
    assert parse_set_cookie(text, NOW) is None


def test_parse_allows_an_empty_value() -> None:
    assert parsed("a=; Path=/").value == ""


@pytest.mark.parametrize(
    "text",
    [
        "a=b; Max-Age=60; Expires=Wed, 09 Jun 2021 10:18:14 GMT",
        "a=b; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Max-Age=60",
    ],
)
def test_max_age_beats_expires_in_either_order(text: str) -> None:
    cookie = parsed(text)
    assert (cookie.expires, cookie.max_age_seen) == (NOW + 60, True)


@pytest.mark.parametrize("max_age", ["0", "-1", "-0", "-99999", "000"])
def test_max_age_of_zero_or_less_expires_now(max_age: str) -> None:
    cookie = parsed(f"a=b; Max-Age={max_age}")
    assert cookie.max_age_seen
    assert cookie.expires is not None and cookie.expires <= NOW


@pytest.mark.parametrize("max_age", ["abc", "1.5", "+5", "", "5s", "- 5", "-"])
def test_bad_max_age_is_ignored_and_expires_counts(max_age: str) -> None:
    cookie = parsed(f"a=b; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Max-Age={max_age}")
    assert (cookie.expires, cookie.max_age_seen) == (JUNE_9_2021, False)


def test_a_huge_max_age_is_far_future_not_an_error() -> None:
    cookie = parsed("a=b; Max-Age=" + "9" * 5000)
    assert cookie.expires is not None and cookie.expires > NOW + 10**9


def test_max_age_counts_from_the_clock_without_now() -> None:
    cookie = parse_set_cookie("a=b; Max-Age=3600")
    assert cookie is not None and cookie.expires is not None
    assert cookie.expires > NOW + 3600  # NOW is in 2023: the clock is later


@pytest.mark.parametrize(
    "date",
    [
        "Wed, 09 Jun 2021 10:18:14 GMT",  # RFC 1123
        "Wednesday, 09-Jun-21 10:18:14 GMT",  # RFC 850, two-digit year
        "Wed Jun  9 10:18:14 2021",  # asctime
        "09 jun 2021 10:18:14",  # no weekday, no zone, lower-case month
        "Wed, 09 Jun 2021 10:18 GMT",  # no seconds: only email.utils reads it
        "Wed, 09 Jun 2021 12:18 +0200",  # a zone offset, through email.utils
    ],
)
def test_expires_reads_the_date_formats(date: str) -> None:
    expected = JUNE_9_2021 if date.count(":") == 2 else JUNE_9_2021 - 14
    assert parsed(f"a=b; Expires={date}").expires == expected


def test_two_digit_years_before_70_are_this_century() -> None:
    assert parsed("a=b; Expires=Thu, 01-Jan-38 00:00:00 GMT").expires == 2145916800.0
    assert parsed("a=b; Expires=Thu, 01-Jan-70 00:00:01 GMT").expires == 1.0


@pytest.mark.parametrize(
    "date",
    [
        "not a date",
        "",
        "0",
        "Wed, 31 Feb 2021 10:18:14 GMT",  # no such day
        "Wed, 09 Jun 1600 10:18:14 GMT",  # before 1601
        "Wed, 09 Jun 2021 24:00:00 GMT",  # no such hour
        "Wed, 09 Jun 2021 10:60:00 GMT",
        "Wed, 09 Jun 2021 10:18:99 GMT",
        "Wed, 32 Jun 2021 10:18:14 GMT",
    ],
)
def test_bad_expires_is_ignored(date: str) -> None:
    assert parsed(f"a=b; Expires={date}").expires is None
    earlier = parsed(f"a=b; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Expires={date}")
    assert earlier.expires == JUNE_9_2021


def test_domain_is_lower_case_without_its_leading_dot() -> None:
    assert parsed("a=b; Domain=.WWW.Example.com").domain == "www.example.com"


def test_an_empty_domain_attribute_is_ignored() -> None:
    assert parsed("a=b; Domain=example.com; Domain=").domain == "example.com"
    assert parsed("a=b; Domain=").domain == ""


@pytest.mark.parametrize("path", ["", "relative", "x/y"])
def test_a_path_not_starting_with_a_slash_means_none(path: str) -> None:
    assert parsed(f"a=b; Path=/set; Path={path}").path == ""


def test_the_last_of_an_attribute_counts() -> None:
    cookie = parsed(
        "a=b; Path=/one; Path=/two; Domain=a.com; Domain=b.com; SameSite=Lax; SameSite=x"
    )
    assert (cookie.path, cookie.domain, cookie.same_site) == ("/two", "b.com", "x")


# Domain matching


def test_a_cookie_without_domain_is_host_only() -> None:
    jar = jar_with("sid=1", host="www.example.com")
    assert sent(jar, "www.example.com") == "sid=1"
    assert sent(jar, "WWW.EXAMPLE.COM") == "sid=1"
    assert sent(jar, "a.www.example.com") == ""
    assert sent(jar, "example.com") == ""


@pytest.mark.parametrize("domain", ["example.com", ".example.com", "EXAMPLE.com"])
def test_a_domain_cookie_goes_to_the_domain_and_its_subdomains(domain: str) -> None:
    jar = jar_with(f"sid=1; Domain={domain}", host="www.Example.com")
    for host in ("example.com", "www.example.com", "a.b.example.com", "Example.COM"):
        assert sent(jar, host) == "sid=1", host
    for host in ("notexample.com", "example.org", "com", "example.com.evil.org"):
        assert sent(jar, host) == "", host


@pytest.mark.parametrize(
    "domain", ["other.com", "w.example.com", "sub.www.example.com", "ample.com", "example"]
)
def test_a_domain_the_host_does_not_match_is_rejected(domain: str) -> None:
    jar = jar_with(f"sid=1; Domain={domain}", "ok=1", host="www.example.com")
    assert len(jar) == 1
    assert sent(jar, "www.example.com") == "ok=1"
    assert sent(jar, domain) == ""


def test_a_parent_domain_is_allowed_without_a_public_suffix_list() -> None:
    jar = jar_with("sid=1; Domain=com", host="www.example.com")
    assert sent(jar, "other.com") == "sid=1"


@pytest.mark.parametrize(
    ("host", "domain"),
    [("10.0.0.1", "0.0.1"), ("10.0.0.1", "1"), ("10.0.0.1", "example.com"), ("::1", "1")],
)
def test_an_ip_host_takes_no_other_domain(host: str, domain: str) -> None:
    jar = jar_with(f"sid=1; Domain={domain}", host=host)
    assert len(jar) == 0


def test_an_ip_host_may_name_itself_as_domain() -> None:
    jar = jar_with("sid=1; Domain=10.0.0.1", host="10.0.0.1")
    assert sent(jar, "10.0.0.1") == "sid=1"
    assert sent(jar, "10.0.0.2") == ""
    assert sent(jar, "1.10.0.0.1") == ""


def test_a_bracketed_ipv6_host_is_the_same_host() -> None:
    jar = jar_with("sid=1", host="[::1]")
    assert sent(jar, "::1") == "sid=1"
    assert sent(jar, "[::1]") == "sid=1"


# Paths


@pytest.mark.parametrize(
    ("target", "default", "parent"),
    [
        ("/a/b", "/a", "/"),
        ("/a/b?next=/x/y/z", "/a", "/"),
        ("/a/b/c/", "/a/b/c", "/a/b"),
        ("/a", "/", None),
        ("/", "/", None),
        ("", "/", None),
        ("?q=/x/y", "/", None),
    ],
)
def test_without_a_path_the_default_path_is_the_request_directory(
    target: str, default: str, parent: str | None
) -> None:
    jar = jar_with("sid=1", path=target)
    assert sent(jar, path=default) == "sid=1"
    assert sent(jar, path=default.rstrip("/") + "/deeper/page") == "sid=1"
    if parent is not None:
        assert sent(jar, path=parent) == ""


@pytest.mark.parametrize(
    ("request_path", "matches"),
    [
        ("/a", True),
        ("/a/", True),
        ("/a/b", True),
        ("/a/b/c", True),
        ("/a?x=1", True),
        ("/ab", False),
        ("/", False),
        ("/b/a", False),
        ("/A", False),
        ("", False),
    ],
)
def test_path_match(request_path: str, matches: bool) -> None:
    jar = jar_with("sid=1; Path=/a")
    assert (sent(jar, path=request_path) == "sid=1") is matches


def test_a_path_ending_in_a_slash_matches_below_it_only() -> None:
    jar = jar_with("sid=1; Path=/a/")
    assert sent(jar, path="/a/b") == "sid=1"
    assert sent(jar, path="/a/") == "sid=1"
    assert sent(jar, path="/a") == ""


def test_cookies_of_one_name_on_two_paths_are_two_cookies() -> None:
    jar = jar_with("sid=root; Path=/", "sid=app; Path=/app")
    assert len(jar) == 2
    assert sent(jar, path="/app/x") == "sid=app; sid=root"
    assert sent(jar, path="/other") == "sid=root"


# Expiry and replacement


def test_an_expired_cookie_is_not_sent_and_is_dropped() -> None:
    jar = jar_with("sid=1; Max-Age=10", "keep=1")
    assert jar.header("http", "example.com", "/", NOW + 9) == "sid=1; keep=1"
    assert jar.header("http", "example.com", "/", NOW + 10) == "keep=1"
    assert len(jar) == 1


def test_an_expires_in_the_past_removes_the_stored_cookie() -> None:
    jar = jar_with("sid=1", "other=2")
    jar.store(["sid=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT"], "http", "example.com", "/", NOW)
    assert sent(jar) == "other=2"
    assert len(jar) == 1


def test_max_age_zero_removes_only_the_cookie_of_the_same_name_domain_and_path() -> None:
    www = "www.example.com"
    jar = jar_with("sid=1; Path=/", "sid=2; Path=/app", "sid=3; Domain=example.com", host=www)
    jar.store(["sid=x; Max-Age=0; Path=/app"], "http", www, "/", NOW)
    assert sent(jar, www, "/app") == "sid=1; sid=3"
    jar.store(["sid=x; Max-Age=0"], "http", www, "/", NOW)
    assert sent(jar, www, "/app") == "sid=3"
    jar.store(["sid=x; Max-Age=0; Domain=example.com"], "http", www, "/", NOW)
    assert len(jar) == 0


def test_host_only_and_domain_cookies_share_a_key() -> None:
    # RFC 6265 5.3 step 11 matches name, domain and path; host-only is not part of it.
    jar = jar_with("sid=host", "sid=domain; Domain=example.com")
    assert len(jar) == 1
    assert sent(jar, "www.example.com") == "sid=domain"


def test_an_expired_cookie_for_nothing_stored_is_not_kept() -> None:
    jar = jar_with("sid=1; Max-Age=0", "old=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT")
    assert len(jar) == 0
    assert sent(jar) == ""


def test_a_cookie_set_again_replaces_the_old_and_keeps_its_place() -> None:
    jar = jar_with("a=1", "b=2", "c=3")
    jar.store(["a=new"], "http", "example.com", "/", NOW + 5)
    assert len(jar) == 3
    assert sent(jar) == "a=new; b=2; c=3"


def test_a_session_cookie_made_persistent_expires() -> None:
    jar = jar_with("sid=1")
    jar.store(["sid=2; Max-Age=5"], "http", "example.com", "/", NOW)
    assert jar.header("http", "example.com", "/", NOW + 1) == "sid=2"
    assert jar.header("http", "example.com", "/", NOW + 5) is None


# Secure, ordering, the header


def test_a_secure_cookie_goes_over_https_only() -> None:
    jar = jar_with("s=1; Secure", "p=2")
    assert sent(jar, scheme="http") == "p=2"
    assert sent(jar, scheme="https") == "s=1; p=2"
    assert sent(jar, scheme="HTTPS") == "s=1; p=2"


def test_longer_paths_go_first_then_earlier_created() -> None:
    jar = jar_with("root=1; Path=/", "late_root=2; Path=/")
    jar.store(["deep=3; Path=/a/b", "mid=4; Path=/a"], "http", "example.com", "/", NOW)
    jar.store(["mid_too=5; Path=/a"], "http", "example.com", "/", NOW)
    assert sent(jar, path="/a/b/c") == "deep=3; mid=4; mid_too=5; root=1; late_root=2"


def test_the_header_holds_no_attributes() -> None:
    jar = jar_with("sid=1; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Domain=example.com")
    assert sent(jar) == "sid=1"


def test_no_cookie_no_header() -> None:
    assert CookieJar().header("https", "example.com", "/", NOW) is None
    assert jar_with("sid=1").header("http", "example.org", "/", NOW) is None


def test_a_response_with_no_valid_cookie_stores_nothing() -> None:
    jar = jar_with("nonsense", "=x", "")
    assert len(jar) == 0


def test_clear_forgets_everything() -> None:
    jar = jar_with("a=1", "b=2; Domain=example.com")
    jar.clear()
    assert len(jar) == 0
    assert sent(jar) == ""


# Bounds


def test_a_flood_on_one_host_keeps_the_latest_50() -> None:
    jar = CookieJar()
    jar.store((f"c{i}=v" for i in range(10_000)), "http", "example.com", "/", NOW)
    assert len(jar) == 50
    assert sent(jar) == "; ".join(f"c{i}=v" for i in range(9_950, 10_000))


def test_a_flood_over_many_hosts_keeps_3000_and_50_per_domain() -> None:
    jar = CookieJar()
    for host in range(200):
        values = (f"c{i}=v" for i in range(50))
        jar.store(values, "http", f"h{host}.example.com", "/", NOW)
    assert len(jar) == 3000
    assert sent(jar, "h0.example.com") == ""  # the oldest went first
    assert sent(jar, "h139.example.com") == ""
    assert sent(jar, "h140.example.com").count("=") == 50
    assert sent(jar, "h199.example.com").count("=") == 50


def test_a_flood_on_a_parent_domain_is_bounded_too() -> None:
    jar = CookieJar()
    for host in range(100):
        values = (f"h{host}c{i}=v; Domain=example.com" for i in range(100))
        jar.store(values, "http", f"h{host}.example.com", "/", NOW)
    assert len(jar) == 50
    assert sent(jar, "example.com").count("=") == 50


def test_expired_cookies_are_evicted_before_live_ones() -> None:
    jar = jar_with("live=1", *(f"short{i}=v; Max-Age=5" for i in range(49)))
    jar.store(["new=1"], "http", "example.com", "/", NOW + 10)
    assert len(jar) == 2
    assert jar.header("http", "example.com", "/", NOW + 10) == "live=1; new=1"


def test_a_cookie_set_again_is_the_last_to_be_evicted() -> None:
    jar = jar_with("session=1", *(f"c{i}=v" for i in range(49)))
    jar.store(["session=1"], "http", "example.com", "/", NOW)
    jar.store(["extra=1"], "http", "example.com", "/", NOW)
    assert len(jar) == 50
    header = sent(jar)
    assert "session=1" in header.split("; ")
    assert "c0=v" not in header.split("; ")


def test_an_oversized_cookie_is_refused() -> None:
    jar = jar_with("big=" + "x" * 5000, "fits=" + "x" * 4000)
    assert len(jar) == 1
    assert sent(jar).startswith("fits=")


@pytest.mark.parametrize("value", ["a\x00b", "a\rb", "a\nb", "a\x7fb"])
def test_a_cookie_with_a_control_character_is_refused(value: str) -> None:
    jar = jar_with(f"sid={value}", "ok=1")
    assert sent(jar) == "ok=1"


# Version


def test_version_bumps_on_every_change() -> None:
    jar = CookieJar()
    seen = [jar.version]

    def changed() -> None:
        assert jar.version != seen[-1]
        seen.append(jar.version)

    jar.store(["a=1"], "http", "example.com", "/", NOW)
    changed()
    jar.store(["a=2"], "http", "example.com", "/", NOW)
    changed()
    jar.store(["b=1; Max-Age=5"], "http", "example.com", "/", NOW)
    changed()
    jar.header("http", "example.com", "/", NOW + 5)  # drops b, expired
    changed()
    jar.store(["a=2; Max-Age=0"], "http", "example.com", "/", NOW)
    changed()
    jar.store(["c=1"], "http", "example.com", "/", NOW)
    jar.clear()
    changed()
    assert len(set(seen)) == len(seen)


def test_version_stays_when_nothing_changes() -> None:
    jar = jar_with("a=1; Path=/")
    before = jar.version
    jar.header("http", "example.com", "/", NOW)
    jar.store(["a=1; Path=/"], "http", "example.com", "/", NOW)  # the same cookie again
    jar.store(["b=1; Domain=other.com", "junk"], "http", "example.com", "/", NOW)  # refused
    jar.store(["gone=1; Max-Age=0"], "http", "example.com", "/", NOW)  # nothing to remove
    CookieJar().clear()
    assert jar.version == before
    jar.clear()
    cleared = jar.version
    jar.clear()
    assert jar.version == cleared != before


def test_a_header_asked_again_is_the_same_until_the_jar_changes_or_a_cookie_expires() -> None:
    # header() keeps its answers; they must never outlive a change or an expiry.
    jar = CookieJar()
    jar.store(["a=1; Max-Age=10"], "http", "h.test", "/", 0.0)
    assert jar.header("http", "h.test", "/x", 5.0) == "a=1"
    assert jar.header("http", "h.test", "/x", 5.0) == "a=1"
    jar.store(["b=2"], "http", "h.test", "/", 6.0)
    assert jar.header("http", "h.test", "/x", 7.0) == "a=1; b=2"
    assert jar.header("http", "h.test", "/x", 11.0) == "b=2"
    jar.clear()
    assert jar.header("http", "h.test", "/x", 12.0) is None
