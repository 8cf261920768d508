"""Flows against the tests' own service with sessions (tests/flowservice.py): a login that
issues a token and a cookie, then requests that the service answers only with both from the
same login. Every figure is held to the service's own count, on the compiled path and the
Python one (TETHER_PURE_PYTHON runs this file too)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowservice import LOGIN, ME, Sessions, session_server
from servers import ThreadServer, dask_cluster
from tether.cli import main
from tether.engine import compiled
from tether.records import Reading, file_source
from tether.run.options import RunOptions
from tether.run.pacer import Pacer
from tether.run.session import run

PATHS = [pytest.param(True, id="compiled"), pytest.param(False, id="python")]


def lines(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def service() -> Iterator[tuple[ThreadServer, Sessions]]:
    server, sessions = session_server()
    with server:
        yield server, sessions


def flow_file(tmp_path: Path, *records: dict[str, Any]) -> Path:
    path = tmp_path / "flow.jsonl"
    path.write_text(lines(*records))
    return path


def run_flow(path: Path, url: str, on_compiled: bool = True, **asked: Any) -> Any:
    return run(
        file_source(str(path), Reading()), RunOptions(target=url, compiled=on_compiled, **asked)
    )


def engine_of(on_compiled: bool) -> str:
    return "compiled" if on_compiled and compiled.native is not None else "python"


@pytest.mark.parametrize("on_compiled", PATHS)
def test_four_users_log_in_and_use_their_token_and_cookie(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool
) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN, ME, ME, ME)
    summary = run_flow(path, server.url, on_compiled, concurrency=4, requests=400)
    doc = summary.to_dict()
    assert (doc["requests"], doc["ok"], doc["errors"], doc["mismatches"]) == (400, 400, 0, 0)
    assert sessions.counts == {"login": 100, "me": 300}
    assert server.accepted == 4
    assert doc["connections"]["opened"] == 4
    assert doc["engine"] == engine_of(on_compiled)
    steps = ["POST /login", "GET /me (line 2)", "GET /me (line 3)", "GET /me (line 4)"]
    assert doc["flows"] == {"main": {"completed": 100, "failed": 0, "cut": 0, "steps": steps}}
    assert [g["requests"] for g in doc["groups"]] == [100] * 4


def test_the_engine_says_a_flow_that_only_python_can_send(
    tmp_path: Path, service: tuple[ThreadServer, Sessions]
) -> None:
    # Every host is a variable: no step's bytes can be spliced, whatever the build.
    server, sessions = service
    base = tmp_path / "base.csv"
    base.write_text(f"base\n{server.url}\n")
    login = {**LOGIN, "url": "{{base}}/login"}
    path = flow_file(tmp_path, login, {**ME, "url": "{{base}}/me"})
    from tether.flow.data import read

    summary = run_flow(path, server.url, requests=4, data=read(str(base)))
    assert (summary.ok, sessions.counts) == (4, {"login": 2, "me": 2})
    assert summary.to_dict()["engine"] == "python"


@pytest.mark.parametrize("on_compiled", PATHS)
def test_an_arrival_starts_one_iteration(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool
) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN, ME, ME, ME)
    summary = run_flow(path, server.url, on_compiled, rate=Pacer(400, 400, 5.0), iterations=100)
    doc = summary.to_dict()
    assert (doc["requests"], doc["ok"]) == (400, 400)
    assert sessions.counts == {"login": 100, "me": 300}
    assert doc["flows"]["main"]["completed"] == 100


def test_workers_split_the_users_never_an_iteration(
    tmp_path: Path, service: tuple[ThreadServer, Sessions]
) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN, ME, ME, ME)
    out = tmp_path / "s.json"
    args = ["run", str(path), "-t", server.url, "-c", "4", "-n", "400", "-w", "2", "-q"]
    assert main([*args, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert (doc["requests"], doc["ok"]) == (400, 400)
    assert sessions.counts == {"login": 100, "me": 300}
    assert server.accepted == 4
    assert doc["flows"]["main"]["completed"] == 100


def test_workers_split_the_iterations_asked_for(
    tmp_path: Path, service: tuple[ThreadServer, Sessions]
) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN, ME)
    out = tmp_path / "s.json"
    args = ["run", str(path), "-t", server.url, "-c", "2", "--iterations", "7", "-w", "2"]
    assert main([*args, "-q", "--json", str(out)]) == 0
    assert sessions.counts == {"login": 7, "me": 7}
    assert json.loads(out.read_text())["flows"]["main"]["completed"] == 7


def users_file(tmp_path: Path, n: int) -> Path:
    data = tmp_path / "users.csv"
    data.write_text("user,password\n" + "".join(f"u{i},p{i}\n" for i in range(n)))
    return data


LOGIN_AS = {**LOGIN, "body": '{"user": "{{user}}", "password": "{{password}}"}'}


@pytest.mark.parametrize("workers", [1, 2])
def test_unique_data_rows_are_each_used_once(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], workers: int
) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN_AS, ME)
    data = users_file(tmp_path, 10)
    out = tmp_path / "s.json"
    args = ["run", str(path), "-t", server.url, "-c", "4", "-d", "20s", "-q", "--json", str(out)]
    args += ["--data", str(data), "--data-mode", "unique", "-w", str(workers)]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert sessions.users == {f"u{i}": 1 for i in range(10)}
    assert (doc["requests"], doc["ok"]) == (20, 20)
    assert doc["flows"]["main"]["completed"] == 10


@pytest.mark.parametrize("on_compiled", PATHS)
def test_data_rows_cycle_in_the_order_read(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool
) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN_AS)
    from tether.flow.data import read

    summary = run_flow(
        path, server.url, on_compiled, requests=7, data=read(str(users_file(tmp_path, 3)))
    )
    assert summary.ok == 7
    assert sessions.users == {"u0": 3, "u1": 2, "u2": 2}


def test_a_flow_on_a_dask_cluster(tmp_path: Path, service: tuple[ThreadServer, Sessions]) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN_AS, ME, ME, ME)
    data = users_file(tmp_path, 100)
    out = tmp_path / "s.json"
    with dask_cluster(tmp_path, workers=2) as cluster:
        args = ["run", str(path), "-t", server.url, "-c", "4", "-n", "400", "-q"]
        args += ["--cluster", cluster.address, "--json", str(out)]
        args += ["--data", str(data), "--data-mode", "unique"]
        assert main(args) == 0
    doc = json.loads(out.read_text())
    assert (doc["requests"], doc["ok"]) == (400, 400)
    assert sessions.counts == {"login": 100, "me": 300}
    assert sessions.users == {f"u{i}": 1 for i in range(100)}
    assert server.accepted == 4


@pytest.mark.parametrize("on_compiled", PATHS)
def test_without_the_jar_the_service_refuses(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool
) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN, ME)
    summary = run_flow(path, server.url, on_compiled, requests=4, no_cookies=True)
    assert (summary.ok, summary.mismatches) == (2, 2)
    assert sessions.counts == {"login": 2, "refused": 2}
    assert summary.to_dict()["flows"]["main"]["failed"] == 2


@pytest.mark.parametrize("on_compiled", PATHS)
def test_a_cookie_with_attributes_joins_the_jar_beside_the_plain_one(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool
) -> None:
    # The login's cookie is of the plain kind (the compiled path keeps it), /prefs's has a
    # Max-Age and a Domain (the Python jar's): /both needs the two, and the token, of one
    # iteration; /me then needs the login's again.
    server, sessions = service
    both = {**ME, "url": "/both"}
    path = flow_file(tmp_path, LOGIN, {"url": "/prefs", "expect": {"status": 200}}, both, ME)
    summary = run_flow(path, server.url, on_compiled, concurrency=2, requests=80)
    assert (summary.ok, summary.mismatches) == (80, 0)
    assert sessions.counts == {"login": 20, "prefs": 20, "both": 20, "me": 20}
    assert summary.to_dict()["flows"]["main"]["completed"] == 20


@pytest.mark.parametrize("on_compiled", PATHS)
def test_an_iteration_whose_last_step_was_in_flight_at_the_end_is_whole(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool
) -> None:
    # A flow of one step: every request sent is an iteration, the last ones too.
    server, sessions = service
    path = flow_file(tmp_path, LOGIN)
    summary = run_flow(path, server.url, on_compiled, concurrency=2, duration=0.5)
    doc = summary.to_dict()
    assert doc["flows"]["main"]["completed"] == doc["requests"] == sessions.counts["login"]


@pytest.mark.parametrize("on_compiled", PATHS)
def test_what_a_record_creates_is_read_back_by_the_id_it_was_given(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool
) -> None:
    server, sessions = service
    create = {
        "method": "POST",
        "url": "/items",
        "headers": {"Authorization": "Bearer {{token}}"},
        "body": "item of {{$worker}} in {{$iteration}}",
        "expect": {"status": 201, "headers": {"Location": "/items/{{id}}"}},
        "capture": {"id": {"json": "$.id"}, "where": {"header": "Location"}},
    }
    read_back = {
        "url": "{{where}}",
        "expect": {"status": 200, "body": {"equals": "item of {{$worker}} in {{$iteration}}"}},
    }
    path = flow_file(tmp_path, LOGIN, create, read_back)
    summary = run_flow(path, server.url, on_compiled, concurrency=3, requests=30)
    assert (summary.requests, summary.ok) == (30, 30), summary.to_dict()["mismatch_examples"]
    assert sessions.counts == {"login": 10, "created": 10, "read": 10}
    made = sorted(sessions.items.values(), key=lambda text: int(text.split()[-1]))
    assert [text.split()[-1] for text in made] == [str(i) for i in range(10)]
    assert {text.split()[2] for text in made} == {"0", "1", "2"}


def miss_server() -> ThreadServer:
    """Logins that give no token to every other caller."""
    from servers import read_request, response

    count = [0]

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Any
    ) -> None:
        while (req := await read_request(reader)) is not None:
            conn.count_request()
            if req.target == "/login":
                count[0] += 1
                doc = {"token": "t"} if count[0] % 2 else {"nothing": 1}
                writer.write(response(200, json.dumps(doc).encode()))
            else:
                ok = req.headers.get("authorization") == "Bearer t"
                writer.write(response(200 if ok else 401, b"x"))
            await writer.drain()

    return ThreadServer(handler)


@pytest.mark.parametrize("on_compiled", PATHS)
@pytest.mark.parametrize("mode", ["skip-flow", "continue"])
def test_a_capture_that_finds_nothing_fails_its_request(
    tmp_path: Path, on_compiled: bool, mode: str
) -> None:
    login = {"method": "POST", "url": "/login", "capture": {"token": {"json": "$.token"}}}
    path = flow_file(tmp_path, login, ME, ME)
    with miss_server() as server:
        summary = run_flow(path, server.url, on_compiled, iterations=4, on_capture_miss=mode)
    doc = summary.to_dict()
    assert doc["error_kinds"]["capture"] == 2
    example = next(e for e in doc["error_examples"] if e["kind"] == "capture")
    assert example["error"] == (
        f"capture token: json $.token found nothing in the response to {path}:1"
    )
    flows = doc["flows"]["main"]
    if mode == "skip-flow":
        assert doc["requests"] == 2 * 3 + 2  # the iterations whose login missed stop there
        assert (flows["completed"], flows["failed"], flows["cut"]) == (2, 2, 2)
    else:
        assert doc["requests"] == 12
        assert doc["error_kinds"]["variable"] == 4  # {{token}} has no value: not sent
        assert (flows["completed"], flows["failed"], flows["cut"]) == (2, 2, 0)


def injecting_server() -> ThreadServer:
    """A login whose token would split the next request's head."""
    from servers import read_request, response

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Any
    ) -> None:
        while (req := await read_request(reader)) is not None:
            conn.count_request()
            doc = {"token": "t\r\nX-Injected: yes"} if req.target == "/login" else {}
            writer.write(response(200, json.dumps(doc).encode()))
            await writer.drain()

    return ThreadServer(handler)


@pytest.mark.parametrize("on_compiled", PATHS)
def test_a_captured_value_cannot_inject_a_header(tmp_path: Path, on_compiled: bool) -> None:
    login = {"method": "POST", "url": "/login", "capture": {"token": {"json": "$.token"}}}
    path = flow_file(tmp_path, login, ME)
    with injecting_server() as server:
        summary = run_flow(path, server.url, on_compiled, requests=2)
        assert server.requests == 1  # the login only: the second was never sent
    example = summary.to_dict()["error_examples"][0]
    assert example["kind"] == "variable"
    assert "header Authorization" in example["error"] and "CR, LF" in example["error"]
    assert example["error"].endswith(f"({path}:2)")


@pytest.mark.parametrize("on_compiled", PATHS)
def test_flow_weights_mix_the_flows_exactly(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool
) -> None:
    server, sessions = service
    a = {**LOGIN, "flow": "a"}
    b = {"method": "POST", "url": "/login", "body": '{"user": "b"}', "flow": "b"}
    path = flow_file(tmp_path, a, {**ME, "flow": "a"}, b)
    summary = run_flow(
        path, server.url, on_compiled, iterations=40, flow_weights=(("a", 3), ("b", 1))
    )
    doc = summary.to_dict()
    assert sessions.users == {"a": 30, "b": 10}
    assert doc["flows"]["a"]["completed"] == 30 and doc["flows"]["b"]["completed"] == 10


def test_results_lines_say_the_user_and_iteration(
    tmp_path: Path, service: tuple[ThreadServer, Sessions]
) -> None:
    server, _ = service
    path = flow_file(tmp_path, LOGIN, ME)
    results = tmp_path / "r.jsonl"
    args = ["run", str(path), "-t", server.url, "-c", "2", "-n", "8", "-q"]
    assert main([*args, "--results", str(results)]) == 0
    seen = [json.loads(line) for line in results.read_text().splitlines()[:-1]]
    assert sorted({s["iteration"] for s in seen}) == [0, 1, 2, 3]
    assert {s["worker"] for s in seen} == {0, 1}
    for iteration in range(4):
        lines_of = [s for s in seen if s["iteration"] == iteration]
        assert [s["line"] for s in lines_of] == [1, 2]
        assert len({s["worker"] for s in lines_of}) == 1


@pytest.mark.parametrize(
    ("records", "data", "said"),
    [
        (
            [{"url": "/x", "capture": {"t": {}}}],
            None,
            'flow.jsonl:1: "capture.t" must name one source',
        ),
        ([{"url": "/x/{{t"}], None, "flow.jsonl:1: \"url\": '{{' at position 3 has no '}}'"),
        (
            [{"url": "/x", "headers": {"A": "{{nope}}"}}],
            None,
            "flow.jsonl:1: {{nope}} has no value before this record of flow 'main': no "
            "record captures it and no --data column names it",
        ),
        (
            [
                {"url": "/x", "headers": {"A": "{{t}}"}},
                {"url": "/y", "capture": {"t": {"status": True}}},
            ],
            None,
            "flow.jsonl:1: {{t}} has no value before this record of flow 'main': it is "
            "captured only later (line 2)",
        ),
        ([{"url": "/x/{{user}}"}], "", "users.csv:1: no header row"),
    ],
)
def test_bad_input_is_a_sentence_naming_the_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    records: list[dict[str, Any]],
    data: str | None,
    said: str,
) -> None:
    path = flow_file(tmp_path, *records)
    args = ["run", str(path), "-t", "http://127.0.0.1:9", "-n", "1"]
    if data is not None:
        (tmp_path / "users.csv").write_text(data)
        args += ["--data", str(tmp_path / "users.csv")]
    assert main(args) == 2
    shown = capsys.readouterr()
    assert " ".join(said.split()) in " ".join((shown.out + shown.err).split())


def test_a_flow_summary_shows_each_record_in_flow_order(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = service
    path = flow_file(tmp_path, LOGIN, ME, ME)
    assert main(["run", str(path), "-t", server.url, "-n", "6"]) == 0
    shown = capsys.readouterr().out
    assert "flow main: 2 iterations completed, 0 failed" in shown
    at = [shown.index(name) for name in ("POST /login", "GET /me (line 2)", "GET /me (line 3)")]
    assert at == sorted(at)


def har_of(url: str) -> dict[str, Any]:
    """A recorded browser session: a login, then two pages sent with the cookie that
    session was given (which the service no longer knows)."""
    stale = [{"name": "Cookie", "value": "sid=recorded"}]

    def entry(method: str, path: str, headers: list[dict[str, str]], status: int) -> Any:
        request: dict[str, Any] = {"method": method, "url": url + path, "headers": headers}
        if method == "POST":
            # Recorded text is text: a "{{" in it is no variable.
            text = '{"user": "h", "note": "{{ not a variable }}"}'
            request["postData"] = {"mimeType": "application/json", "text": text}
        return {"request": request, "response": {"status": status, "headers": []}}

    return {
        "log": {
            "entries": [
                entry("POST", "/login", [], 200),
                entry("GET", "/visit", stale, 200),
                entry("GET", "/visit", stale, 200),
            ]
        }
    }


@pytest.mark.parametrize("on_compiled", PATHS)
@pytest.mark.parametrize("as_flow", [True, False])
def test_a_har_replays_as_a_flow_with_its_own_cookies(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], on_compiled: bool, as_flow: bool
) -> None:
    server, sessions = service
    har = tmp_path / "session.har"
    har.write_text(json.dumps(har_of(server.url)))
    reading = Reading(expect_recorded=True, har_flow=as_flow)
    asked = RunOptions(concurrency=2, requests=12, compiled=on_compiled)
    summary = run(file_source(str(har), reading), asked)
    if as_flow:
        assert (summary.ok, sessions.counts) == (12, {"login": 4, "visit": 8})
        assert summary.to_dict()["flows"]["har"]["completed"] == 4
    else:
        assert sessions.counts == {"login": 4, "refused": 8}
        assert summary.mismatches == 8


@pytest.mark.parametrize("results", [True, False], ids=["results", "counted"])
def test_values_captured_under_secret_names_are_masked_in_reports(
    tmp_path: Path, service: tuple[ThreadServer, Sessions], results: bool
) -> None:
    server, _ = service
    peek = {"url": "/items/{{token}}", "expect": {"status": 200}}  # 404: shown as a mismatch
    path = flow_file(tmp_path, LOGIN, peek)
    out, lines = tmp_path / "s.json", tmp_path / "r.jsonl"
    args = ["run", str(path), "-t", server.url, "-n", "2", "-q", "--json", str(out)]
    assert main([*args, *(["--results", str(lines)] if results else [])]) == 1
    doc = out.read_text()
    example = json.loads(doc)["mismatch_examples"][0]
    assert example["url"] == f"{server.url}/items/***"
    assert "tok0" not in doc and (not results or "tok0" not in lines.read_text())
    shown = tmp_path / "shown.json"
    assert main([*args[:-1], str(shown), "--show-secrets"]) == 1
    assert "/items/tok1" in shown.read_text()


def test_record_writes_a_flow_back_with_its_variables_and_captures(
    tmp_path: Path, service: tuple[ThreadServer, Sessions]
) -> None:
    server, sessions = service
    path = flow_file(tmp_path, LOGIN, ME)
    golden = tmp_path / "golden.jsonl"
    args = ["record", str(path), "-t", server.url, "-o", str(golden), "--ignore-json-path"]
    assert main([*args, "$.token"]) == 0
    written = [json.loads(line) for line in golden.read_text().splitlines()]
    assert [r["url"] for r in written] == ["/login", "/me"]
    assert written[0]["capture"] == LOGIN["capture"]
    assert written[1]["headers"] == {"Authorization": "Bearer {{token}}"}
    assert written[1]["expect"]["status"] == 200 and written[1]["expect"]["body"]["json"]
    assert main(["run", str(golden), "-t", server.url, "-c", "2", "-n", "8", "-q"]) == 0
    assert sessions.counts == {"login": 5, "me": 5}


def test_diff_runs_a_flow_with_a_user_for_each_service(tmp_path: Path) -> None:
    path = flow_file(tmp_path, LOGIN, ME, ME)
    primary, primary_counts = session_server()
    candidate, candidate_counts = session_server()
    out = tmp_path / "d.json"
    with primary, candidate:
        args = ["diff", str(path), "--primary", primary.url, "--candidate", candidate.url]
        assert main([*args, "--json", str(out)]) == 0
    assert primary_counts.counts == candidate_counts.counts == {"login": 1, "me": 2}
    assert json.loads(out.read_text())["records"] == 3


def test_convert_keeps_captures_and_flows(tmp_path: Path) -> None:
    path = flow_file(tmp_path, LOGIN, {**ME, "flow": "main"})
    out = tmp_path / "out.jsonl"
    assert main(["convert", str(path), "-o", str(out)]) == 0
    back = [json.loads(line) for line in out.read_text().splitlines()]
    assert back[0]["capture"] == LOGIN["capture"]
    assert back[1]["flow"] == "main" and back[1]["headers"] == ME["headers"]


def closing_service() -> tuple[ThreadServer, Sessions]:
    """The session service, closing its connection after every response."""
    from servers import ConnInfo, read_request

    sessions = Sessions()

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        req = await read_request(reader)
        if req is None:
            return
        conn.count_request()
        answer = sessions.answer(req.method, req.target, req.headers, req.body)
        head, _, body = answer.partition(b"\r\n\r\n")
        writer.write(head + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()

    return ThreadServer(handler), sessions


@pytest.mark.parametrize("on_compiled", PATHS)
def test_a_flow_goes_on_when_every_connection_closes(tmp_path: Path, on_compiled: bool) -> None:
    # Each step then goes out on a new connection: the user goes on through the send path.
    path = flow_file(tmp_path, LOGIN, ME, ME)
    server, sessions = closing_service()
    with server:
        summary = run_flow(path, server.url, on_compiled, concurrency=2, requests=12)
    assert (summary.requests, summary.ok) == (12, 12)
    assert sessions.counts == {"login": 4, "me": 8}
    assert server.accepted == 12
