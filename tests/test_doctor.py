"""tether doctor reads back nginx's keep-alive settings as configured, and tells servers that
close after errors or never keep connections alive; its hints name the settings of the server
the Server header names, and no server's when it names none."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import pytest

from helpers import on_a_terminal
from servers import (
    ConnInfo,
    NginxFactory,
    ThreadServer,
    keepalive_handler,
    read_request,
    response,
)
from tether.cli import main
from tether.doctor.explain import advice
from tether.doctor.measure import Findings
from tether.doctor.servers import SETTINGS, settings_for


def doctor(tmp_path: Path, url: str, *more: str) -> tuple[int, dict[str, object]]:
    out = tmp_path / "doctor.json"
    code = main(["doctor", url, "--json", str(out), *more])
    return code, json.loads(out.read_text())


def test_nginx_settings_are_measured(nginx_factory: NginxFactory, tmp_path: Path) -> None:
    server = nginx_factory(
        server="keepalive_requests 10; keepalive_timeout 1s;",
        locations="location /tether-doctor- { return 404; }",  # "/" answers any other path
    )
    code, doc = doctor(tmp_path, f"{server.url}/", "--max-idle-wait", "10")
    assert code == 0 and doc["keep_alive"] is True
    assert doc["requests_per_connection"] == 10 and doc["request_limit_reached"] is False
    # Never below the server's 1 s; above it only by how late a busy machine looks.
    assert isinstance(doc["idle_timeout_s"], float) and 0.9 <= doc["idle_timeout_s"] <= 5
    assert doc["error_status"] == 404 and doc["closes_after_error"] is False
    said = " ".join(str(s) for s in doc["advice"])  # type: ignore[attr-defined]
    assert "closes a connection after 10 requests (nginx: keepalive_requests)" in said
    assert "(nginx: keepalive_timeout)" in said and doc["server_software"] == "nginx"
    assert "Set the client's idle timeout below that" in said


def test_a_limit_beyond_the_servers_is_said(nginx_factory: NginxFactory, tmp_path: Path) -> None:
    server = nginx_factory(server="keepalive_requests 1000; keepalive_timeout 30s;")
    code, doc = doctor(tmp_path, f"{server.url}/", "--max-requests", "20", "--max-idle-wait", "0.3")
    assert (
        code == 0 and doc["requests_per_connection"] == 20 and doc["request_limit_reached"] is True
    )
    assert doc["idle_timeout_s"] is None and doc["idle_wait_s"] == 0.3


def test_a_connection_never_closed_carried_more_than_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The probe sends one request past --max-requests on its connection: a connection that
    # answered all of them did carry more than the limit (a server closing after exactly the
    # limit is told apart from one carrying more).
    with ThreadServer(keepalive_handler()) as server:
        code, doc = doctor(
            tmp_path, f"{server.url}/", "--max-requests", "5", "--max-idle-wait", "0.2"
        )
        carried = max(conn.requests for conn in server.conns)
    said = " ".join(capsys.readouterr().out.split())
    assert code == 0 and carried == 6  # 5, and one more, all answered on one connection
    assert doc["requests_per_connection"] == 5 and doc["request_limit_reached"] is True
    assert "One connection carried more than 5 requests (the limit asked for)." in said
    assert "requests per connection more than 5 " in said


def test_no_keep_alive(nginx_factory: NginxFactory, tmp_path: Path) -> None:
    server = nginx_factory(server="keepalive_timeout 0;")
    code, doc = doctor(tmp_path, f"{server.url}/")
    assert code == 0 and doc["keep_alive"] is False
    assert "closes every connection after one response" in str(doc["advice"])


def test_a_server_that_closes_after_an_error(tmp_path: Path) -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            if req.target == "/":
                writer.write(response(200, b"ok"))
                continue
            writer.write(response(404, b"no", [("Connection", "close")]))
            await writer.drain()
            return

    with ThreadServer(handler) as server:
        code, doc = doctor(
            tmp_path, f"{server.url}/", "--max-requests", "5", "--max-idle-wait", "0.2"
        )
    assert code == 0 and doc["error_status"] == 404 and doc["closes_after_error"] is True
    assert "closes the connection after an error response (404)" in str(doc["advice"])


def test_an_unreachable_server_fails_plainly(tmp_path: Path) -> None:
    code, doc = doctor(tmp_path, "http://127.0.0.1:1/")
    assert code == 1 and "could not be asked" in str(doc["advice"])


def test_advice_for_a_long_idle_timeout() -> None:
    found = Findings("http://h/", status=200, keep_alive=True, idle_timeout_s=75.0)
    assert "below that (about 74 s" in advice(found)[1]


def closing_after(limit: int, headers: tuple[tuple[str, str], ...]) -> ThreadServer:
    """Keep-alive for ``limit`` requests a connection, the last answered with Connection:
    close (as Apache's MaxKeepAliveRequests does), every response with ``headers``."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (await read_request(reader)) is not None:
            last = conn.count_request() >= limit
            close = [("Connection", "close")] if last else []
            writer.write(response(200, b"ok", [*headers, *close]))
            await writer.drain()
            if last:
                return

    return ThreadServer(handler)


def doctor_advice(tmp_path: Path, server: ThreadServer) -> tuple[dict[str, object], str]:
    with server:
        code, doc = doctor(
            tmp_path, f"{server.url}/", "--max-requests", "20", "--max-idle-wait", "0.3"
        )
    assert code == 0 and doc["requests_per_connection"] == 5
    return doc, " ".join(str(s) for s in doc["advice"])  # type: ignore[attr-defined]


def test_the_hint_names_apaches_settings(tmp_path: Path) -> None:
    doc, said = doctor_advice(tmp_path, closing_after(5, (("Server", "Apache/2.4.62"),)))
    assert "after 5 requests (Apache httpd: MaxKeepAliveRequests)" in said
    assert "(Apache httpd: KeepAliveTimeout)" in said
    assert "keepalive_requests" not in said and "nginx" not in said
    assert doc["server_header"] == "Apache/2.4.62" and doc["server_software"] == "Apache httpd"


def test_no_server_header_names_no_servers_setting(tmp_path: Path) -> None:
    doc, said = doctor_advice(tmp_path, closing_after(5, ()))
    assert "The server closes a connection after 5 requests:" in said
    named = {s.name for s in SETTINGS.values()}
    named |= {str(s.requests_per_connection) for s in SETTINGS.values()}
    named |= {str(s.idle_timeout) for s in SETTINGS.values()}
    assert [name for name in named if name in said] == []
    assert doc["server_header"] is None and doc["server_software"] is None


def test_an_unknown_server_is_not_guessed(tmp_path: Path) -> None:
    doc, said = doctor_advice(tmp_path, closing_after(5, (("Server", "cloudflare"),)))
    assert doc["server_header"] == "cloudflare" and doc["server_software"] is None
    assert "The server closes a connection after 5 requests:" in said


def test_server_headers_name_their_product() -> None:
    assert settings_for("Apache/2.4.62 (Debian) OpenSSL/3.0.13") == SETTINGS["apache"]
    assert settings_for("nginx/1.22.1") == SETTINGS["nginx"]
    assert settings_for("Python/3.11 aiohttp/3.9.1") == SETTINGS["aiohttp"]
    assert settings_for("Apache-Coyote/1.1") == SETTINGS["apache-coyote"]
    assert settings_for("gunicorn") == SETTINGS["gunicorn"]
    # A comment is not a product, and an unknown product is no guess.
    assert settings_for("MyProxy (nginx inside)") is None
    assert settings_for("cloudflare") is None and settings_for(None) is None


# --- the probes shown as they run ----------------------------------------------------------------

DONE = re.compile(r"^doctor: (.+): done in (\d+\.\d) s$")


def test_each_probe_is_shown_as_it_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with ThreadServer(keepalive_handler()) as server:
        argv = ["doctor", f"{server.url}/", "--max-requests", "5", "--max-idle-wait", "0.5"]
        code = main([*argv, "--json", "-"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["keep_alive"] is True  # stdout: the JSON alone
    lines = err.splitlines()
    assert [line for line in lines if "started" in line] == [
        "doctor: keep-alive: started (limit 2 requests)",
        "doctor: requests per connection: started (limit 5 requests)",
        "doctor: idle timeout: started (limit 0.5 s)",  # beside the others
        "doctor: after an error: started (limit 2 requests)",
    ]
    done = {m.group(1): float(m.group(2)) for m in map(DONE.match, lines) if m}
    assert sorted(done) == [
        "after an error",
        "idle timeout",
        "keep-alive",
        "requests per connection",
    ]
    assert done["idle timeout"] >= 0.5 and len(lines) == 8


def test_a_live_line_on_a_terminal() -> None:
    with ThreadServer(keepalive_handler()) as server:
        argv = ["doctor", f"{server.url}/", "--max-requests", "5", "--max-idle-wait", "1.5"]
        terminal = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
        shown, report = on_a_terminal(argv, terminal)
    # One line redrawn in place, with each probe running, its elapsed seconds and its limit.
    assert re.search(r"\rdoctor: idle timeout 1 s \(limit 1.5 s\)", shown.replace("\x1b[2K", ""))
    assert "started" not in shown and "done in" not in shown
    assert "keep-alive" in report and "more than 5" in report
