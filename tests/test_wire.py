"""What tether puts on the wire, read back on the server side byte for byte.

Every test sends through a real socket to an :class:`servers.EchoServer`, which keeps the
exact bytes of each request, and asserts one thing about them: the default and overridden
Host and User-Agent, body framing, how a record's path joins ``--target``'s path,
``Connection: close`` without keep-alive, and what a followed redirect sends next (method,
body, and the headers it drops or keeps).
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import uvloop

from servers import Captured, EchoServer, Responder, response
from tether import Client, ClientOptions, InputError, Outcome, Record
from tether.cli import main
from tether.engine.request import Url, redirect_headers

FOLLOW = ClientOptions(follow_redirects=3)
BODY = b"payload"
# Headers a HAR or curl record carries with its body: both describe a body a 301/302/303 drops.
BODY_HEADERS = (("Content-Type", "application/json"), ("Content-Length", str(len(BODY))))


def send(
    srv: EchoServer,
    records: Sequence[Record],
    options: ClientOptions | None = None,
    path: str = "",
) -> list[Outcome]:
    """Send ``records`` one after the other through one :class:`tether.Client` whose target is
    ``srv.url + path``; fail if any of them got no response (the capture would be moot)."""
    # A framing bug (a Content-Length larger than the body) leaves the server waiting for bytes
    # that never come: a short request timeout makes that a quick failure, not a 30 s one.
    options = dataclasses.replace(options or ClientOptions(), timeout=5.0)

    async def go() -> list[Outcome]:
        async with Client(options, target=srv.url + path) as client:
            return [await client.fetch(record) for record in records]

    outcomes = uvloop.run(go())
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    return outcomes


def send_one(
    record: Record,
    options: ClientOptions | None = None,
    path: str = "",
    routes: dict[str, Responder | bytes] | None = None,
) -> list[Captured]:
    """Send one record to a fresh echo server; every request the server received for it
    (one, or one per redirect hop)."""
    with EchoServer(routes) as srv:
        send(srv, [record], options, path)
    return srv.captured


def only(record: Record, options: ClientOptions | None = None, path: str = "") -> Captured:
    """The single request one record puts on the wire."""
    captured = send_one(record, options, path)
    assert len(captured) == 1, [c.head for c in captured]
    return captured[0]


def run_cli(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    records: Sequence[Mapping[str, object]],
    *args: str,
) -> int:
    """``tether run RECORDS ARGS --json -`` in process, as a user runs it; its exit status."""
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    status = main(["run", str(path), *args, "--json", "-"])
    capsys.readouterr()  # the summary document and the text report: not what is checked here
    return status


# --- the capture itself -------------------------------------------------------------------


def test_echo_server_captures_exactly_the_bytes_sent() -> None:
    # Everything below trusts the capture: check it against bytes written by hand, two
    # requests in one write so that it must split them where the first body ends.
    first = b"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nX-Odd:  spaced \r\nContent-Length: 3\r\n\r\nabc"
    second = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    with EchoServer() as srv, socket.create_connection((srv.host, srv.port), timeout=5) as sock:
        sock.sendall(first + second)
        while sock.recv(4096):  # until the server closes, as asked by the second request
            pass
    assert [c.raw for c in srv.captured] == [first, second]


# --- the request head ---------------------------------------------------------------------


def test_plain_get_head_is_exactly_request_line_host_user_agent() -> None:
    # The engine's order: request line, Host, User-Agent, then the record's own headers.
    with EchoServer() as srv:
        send(srv, [Record("GET", "/x")])
    expected = f"GET /x HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUser-Agent: tether/0.1\r\n\r\n"
    assert srv.only().raw == expected.encode()


def test_record_headers_follow_the_defaults_in_record_order() -> None:
    record = Record("GET", "/", headers=(("X-B", "2"), ("Accept", "*/*"), ("X-A", "1")))
    names = [name for name, _ in only(record).request.raw_headers]
    assert names == ["Host", "User-Agent", "X-B", "Accept", "X-A"]


def test_default_host_is_the_targets_ip_and_port() -> None:
    with EchoServer() as srv:
        send(srv, [Record("GET", "/")])
    assert srv.only().values("Host") == [f"127.0.0.1:{srv.port}"]


def test_record_host_replaces_the_default_host() -> None:
    record = Record("GET", "/", headers=(("host", "app.example"),))
    assert only(record).values("Host") == ["app.example"]


def test_default_user_agent_is_tethers() -> None:
    assert only(Record("GET", "/")).values("User-Agent") == ["tether/0.1"]


def test_record_user_agent_is_sent_once_instead_of_the_default() -> None:
    record = Record("GET", "/", headers=(("User-Agent", "curl/8.5.0"),))
    assert only(record).values("User-Agent") == ["curl/8.5.0"]


def test_empty_user_agent_option_sends_no_user_agent() -> None:
    captured = only(Record("GET", "/"), ClientOptions(user_agent=""))
    assert captured.values("User-Agent") == []


def test_keep_alive_sends_no_connection_header() -> None:
    assert only(Record("GET", "/")).values("Connection") == []


def test_disable_keep_alives_sends_connection_close_on_every_request() -> None:
    with EchoServer() as srv:
        send(srv, [Record("GET", "/")] * 2, ClientOptions(disable_keep_alives=True))
    assert [c.values("Connection") for c in srv.captured] == [["close"], ["close"]]


def test_non_ascii_header_value_goes_out_as_utf8() -> None:
    record = Record("GET", "/", headers=(("X-Name", "café"),))
    assert b"\r\nX-Name: caf\xc3\xa9\r\n" in only(record).head


# --- body framing ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "OPTIONS"])
def test_bodyless_request_has_no_framing_headers(method: str) -> None:
    captured = only(Record(method, "/"))
    assert captured.values("Content-Length") + captured.values("Transfer-Encoding") == []


def test_body_is_sent_with_its_exact_content_length() -> None:
    captured = only(Record("POST", "/", body=b"hello world"))
    assert (captured.values("Content-Length"), captured.body) == (["11"], b"hello world")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_empty_body_of_a_body_method_says_content_length_0(method: str) -> None:
    # Servers (nginx among them) answer a bodyless POST without a length with 411.
    assert only(Record(method, "/")).values("Content-Length") == ["0"]


def test_record_content_length_is_sent_once_instead_of_the_computed_one() -> None:
    record = Record("POST", "/", headers=(("Content-Length", "5"),), body=b"12345")
    assert only(record).values("Content-Length") == ["5"]


SMUGGLED = b"GET /r/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    ("header", "body"),
    [(("Content-Length", "0"), SMUGGLED), (("Transfer-Encoding", "chunked"), b"5\r\nhello")],
    ids=["content-length", "transfer-encoding"],
)
def test_a_records_own_framing_is_refused_naming_its_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    header: tuple[str, str],
    body: bytes,
) -> None:
    """A record's ``Content-Length: 0`` and a second request as its body made the server run
    a request tether never counted; with ``Transfer-Encoding`` both framings went out. The
    framing is tether's: such a record is an input error naming its line, and is not sent,
    while the records around it are."""
    bad = {"method": "POST", "url": "/", "headers": dict([header]), "body": body.decode()}
    records = [{"url": "/a"}, bad, {"url": "/b"}]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with EchoServer() as srv:
        main(["run", str(path), "-t", srv.url, "--json", str(tmp_path / "out.json")])
    shown = capsys.readouterr()
    assert [c.target for c in srv.captured] == ["/a", "/b"]
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["input_errors"] == 1
    (example,) = doc["input_error_examples"]
    assert example["line"] == 2 and header[0] in example["error"]
    assert "records.jsonl:2" in shown.out + shown.err, shown


def test_a_records_framing_is_refused_through_the_python_api_too() -> None:
    record = Record("POST", "/", headers=(("Content-Length", "0"),), body=SMUGGLED)
    match = "Content-Length '0' is not the body's length"
    with EchoServer() as srv, pytest.raises(InputError, match=match):
        send(srv, [record])
    assert srv.captured == []


def test_body_bytes_arrive_unchanged() -> None:
    body = bytes(range(256))
    assert only(Record("PUT", "/", body=body)).body == body


# --- the request-target: joining a record's path to the target's ---------------------------


@pytest.mark.parametrize(
    ("target_path", "url", "sent"),
    [
        ("", "/x", "/x"),
        ("/", "/x", "/x"),
        ("/base", "/x", "/base/x"),
        ("/base/", "/x", "/base/x"),
        ("/base/", "/", "/base/"),
        ("/base/", "/x?q=1&r=a%20b", "/base/x?q=1&r=a%20b"),
        ("/base/?from=target", "/x", "/base/x"),  # the target's own query is not carried over
        ("/base/", "/x#frag", "/base/x"),  # a fragment never goes out
    ],
)
def test_record_path_is_appended_to_the_target_path(target_path: str, url: str, sent: str) -> None:
    assert only(Record("GET", url), path=target_path).target == sent


def test_absolute_record_url_ignores_the_target_path() -> None:
    with EchoServer() as srv:
        send(srv, [Record("GET", f"{srv.url}/abs?q=1")], path="/base/")
    assert srv.only().target == "/abs?q=1"


def test_record_path_without_leading_slash_is_refused_by_the_client() -> None:
    with pytest.raises(InputError):
        only(Record("GET", "x"), path="/base/")


def test_cli_joins_record_path_to_target_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with EchoServer() as srv:
        status = run_cli(capsys, tmp_path, [{"url": "/x?q=1"}], "-t", f"{srv.url}/base/")
    assert (status, [c.target for c in srv.captured]) == (0, ["/base/x?q=1"])


def test_cli_refuses_record_path_without_leading_slash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with EchoServer() as srv:
        status = run_cli(capsys, tmp_path, [{"url": "x"}], "-t", f"{srv.url}/base/")
    assert (status, srv.captured) == (2, [])


def test_cli_disable_keep_alives_sends_connection_close(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with EchoServer() as srv:
        run_cli(capsys, tmp_path, [{"url": "/"}] * 2, "-t", srv.url, "--disable-keep-alives")
    assert [c.values("Connection") for c in srv.captured] == [["close"], ["close"]]


# --- redirects --------------------------------------------------------------------------------


def moved(status: int, location: str = "/b") -> dict[str, Responder | bytes]:
    """Routes answering ``/a`` with ``status`` to ``location`` (``/b`` gets the default 200)."""
    return {"/a": response(status, b"moved", [("Location", location)])}


def hop(status: int, record: Record, options: ClientOptions = FOLLOW) -> Captured:
    """The request that follows ``record`` (sent to ``/a``) after a ``status`` redirect to
    ``/b``; fails unless there were exactly two requests."""
    captured = send_one(record, options, routes=moved(status))
    assert [c.target for c in captured] == ["/a", "/b"]
    return captured[1]


def post_a(*headers: tuple[str, str]) -> Record:
    """A POST to ``/a`` with a body and the headers that describe it, plus ``headers``."""
    return Record("POST", "/a", headers=(*BODY_HEADERS, *headers), body=BODY)


def test_redirect_is_not_followed_by_default() -> None:
    captured = send_one(Record("GET", "/a"), routes=moved(302))
    assert [c.target for c in captured] == ["/a"]


@pytest.mark.parametrize("status", [301, 302, 303])
def test_post_becomes_get_after(status: int) -> None:
    assert hop(status, post_a()).request.method == "GET"


@pytest.mark.parametrize("status", [301, 302, 303])
def test_body_is_dropped_after(status: int) -> None:
    assert hop(status, post_a()).body == b""


@pytest.mark.parametrize("status", [301, 302, 303])
def test_content_length_is_dropped_with_the_body_after(status: int) -> None:
    assert hop(status, post_a()).values("Content-Length") == []


@pytest.mark.parametrize("status", [301, 302, 303])
def test_content_type_is_dropped_with_the_body_after(status: int) -> None:
    assert hop(status, post_a()).values("Content-Type") == []


@pytest.mark.parametrize("status", [301, 302, 303])
def test_head_stays_head_after(status: int) -> None:
    assert hop(status, Record("HEAD", "/a")).request.method == "HEAD"


@pytest.mark.parametrize("status", [307, 308])
def test_method_is_kept_after(status: int) -> None:
    assert hop(status, Record("PUT", "/a", body=BODY)).request.method == "PUT"


@pytest.mark.parametrize("status", [307, 308])
def test_body_is_kept_with_its_content_length_after(status: int) -> None:
    captured = hop(status, post_a())
    assert (captured.values("Content-Length"), captured.body) == ([str(len(BODY))], BODY)


@pytest.mark.parametrize("status", [307, 308])
def test_content_type_is_kept_with_the_body_after(status: int) -> None:
    assert hop(status, post_a()).values("Content-Type") == ["application/json"]


@pytest.mark.parametrize("status", [302, 307])
def test_other_record_headers_are_kept_in_order_after(status: int) -> None:
    record = post_a(("X-Trace", "t-1"), ("Accept", "application/json"))
    names = [name for name, _ in hop(status, record).request.raw_headers]
    assert [n for n in names if n in ("Accept", "X-Trace")] == ["X-Trace", "Accept"]


def test_authorization_is_kept_on_a_same_host_redirect() -> None:
    record = Record("GET", "/a", headers=(("Authorization", "Bearer t"),))
    assert hop(302, record).values("Authorization") == ["Bearer t"]


def test_redirect_location_query_is_sent() -> None:
    captured = send_one(Record("GET", "/a"), FOLLOW, routes=moved(302, "/b?page=2"))
    assert [c.target for c in captured] == ["/a", "/b?page=2"]


def two_hosts(record: Record) -> tuple[Captured, EchoServer]:
    """Send ``record`` to ``/a`` on one server, which redirects (302) to ``/b`` on another
    server named ``localhost`` (a different host name, same loopback address); the request
    the second server received, and that server."""
    with EchoServer() as other:
        routes = moved(302, f"http://localhost:{other.port}/b")
        with EchoServer(routes) as first:
            send(first, [record], FOLLOW)
    return other.only(), other


def test_record_host_is_replaced_by_the_new_hosts_after_a_redirect_elsewhere() -> None:
    captured, other = two_hosts(Record("GET", "/a", headers=(("Host", "app.example"),)))
    assert captured.values("Host") == [f"localhost:{other.port}"]


@pytest.mark.parametrize("name", ["Authorization", "Cookie"])
def test_credentials_are_dropped_on_a_redirect_to_another_host(name: str) -> None:
    captured, _ = two_hosts(Record("GET", "/a", headers=((name, "secret"),)))
    assert captured.values(name) == []


@pytest.mark.parametrize("name", ["Authorization", "Cookie"])
def test_credentials_are_kept_on_an_absolute_redirect_to_the_same_host(name: str) -> None:
    # Go compares host names only: another port (or scheme) of the same host keeps them.
    with EchoServer() as other:
        routes = moved(302, f"http://127.0.0.1:{other.port}/b")
        with EchoServer(routes) as first:
            send(first, [Record("GET", "/a", headers=((name, "secret"),))], FOLLOW)
    assert other.only().values(name) == ["secret"]


def test_record_host_is_kept_on_a_relative_redirect() -> None:
    # A relative Location is the same server: the Host the record asked for still names it.
    record = Record("GET", "/a", headers=(("Host", "app.example"),))
    captured = send_one(record, FOLLOW, routes=moved(302, "/b"))
    assert [c.values("Host") for c in captured] == [["app.example"], ["app.example"]]


def test_cli_follow_redirects_turns_post_into_get_after_303(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    record = {"method": "POST", "url": "/a", "body": "payload"}
    with EchoServer(moved(303)) as srv:
        run_cli(capsys, tmp_path, [record], "-t", srv.url, "--follow-redirects", "2")
    assert [c.request.method for c in srv.captured] == ["POST", "GET"]


@pytest.mark.parametrize(
    ("first", "to", "kept"),
    [
        ("example.com", "example.com", True),
        ("example.com", "EXAMPLE.com", True),
        ("example.com", "api.example.com", True),  # a subdomain: Go keeps them
        ("api.example.com", "example.com", False),  # the parent is another host
        ("example.com", "notexample.com", False),
        ("example.com", "example.com.evil", False),
        ("::1", "::1", True),
        ("0.0.1", "::ffff:10.0.0.1", False),  # an IPv6 address is no subdomain of anything
    ],
)
def test_credentials_follow_only_to_the_host_or_its_subdomains(
    first: str, to: str, kept: bool
) -> None:
    headers = (("Authorization", "a"), ("Cookie", "c"), ("X-Other", "o"))
    hop_headers = redirect_headers(
        headers, Url("http", first, 80, "/a"), Url("http", to, 80, "/b"), f"http://{to}/b", True
    )
    names = [name for name, _ in hop_headers]
    assert names == (["Authorization", "Cookie", "X-Other"] if kept else ["X-Other"])
