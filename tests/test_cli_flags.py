"""The run command's flags reach the engine: every mapped flag parsed through the real flag
table into the options the engine gets, field by field; then what some of them do, against
real servers on 127.0.0.1 (``--max-idle``, ``--timeout``, ``--watch-interval``), and the
commands and flags no other test runs (``serve-demo``, ``--version``, ``--cluster-workers``);
and each default of the command line is its options dataclass's."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import importlib.metadata
import inspect
import itertools
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import pytest

import tether
from helpers import write_records
from servers import ConnInfo, NginxServer, ThreadServer, free_port, keepalive_handler, read_request
from tether.cli import main
from tether.commands.clickflags import parse_size
from tether.commands.diff import diff_command
from tether.commands.doctor import doctor_command
from tether.commands.record import record_command
from tether.commands.run import Outputs, RunCommand, client_options, run_command, run_options
from tether.doctor.measure import examine
from tether.engine.options import ClientOptions, default_of
from tether.flow.data import DataRows
from tether.gates import Gates
from tether.records import Reading
from tether.run.options import RunOptions
from tether.run.pacer import OriginalPace, Pacer
from tether.secrets import SECRET_HEADERS
from tether.watch import parse_source

# --- every mapped flag, through the real flag table ----------------------------------------


def parsed(*flags: str) -> dict[str, Any]:
    """The run command's options as click hands them to it (records left out: what
    ``command_options`` types), from ``tether run records.jsonl FLAGS``."""
    ctx = run_command.make_context("run", ["records.jsonl", *flags])
    params = dict(ctx.params)
    params.pop("records")
    return params


def changed(before: object, after: object) -> dict[str, Any]:
    """The fields of two instances of one dataclass that differ, with their new values."""
    return {
        f.name: getattr(after, f.name)
        for f in dataclasses.fields(before)  # type: ignore[arg-type]
        if getattr(before, f.name) != getattr(after, f.name)
    }


# A distinct value per flag, so that two flags swapped, or one flag landing on the wrong
# field, shows as a wrong value rather than a right one by chance.
CLIENT_FLAGS = [
    "--max-idle-per-host", "3", "--max-idle", "5", "--max-conns-per-host", "7",
    "--idle-timeout", "11", "--connect-timeout", "13", "--response-header-timeout", "17",
    "--timeout", "19", "--follow-redirects", "23", "--drain-limit", "29k",
    "--drain-timeout", "31", "--max-response-header-bytes", "67k", "--max-body", "71k",
    "--disable-keep-alives", "--insecure", "--leak", "--http2", "--http2-prior-knowledge",
]  # fmt: skip
RUN_FLAGS = [
    "--target", "http://127.0.0.1:9", "--concurrency", "37", "--requests", "41",
    "--duration", "43", "--strict", "--rate", "47:97", "--max-inflight", "53",
    "--watch", "port:59", "--watch", "nginx:http://127.0.0.1:61/status",
    "--watch-interval", "0.67", "--redact-header", "X-Api-Key", "--iterations", "73",
    "--on-capture-miss", "continue", "--no-cookies", "--flow-weights", "a=79,b=83",
    "--data-mode", "unique",
]  # fmt: skip
BOOLEAN_CLIENT_FLAGS = [
    ("--disable-keep-alives", "disable_keep_alives"),
    ("--insecure", "insecure"),
    ("-k", "insecure"),
    ("--leak", "leak"),
    ("--http2", "http2"),
    ("--http2-prior-knowledge", "http2_prior_knowledge"),
]


def test_every_mapped_flag_reaches_the_engine_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no tether.toml or pyproject.toml here to supply defaults
    cacert = tmp_path / "ca.pem"
    cacert.write_text("not read while parsing\n")
    users = tmp_path / "users.csv"
    users.write_text("user\nu89\n")
    defaults = parsed()
    opts = parsed(*CLIENT_FLAGS, "--cacert", str(cacert), *RUN_FLAGS, "--data", str(users))
    # Without flags the engine gets its own defaults (the ones the README's table lists).
    assert client_options(defaults) == ClientOptions()
    assert run_options(defaults) == RunOptions()

    client_changed = changed(client_options(defaults), client_options(opts))
    assert client_changed == {
        "max_idle_per_host": 3,
        "max_idle": 5,
        "max_conns_per_host": 7,
        "idle_timeout": 11.0,
        "connect_timeout": 13.0,
        "response_header_timeout": 17.0,
        "timeout": 19.0,
        "follow_redirects": 23,
        "drain_limit": 29 * 1024,
        "drain_timeout": 31.0,
        "max_response_header_bytes": 67 * 1024,
        "max_body": 71 * 1024,
        "disable_keep_alives": True,
        "insecure": True,
        "cacert": str(cacert),
        "leak": True,
        "http2": True,
        "http2_prior_knowledge": True,
    }
    # Every setting of the engine has a flag but these; a new one needs a line above.
    unflagged = {"user_agent", "settings_timeout"}
    assert client_changed.keys() == {f.name for f in dataclasses.fields(ClientOptions)} - unflagged

    run_changed = changed(run_options(defaults), run_options(opts))
    assert run_changed == {
        "target": "http://127.0.0.1:9",
        "concurrency": 37,
        "requests": 41,
        "duration": 43.0,
        "strict": True,
        "rate": Pacer(47.0, 97.0, 43.0),
        "max_inflight": 53,
        "watch": (parse_source("port:59"), parse_source("nginx:http://127.0.0.1:61/status")),
        "watch_interval": 0.67,
        "secret": SECRET_HEADERS | {"x-api-key"},
        "iterations": 73,
        "on_capture_miss": "continue",
        "no_cookies": True,
        "flow_weights": (("a", 79), ("b", 83)),
        "data": DataRows(str(users), ("user",), (("u89",),)),
        "data_mode": "unique",
    }
    # share: one process's part of a split run, set by the split, not a flag;
    # check_in_full: for tests of the fast path
    unflagged = {"share", "check_in_full", "compiled"}
    assert run_changed.keys() == {f.name for f in dataclasses.fields(RunOptions)} - unflagged

    # The flags that cannot share a parse with the ones above.
    paced = run_options(parsed("--pace", "originalx2", "--duration", "43"))
    assert changed(run_options(defaults), paced) == {
        "rate": OriginalPace(2.0, 43.0),
        "duration": 43.0,
    }
    shown = run_options(parsed("--show-secrets", "--redact-header", "X-Api-Key"))
    assert changed(run_options(defaults), shown) == {"secret": frozenset()}
    # Flags that set True cannot be told apart by their values: one at a time, each must
    # set its own field and nothing else.
    for flag, field in BOOLEAN_CLIENT_FLAGS:
        alone = client_options(parsed(flag))
        assert changed(client_options(defaults), alone) == {field: True}, flag
    assert changed(run_options(defaults), run_options(parsed("--strict"))) == {"strict": True}

    # Not engine options: execute() reads these itself to choose how the run is spread.
    spread = parsed("--workers", "71", "--cluster", "tcp://127.0.0.1:73", "--cluster-workers", "79")
    spreading = ("workers", "cluster", "cluster_workers")
    assert [spread[name] for name in spreading] == [71, "tcp://127.0.0.1:73", 79]
    assert [defaults[name] for name in spreading] == [1, None, None]


# --- each default written once, on its dataclass ------------------------------------------


def flag_defaults(command: click.Command, *required: str) -> dict[str, Any]:
    """Each of ``command``'s parameters by name, with the value the command gets when the
    flag is not given (``required``: the arguments and options it cannot go without)."""
    return dict(command.make_context(command.name, list(required)).params)


def field_defaults(options: type[Any], flags: dict[str, str] | None = None) -> dict[str, Any]:
    """``options``' fields that have a default, by the name of the flag's parameter
    (``flags`` maps a field to it where the two names differ)."""
    flags = flags or {}
    return {
        flags.get(f.name, f.name): default_of(options, f.name)
        for f in dataclasses.fields(options)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def test_each_default_of_the_command_line_is_its_dataclasses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A default changed in one place only (the dataclass, or a flag given a literal again)
    # fails here: every field with a default has a flag defaulting to the same value, or is
    # named below as having none.
    monkeypatch.chdir(tmp_path)  # no tether.toml or pyproject.toml here to supply defaults
    run = flag_defaults(run_command, "records.jsonl")
    unflagged: dict[type[Any], set[str]] = {
        ClientOptions: {"user_agent", "settings_timeout"},
        # secret: from --redact-header and --show-secrets (the test above checks it);
        # share: set by a split run; check_in_full: for tests of the fast path
        RunOptions: {"secret", "share", "check_in_full", "compiled"},
        # made of the URL flags, for a URL in place of the file; and -H, with a file
        Reading: {"url_request", "set_headers"},
        Outputs: {"verbosity"},  # made of --quiet and --silent (tests/test_quiet.py)
        Gates: set(),
        RunCommand: set(),
    }
    renamed = {Reading: {"format": "records_format"}, RunCommand: {"thresholds": "threshold"}}
    checked = 0
    for options, left_out in unflagged.items():
        for name, default in field_defaults(options, renamed.get(options)).items():
            if name in left_out:
                continue
            assert name in run, f"{options.__name__}.{name}: no flag, and not listed as none"
            assert run[name] == default, f"--{name.replace('_', '-')}: {options.__name__}"
            checked += 1
    assert checked >= 30  # the run command's flags, not a mapping gone empty
    # The defaults the help gives in words, as the help shows them.
    ctx = run_command.make_context("run", ["records.jsonl"])
    for size in ("drain_limit", "max_response_header_bytes", "max_body"):
        (option,) = [p for p in run_command.params if p.name == size]
        shown = option.get_help_record(ctx)
        assert shown is not None
        in_words = shown[1].split("[default: ")[1].split("]")[0]
        assert parse_size(in_words) == default_of(ClientOptions, size)

    # The defaults of the other commands' flags, and of tether.run's keywords.
    record = flag_defaults(record_command, "r.jsonl", "-o", "golden.jsonl")
    diff = flag_defaults(diff_command, "r.jsonl", "--primary", "a", "--candidate", "b")
    for flags in (record, diff):
        assert flags["concurrency"] == default_of(RunOptions, "concurrency")
        assert flags["timeout"] == default_of(ClientOptions, "timeout")
    assert record["target"] == default_of(RunOptions, "target")
    doctor = flag_defaults(doctor_command, "http://127.0.0.1:1")
    examined = inspect.signature(examine).parameters
    for name in ("max_requests", "max_idle_wait"):
        assert doctor[name] == examined[name].default, name
    keywords = {
        name: p.default
        for name, p in inspect.signature(tether.run).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    run_fields = field_defaults(RunOptions)
    # rate and watch are given as text there, and parsed: their nothing is None and ().
    assert {name: run_fields[name] for name in keywords} == keywords


def test_cluster_workers_must_be_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused while parsing: the cluster address (nothing listens there) is never dialled.
    records = write_records(tmp_path / "r.jsonl", 1, lambda i: {"url": "/"})
    args = ["run", str(records), "-t", "http://127.0.0.1:1", "--cluster", "tcp://127.0.0.1:1"]
    assert main([*args, "--cluster-workers", "0", "--connect-timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--cluster-workers'" in err and "0 is not in the range x>=1" in err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """``tether run ARGV --json - -q``: (exit status, the summary document)."""
    status = main(["run", *argv, "--json", "-", "-q"])
    return status, json.loads(capsys.readouterr().out)


# --- what the flags do ----------------------------------------------------------------------


def test_max_idle_bounds_the_idle_connections_of_all_hosts_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One worker alternating between two hosts: each host needs one idle connection kept to
    # reuse it. --max-idle 1 keeps one in all, so the connection to the second host finds
    # the pool full every time and is closed (the per-host limit, 1 worker, would keep both).
    pairs = 5
    with ThreadServer(keepalive_handler()) as a, ThreadServer(keepalive_handler()) as b:
        records = write_records(
            tmp_path / "r.jsonl",
            2 * pairs,
            lambda i: {"url": f"{(a, b)[i % 2].url}/{i}", "expect": {"status": 200}},
        )
        status, doc = run_json(capsys, str(records), "--max-idle", "1")
        assert b.wait_until(lambda: b.open_now == 0)
        assert status == 0 and doc["requests"] == doc["ok"] == 2 * pairs
        conns = doc["connections"]
        assert conns["opened"] == 1 + pairs and conns["reused"] == pairs - 1
        assert conns["closed"] == {"pool_full": pairs, "shutdown": 1}
        assert a.conn_requests() == [pairs] and b.conn_requests() == [1] * pairs

        # The same run without the limit: both hosts keep their connection.
        status, doc = run_json(capsys, str(records))
        assert status == 0 and doc["connections"]["opened"] == 2
        assert doc["connections"]["closed"] == {"shutdown": 2}


async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo) -> None:
    """Read the request, never answer: wait until the client gives up and closes."""
    if await read_request(reader) is None:
        return
    conn.count_request()
    await reader.read()


def test_timeout_ends_a_request_the_server_never_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 2, lambda i: {"url": f"/slow/{i}"})
    with ThreadServer(stall) as srv:
        started = time.monotonic()
        status, doc = run_json(capsys, str(records), "-t", srv.url, "--timeout", "0.4")
        elapsed = time.monotonic() - started
        assert srv.wait_until(lambda: srv.open_now == 0)  # tether closed what it gave up on
        assert srv.requests == 2  # both were sent: the server had them, and stayed silent
    assert status == 1
    assert doc["requests"] == doc["errors"] == 2 and doc["error_kinds"] == {"timeout": 2}
    assert [e["error"] for e in doc["error_examples"]] == ["request not complete within 0.4s"] * 2
    assert doc["connections"]["opened"] == 2 and doc["connections"]["closed"] == {"timeout": 2}
    # Each request waited its 0.4 s (the default is 30 s): the bound is the point here,
    # generous for a loaded machine, and far below what the default would take.
    assert doc["duration_s"] >= 0.8 and elapsed < 20


def test_watch_interval_spaces_the_samples(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = write_records(tmp_path / "r.jsonl", 1, lambda i: {"url": "/"})
    # A light open-model run (40 requests/s) for 1.4 s, so the loop is free to sample.
    args = [str(records), "-t", nginx.url, "--rate", "40", "-d", "1.4", "-n", "1000000"]
    status, doc = run_json(
        capsys, *args, "--watch", f"port:{nginx.port}", "--watch-interval", "0.2"
    )
    assert status == 0
    (source,) = doc["watch"]["sources"]
    seconds = source["series"]["seconds"]
    assert source["samples"] == len(seconds) >= 5 and source["errors"] == 0
    # The last sample is taken when the run ends, not on the interval: leave its gap out.
    gaps = [later - earlier for earlier, later in itertools.pairwise(seconds[:-1])]
    # A sample can come late on a busy machine, never early (a little slack for the loop's
    # clock); at least one gap must be near the interval, not the default 0.5 s nor twice it.
    assert min(gaps) >= 0.17, gaps
    assert min(gaps) < 0.35, gaps


def test_a_watch_interval_of_zero_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It once became the default 0.5 s without a word; sampling without pause is no interval.
    records = write_records(tmp_path / "r.jsonl", 1, lambda i: {"url": "/"})
    args = ["run", str(records), "-t", "http://127.0.0.1:1", "--watch", "port:1"]
    assert main([*args, "--watch-interval", "0"]) == 2
    assert "Invalid value for '--watch-interval'" in capsys.readouterr().err


# --- commands and flags of their own ----------------------------------------------------------


def test_version_is_the_installed_packages(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"tether, version {importlib.metadata.version('tether')}\n"


def test_serve_demo_serves_on_the_port_given(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "tether", "serve-demo", "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert accepting(port, proc), "serve-demo did not start listening"
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            client.request("GET", "/r/c0007")
            answer = client.getresponse()
            body = answer.read()
        finally:
            client.close()
        assert answer.status == 302
        assert answer.getheader("Location") == "https://example.org/page/7"
        assert len(body) == 4096
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out == f"listening on http://127.0.0.1:{port}\n"


def accepting(port: int, proc: subprocess.Popen[str], timeout: float = 30) -> bool:
    """Whether something accepts on 127.0.0.1:``port`` within ``timeout`` seconds, while
    ``proc`` runs (Python's start takes seconds on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False
