"""Input formats other than JSONL: real nginx access logs, vegeta's documented targets, curl
commands as Chrome copies them, HAR, CSV; detection, convert, and fuzzing each parser."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tether
from servers import BROWSER_DIR, NginxFactory, record_har
from tether.cli import main
from tether.engine.request import framing_problem
from tether.errors import InputError, RecordError
from tether.model import HeaderExpect, Record
from tether.records import FORMATS, Reading, detect, file_source, read


def records_of(path: Path, **how: object) -> list[Record | RecordError]:
    return list(file_source(str(path), Reading(**how))())  # type: ignore[arg-type]


def good(items: list[Record | RecordError]) -> list[Record]:
    assert all(isinstance(i, Record) for i in items), [str(i) for i in items]
    return [i for i in items if isinstance(i, Record)]


# --- access logs written by a real nginx ----------------------------------------------------------


def wait_for_lines(log: Path, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(log.read_text().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def send(port: int, method: str, path: str, body: bytes | None = None) -> None:
    """One request, its redirect not followed (it points off this host)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, body)
    conn.getresponse().read()
    conn.close()


def test_nginx_access_log_replays_with_its_statuses(
    nginx_factory: NginxFactory, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    server = nginx_factory(server=f"access_log {log} combined;")
    for method, path in [("GET", "/"), ("GET", "/r/c0042?x=1"), ("GET", "/echo-method")]:
        send(server.port, method, path)
    send(server.port, "POST", "/echo-method", b"a=1")
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"\x16\x03\x01 not http\r\n\r\n")  # logged as a 400 with a junk request
        raw.recv(4096)
    wait_for_lines(log, 5)  # nginx logs a request as it finishes it: just after answering
    items = records_of(log, expect_recorded=True)
    records = [i for i in items if isinstance(i, Record)]
    assert [(r.method, r.url, r.expect.status) for r in records] == [
        ("GET", "/", (200,)),
        ("GET", "/r/c0042?x=1", (302,)),
        ("GET", "/echo-method", (200,)),
        ("POST", "/echo-method", (200,)),
    ]
    [junk] = [i for i in items if isinstance(i, RecordError)]
    assert junk.line == 5 and "is not METHOD TARGET HTTP/x" in str(junk)
    assert all(abs((r.at or 0) - time.time()) < 60 for r in records)  # from $time_local
    summary = tether.run(records, target=server.url)
    assert summary.requests == 4 and summary.ok == 4  # the log's statuses, met again


def test_a_custom_nginx_log_format(nginx_factory: NginxFactory, tmp_path: Path) -> None:
    log = tmp_path / "custom.log"
    fmt = "$request_method $request_uri -> $status in $request_time"
    server = nginx_factory(http=f"log_format tether '{fmt}';", server=f"access_log {log} tether;")
    send(server.port, "GET", "/r/7")
    wait_for_lines(log, 1)
    items = records_of(log, log_format=fmt, expect_recorded=True)
    [record] = good(items)
    assert (record.method, record.url, record.expect.status) == ("GET", "/r/7", (302,))


def test_a_log_format_without_the_request_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("1.2.3.4 200\n")
    with pytest.raises(InputError, match=r"needs \$request"):
        records_of(log, log_format="$remote_addr $status")


# --- vegeta's documented targets ----------------------------------------------------------------

# vegeta's README examples: simple targets, targets with custom headers, and one with a body
# (its path made relative, to a file this test writes).
VEGETA_HTTP = """GET http://goku:9090/path/to/dragon?item=ball
GET http://user:password@goku:9090/path/to
HEAD http://goku:9090/path/to/success

GET http://user:password@goku:9090/path/to
X-Account-ID: 8675309

DELETE http://goku:9090/path/to/remove
Confirmation-Token: 90215
Authorization: Token DEADBEEF

POST http://goku:9090/things
X-Account-ID: 99
@newthing.json
"""

VEGETA_JSON = (
    '{"method": "GET", "url": "http://goku:9090/path/to/dragon?item=ball", '
    '"header": {"X-Account-ID": ["8675309"]}}\n'
    '{"method": "POST", "url": "http://goku:9090/things", "body": "eyJuYW1lIjoia2FrYXJvdCJ9"}\n'
)


def test_vegeta_http_targets(tmp_path: Path) -> None:
    (tmp_path / "newthing.json").write_text('{"name":"kakarot"}')
    targets = tmp_path / "targets.txt"
    targets.write_text(VEGETA_HTTP)
    simple, userinfo, head, with_header, delete, post = good(records_of(targets))
    assert (simple.method, simple.url, simple.headers) == (
        "GET",
        "http://goku:9090/path/to/dragon?item=ball",
        (),
    )
    basic = ("Authorization", "Basic dXNlcjpwYXNzd29yZA==")  # user:password, as Go sends it
    assert (userinfo.url, userinfo.headers) == ("http://goku:9090/path/to", (basic,))
    assert head.method == "HEAD"
    assert with_header.headers == (basic, ("X-Account-ID", "8675309"))
    assert delete.method == "DELETE" and dict(delete.headers)["Authorization"] == "Token DEADBEEF"
    assert (post.method, post.body, post.line) == ("POST", b'{"name":"kakarot"}', 12)
    assert dict(post.headers) == {"X-Account-ID": "99"}


def test_vegeta_json_targets(tmp_path: Path) -> None:
    targets = tmp_path / "targets.json"
    targets.write_text(VEGETA_JSON)
    get, post = good(records_of(targets))
    assert get.headers == (("X-Account-ID", "8675309"),)
    assert post.body == b'{"name":"kakarot"}'


def test_vegeta_bad_targets_name_their_line(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("GET http://h/\nno colon here\n\nPOST http://h/\n@missing.bin\n")
    items = records_of(targets, format="vegeta")
    assert [str(i) for i in items if isinstance(i, RecordError)] == [
        f"{targets}:2: expected 'Name: value' or '@file', got 'no colon here'",
        f"{targets}:5: cannot read body 'missing.bin': No such file or directory",
    ]


# --- curl, as Chrome copies it ------------------------------------------------------------------

CHROME_CURL = r"""curl 'http://127.0.0.1:8080/api/items?page=2' \
  -H 'Accept: application/json, text/plain, */*' \
  -H 'Accept-Language: en-US,en;q=0.9' \
  -H 'Connection: keep-alive' \
  -b 'session=abc; theme=dark' \
  -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.0.0' \
  --compressed
curl 'http://127.0.0.1:8080/api/items' \
  -H 'Content-Type: application/json' \
  --data-raw $'{"name":"it\'s"}' \
  --compressed
curl -X PUT http://127.0.0.1:8080/x -d a=1 -d b=2
curl http://127.0.0.1:8080/search -G --data-urlencode 'q=a b'
"""


def test_curl_commands(tmp_path: Path) -> None:
    path = tmp_path / "commands.sh"
    path.write_text(CHROME_CURL)
    get, post, put, search = good(records_of(path))
    assert get.method == "GET" and get.url == "http://127.0.0.1:8080/api/items?page=2"
    headers = dict(get.headers)
    assert "Connection" not in headers and headers["Cookie"] == "session=abc; theme=dark"
    assert headers["User-Agent"].startswith("Mozilla/5.0") and get.line == 1
    assert (post.method, post.body, post.line) == ("POST", b'{"name":"it\'s"}', 8)
    assert (put.method, put.body) == ("PUT", b"a=1&b=2")
    assert dict(put.headers)["Content-Type"] == "application/x-www-form-urlencoded"
    assert (search.method, search.url) == ("GET", "http://127.0.0.1:8080/search?q=a+b")


def test_bad_curl_commands(tmp_path: Path) -> None:
    path = tmp_path / "bad.curl"
    path.write_text("curl -H 'no colon' http://h/\nwget http://h/\ncurl -X\ncurl 'unclosed\n")
    problems = [str(i) for i in records_of(path)]
    assert problems == [
        f"{path}:1: -H 'no colon' is not 'Name: value'",
        f"{path}:2: not a curl command: 'wget http://h/'",
        f"{path}:3: -X needs a value",
        f"{path}:4: not a shell command line: No closing quotation",
    ]


# --- HAR ----------------------------------------------------------------------------------------


def har_entry(method: str, url: str, **more: object) -> dict[str, object]:
    request = {
        "method": method,
        "url": url,
        "httpVersion": "http/2.0",
        "headers": [
            {"name": ":authority", "value": "app.example"},
            {"name": ":method", "value": method},
            {"name": "accept", "value": "*/*"},
            {"name": "connection", "value": "keep-alive"},
        ],
        "queryString": [],
        "cookies": [],
        "headersSize": -1,
        "bodySize": 0,
    }
    request.update(more.pop("request", {}))  # type: ignore[call-overload]
    return {
        "startedDateTime": "2026-11-27T10:00:00.000Z",
        "time": 12.5,
        "request": request,
        "response": more.pop("response", {"status": 200, "headers": []}),
        "cache": {},
        "timings": {"send": 0, "wait": 10, "receive": 2},
    }


def write_har(path: Path, entries: list[dict[str, object]]) -> Path:
    doc = {"log": {"version": "1.2", "creator": {"name": "test"}, "entries": entries}}
    path.write_text(json.dumps(doc))
    return path


def test_har_entries(tmp_path: Path) -> None:
    redirect = {"status": 302, "headers": [{"name": "location", "value": "/next"}]}
    form = {"postData": {"mimeType": "application/x-www-form-urlencoded", "params": [
        {"name": "q", "value": "a b"}, {"name": "n", "value": "1"}]}}  # fmt: skip
    text = {"postData": {"mimeType": "application/json", "text": '{"a":1}'}}
    har = write_har(
        tmp_path / "session.har",
        [
            har_entry("GET", "https://app.example/r/1", response=redirect),
            har_entry("POST", "https://app.example/search", request=form),
            har_entry("POST", "https://cdn.other/x", request=text),
        ],
    )
    plain = good(records_of(har))
    assert [r.url for r in plain] == [
        "https://app.example/r/1",
        "https://app.example/search",
        "https://cdn.other/x",
    ]
    assert plain[0].headers == (("accept", "*/*"),)  # no pseudo-headers, no hop-by-hop
    assert plain[0].at == 1_795_773_600.0  # startedDateTime, 2026-11-27T10:00:00Z
    assert plain[0].expect.status == ()
    assert plain[1].body == b"q=a+b&n=1"
    assert dict(plain[2].headers)["Content-Type"] == "application/json"
    only = good(records_of(har, only_origin="https://app.example/", expect_recorded=True))
    assert len(only) == 2 and only[0].expect.status == (302,)
    assert only[0].expect.headers == (HeaderExpect("location", "equals", "/next"),)


def test_bad_har_entries_are_named_by_number(tmp_path: Path) -> None:
    broken = har_entry("GET", "https://h/")
    del broken["request"]["url"]  # type: ignore[attr-defined]
    har = write_har(tmp_path / "b.har", [har_entry("GET", "https://h/"), broken])
    items = records_of(har)
    assert str(items[1]) == f'{har}:2: HAR entry has no "url" (str)'
    not_har = tmp_path / "c.har"
    not_har.write_text('{"log": {"entries": [{"request": ')
    with pytest.raises(RecordError, match="not a valid HAR document"):
        records_of(not_har)


def test_a_har_recorded_by_a_real_browser_replays(
    nginx_factory: NginxFactory, tmp_path: Path
) -> None:
    page = BROWSER_DIR / "page.html"
    server = nginx_factory(locations=f"location = /page.html {{ alias {page}; }}")
    har = tmp_path / "chromium.har"
    record_har(f"{server.url}/page.html", har)
    everything = good(records_of(har))
    records = good(records_of(har, expect_recorded=True, only_origin=server.url))
    assert len(records) < len(everything)  # the redirect's target, off this host, is left out
    by_path = {urlsplit(r.url).path: r for r in records}
    assert set(by_path) >= {"/page.html", "/api/items", "/echo-method", "/r/c0042"}
    post = by_path["/echo-method"]
    assert (post.method, post.body) == ("POST", b'{"name":"tether"}')
    assert dict(post.headers)["Content-Type"] == "application/json"
    redirect = by_path["/r/c0042"].expect
    assert redirect.status == (302,)
    assert redirect.headers == (HeaderExpect("location", "equals", "https://example.org/r/c0042"),)
    assert all(r.at is not None for r in records)  # startedDateTime, for --pace original
    summary = tether.run(records, target=server.url)
    assert summary.requests == len(records) and summary.ok == len(records)


# --- CSV ------------------------------------------------------------------------------------------


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "method,url,status,header.Accept,expect.Location,body\n"
        "GET,/r/1,302,text/html,https://example.org/r/1,\n"
        'POST,/echo,200,,,"two\nlines"\n'
        "GET,/x,abc,,,\n"
    )
    items = records_of(path)
    first, second = good(items[:2])
    assert first.expect.status == (302,) and first.headers == (("Accept", "text/html"),)
    assert first.expect.headers == (HeaderExpect("location", "equals", "https://example.org/r/1"),)
    assert (second.body, second.line) == (b"two\nlines", 4)
    assert str(items[2]) == f"{path}:5: \"status\" must be a number, got 'abc'"
    bad = tmp_path / "bad.csv"
    bad.write_text("url,colour\n/,red\n")
    with pytest.raises(RecordError, match=r"unknown column\(s\) \['colour'\]"):
        records_of(bad)


# --- detection and convert ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        ('{"url": "/"}', "jsonl"),
        ('{"log": {"version": "1.2"', "har"),
        ('{"method": "GET", "url": "http://h/", "header": {}}', "vegeta-json"),
        ("curl 'http://h/' \\", "curl"),
        ("GET http://goku:9090/path", "vegeta"),
        ('127.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 6 "-" "x"', "log"),
        ("method,url,status", "csv"),
    ],
)
def test_detect_from_the_first_line(first_line: str, expected: str) -> None:
    assert detect("records", first_line) == expected


def test_convert_writes_native_records(tmp_path: Path) -> None:
    path = tmp_path / "commands.sh"
    path.write_text(CHROME_CURL + "wget nope\n")
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(path), "-o", str(out)]) == 2  # one bad line, reported
    converted = good(records_of(out))
    original = good(records_of(path)[:4])
    assert [(r.method, r.url, r.headers, r.body) for r in converted] == [
        (r.method, r.url, r.headers, r.body) for r in original
    ]


# --- fuzz: nothing but the project's own input error, whatever the bytes --------------------------


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FORMATS), st.binary(max_size=400))
def test_every_reader_fails_only_with_input_errors(fmt: str, data: bytes) -> None:
    try:
        for item in read(io.BufferedReader(io.BytesIO(data)), "fuzz", Reading(format=fmt)):  # type: ignore[arg-type]
            assert isinstance(item, Record | RecordError)
    except InputError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["log", "vegeta", "curl", "csv", "vegeta-json"]),
    st.lists(
        st.sampled_from(
            [
                "GET http://h/ HTTP/1.1",
                'curl -H "a: b" http://h/',
                "curl -H",
                "curl --data",
                '{"method": "GET", "header": {"a": 1}}',
                "@",
                "X: y",
                '"',
                "$'\\x'",
                "url,method",
                "/,GET",
                '{"url": 1}',
                '1.2.3.4 - - [x] "GET / HTTP/1.1" 200 1',
                "\\",
                "",
            ]
        ),
        max_size=8,
    ),
)
def test_readers_survive_plausible_junk(fmt: str, lines: list[str]) -> None:
    data = "\n".join(lines).encode()
    try:
        for item in read(io.BufferedReader(io.BytesIO(data)), "fuzz", Reading(format=fmt)):  # type: ignore[arg-type]
            assert isinstance(item, Record | RecordError)
    except InputError:
        pass


def test_har_and_curl_framing_is_the_recordings_and_is_dropped_as_the_readme_says(
    tmp_path: Path,
) -> None:
    # A native record's own Transfer-Encoding is refused; a HAR's or a copied curl command's
    # described the transfer that was recorded: dropped, and the replay framed by tether.
    framing = [
        {"name": "Content-Length", "value": "99"},
        {"name": "Transfer-Encoding", "value": "chunked"},
    ]
    body = {"postData": {"mimeType": "text/plain", "text": "abc"}}
    entry = har_entry("POST", "https://app.example/x", request=body)
    entry["request"]["headers"] += framing  # type: ignore[index]
    (har,) = good(records_of(write_har(tmp_path / "f.har", [entry])))
    curl = tmp_path / "f.curl"
    curl.write_text(
        "curl 'http://127.0.0.1:1/x' -H 'Transfer-Encoding: chunked' "
        "-H 'Content-Length: 99' --data-raw 'abc'\n"
    )
    (copied,) = good(records_of(curl))
    for record in (har, copied):
        names = {name.lower() for name, _ in record.headers}
        assert not names & {"content-length", "transfer-encoding"} and record.body == b"abc"
    native = tmp_path / "f.jsonl"
    native.write_text(
        json.dumps({"method": "POST", "url": "/x", "headers": {"Transfer-Encoding": "chunked"}})
        + "\n"
    )
    (given,) = good(records_of(native))
    refused = framing_problem(given.headers, given.body)  # what every send of it says
    assert refused is not None and "a Transfer-Encoding header" in refused
