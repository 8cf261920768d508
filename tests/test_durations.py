"""How load-tool users type times: ``-d`` runs for that long (the records cycle until it is
up, as wrk, hey -z, oha -z, vegeta -duration and k6 run), every time on the command line and
in tether.toml takes units (``10s``, ``500ms``, ``1m30s``), and records of paths with no
``--target`` are one usage error before anything is sent. Each through the real command,
against servers on 127.0.0.1."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

import tether
from helpers import redirect_record, write_records
from servers import NginxFactory, NginxServer, ThreadServer, dask_cluster
from test_cli_flags import parsed, stall
from tether.cli import main
from tether.commands.diff import diff_command
from tether.commands.doctor import doctor_command
from tether.commands.record import record_command
from tether.commands.run import client_options, run_options
from tether.engine.compiled import ENGINE
from tether.engine.options import ClientOptions
from tether.records import file_source
from tether.report.progress import line
from tether.run.options import RunOptions
from tether.run.pacer import Pacer
from tether.run.session import run
from tether.thresholds import parse_duration, parse_threshold


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    """``tether run ARGV --json -``: (exit status, the summary document, stderr)."""
    status = main(["run", *argv, "--json", "-"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def one_record(tmp_path: Path) -> Path:
    path = tmp_path / "one.jsonl"
    path.write_text('{"url": "/", "expect": {"status": 200}}\n')
    return path


# --- -d: run for this long -------------------------------------------------------------------
# (in bare seconds, as it always took them: the units have their own tests below)


def test_a_duration_alone_cycles_the_records_until_it_is_up(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three records, two workers, one second: the records go round until the time is up
    # (they used to go out once each, in a few milliseconds).
    records = write_records(tmp_path / "r.jsonl", 3, redirect_record)
    before = nginx.stub_status()["requests"]
    status, doc, _ = run_json(capsys, str(records), "-t", nginx.url, "-c", "2", "-d", "1", "-q")
    served = nginx.stub_status()["requests"] - before - 1  # less the second status read
    assert status == 0
    assert 3 < doc["requests"] == doc["ok"] == served
    assert doc["input_errors"] == 0 and doc["connections"]["opened"] == 2
    # The duration ended it: not before it, and (generous for a loaded machine) not long after.
    assert 0.9 < doc["duration_s"] < 30


def test_a_count_and_a_duration_end_the_run_at_whichever_comes_first(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(one_record(tmp_path)), "-t", nginx.url, "-n", "5", "-d", "60", "-q"]
    status, doc, _ = run_json(capsys, *args)
    assert status == 0 and doc["requests"] == doc["ok"] == 5 and doc["duration_s"] < 30


def test_an_open_model_rate_for_a_duration_cycles_too(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 100 requests a second for a second, of one record: the schedule's 100 requests (it
    # used to send the record once and stop).
    before = nginx.stub_status()["requests"]
    args = [str(one_record(tmp_path)), "-t", nginx.url, "--rate", "100", "-d", "1", "-q"]
    status, doc, _ = run_json(capsys, *args)
    served = nginx.stub_status()["requests"] - before - 1
    assert status == 0 and doc["requests"] == doc["ok"] == 100 == served


def test_records_that_are_all_bad_end_a_timed_run_at_once(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A pass that hands out nothing ends the run: cycling it would spin for the minute.
    path = tmp_path / "bad.jsonl"
    path.write_text('not a record\n{"url": 5}\n')
    before = nginx.stub_status()["requests"]
    started = time.monotonic()
    status, doc, _ = run_json(capsys, str(path), "-t", nginx.url, "-d", "60", "-q")
    assert status == 2 and doc["requests"] == 0 and doc["input_errors"] == 2
    assert time.monotonic() - started < 20
    assert nginx.stub_status()["requests"] == before + 1  # nothing was sent


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
def test_the_python_api_runs_for_its_duration_on_either_send_path(
    nginx: NginxServer, tmp_path: Path, compiled: bool
) -> None:
    path = one_record(tmp_path)
    summary = tether.run(path, target=nginx.url, duration=0.5)
    assert summary.requests > 1 and summary.ok == summary.requests
    # The same with the compiled cycle (counting down from no count at all) or without it.
    asked = RunOptions(target=nginx.url, concurrency=2, duration=0.5, compiled=compiled)
    summary = run(file_source(str(path)), asked)
    assert summary.requests > 2 and summary.ok == summary.requests
    assert summary.facts.engine == (ENGINE if compiled else "python")
    assert 0.4 < summary.duration < 30


def test_the_progress_line_shows_the_time_of_the_duration(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.json"
    args = [str(one_record(tmp_path)), "-t", nginx.url, "-c", "2", "-d", "2"]
    assert main(["run", *args, "--json", str(out)]) == 0
    shown = [s for s in capsys.readouterr().err.splitlines() if "req/s  errors" in s]
    # Elapsed of the duration, and the requests with no "of" a count nobody gave.
    progress = re.compile(r"^\ds/2s  requests [\d,]+  [\d,]+ req/s  errors 0  mismatches 0  ")
    assert shown and all(progress.match(s) for s in shown), shown
    figures = {"elapsed_s": 61.2, "total_s": 90.0, "requests": 5, "total": None, "rps": 1.0}
    figures |= {"errors": 0, "mismatches": 0, "open": 1, "p99_ms": 1.0}
    assert line(figures).startswith("1m1s/1m30s  requests 5  1 req/s")


def test_more_workers_than_records_for_a_duration_each_send(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One record over two processes: it cycles in both (they used to refuse: the second
    # process would have had no record to send once).
    before = nginx.stub_status()
    args = [str(one_record(tmp_path)), "-t", nginx.url, "-w", "2", "-c", "2", "-d", "1", "-q"]
    status, doc, _ = run_json(capsys, *args)
    after = nginx.stub_status()
    assert status == 0 and doc["requests"] == after["requests"] - before["requests"] - 1 > 2
    assert doc["connections"]["opened"] == after["accepts"] - before["accepts"] - 1 == 2


def test_a_cluster_runs_for_the_duration_and_says_a_missing_target_once(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One record over two cluster workers: it cycles in both (they used to refuse it). And
    # paths with no --target: one usage error from the workers, not a partial summary of
    # lost workers.
    records = write_records(tmp_path / "r.jsonl", 20, redirect_record)
    with dask_cluster(tmp_path, workers=2) as cluster:
        before = nginx.stub_status()["requests"]
        on = ["--cluster", cluster.address, "-c", "2", "-q"]
        status, doc, _ = run_json(
            capsys, str(one_record(tmp_path)), "-t", nginx.url, *on, "-d", "1"
        )
        served = nginx.stub_status()["requests"] - before - 1
        assert status == 0 and doc["requests"] == served > 2
        assert doc["connections"]["opened"] == 2 and not doc.get("partial")
        assert main(["run", str(records), *on]) == 2
    err = capsys.readouterr().err
    assert err.count("needs --target") == 1 and f"tether: {records}:" in err


# --- every time takes units ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10", 10.0),
        ("0.5", 0.5),
        ("10s", 10.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("1h2m3.5s", 3723.5),
        ("250us", 0.00025),
        (" 1m ", 60.0),
    ],
)
def test_a_duration_as_go_writes_it(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10x", "1.2.3s", "", "s", "10 s", "1m 30s", "inf", "1e3s"])
def test_what_is_no_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_every_time_on_the_command_line_takes_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no tether.toml here to supply defaults
    opts = parsed(
        "-d", "1m30s", "--rate", "10:20", "--watch-interval", "100ms",
        "--idle-timeout", "1m30s", "--connect-timeout", "2s",
        "--response-header-timeout", "1.5s", "--timeout", "500ms", "--drain-timeout", "250ms",
    )  # fmt: skip
    asked = run_options(opts)
    assert (asked.duration, asked.rate, asked.watch_interval) == (90.0, Pacer(10, 20, 90.0), 0.1)
    client = client_options(opts)
    assert (client.idle_timeout, client.connect_timeout) == (90.0, 2.0)
    assert (client.response_header_timeout, client.timeout, client.drain_timeout) == (
        1.5,
        0.5,
        0.25,
    )
    needs = {"record": ("-o", "g.jsonl"), "diff": ("--primary", "x", "--candidate", "y")}
    for command in (record_command, diff_command):
        argv = ["r.jsonl", *needs[command.name or ""], "--timeout", "2m"]
        assert command.make_context(command.name, argv).params["timeout"] == 120.0
    ctx = doctor_command.make_context("doctor", ["http://127.0.0.1:9/", "--max-idle-wait", "1m"])
    assert ctx.params["max_idle_wait"] == 60.0
    # A latency threshold reads its limit the same way (a number alone is ms there).
    assert parse_threshold("p99<1m").limit == 60_000 and parse_threshold("p99<250").limit == 250


def test_a_run_with_times_in_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = write_records(tmp_path / "r.jsonl", 2, lambda i: {"url": f"/slow/{i}"})
    with ThreadServer(stall) as srv:
        status, doc, _ = run_json(capsys, str(records), "-t", srv.url, "--timeout", "300ms", "-q")
        assert srv.wait_until(lambda: srv.open_now == 0)
    assert status == 1 and doc["error_kinds"] == {"timeout": 2}
    assert [e["error"] for e in doc["error_examples"]] == ["request not complete within 0.3s"] * 2


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [
        ("-d", "10x", "'10x' is not a duration: give seconds (10, 0.5) or a time with units"),
        ("-d", "0", "give a duration longer than 0"),
        ("--timeout", "-1s", "a duration cannot be negative"),
        ("--idle-timeout", "1min", "such as 10s, 500ms or 1m30s"),
    ],
)
def test_a_time_that_is_not_one_is_a_usage_error(
    nginx: NginxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    said: str,
) -> None:
    before = nginx.stub_status()["requests"]
    assert main(["run", str(one_record(tmp_path)), "-t", nginx.url, flag, value]) == 2
    assert said in capsys.readouterr().err
    assert nginx.stub_status()["requests"] == before + 1  # nothing was sent


def test_times_in_tether_toml_take_units(
    nginx: NginxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tether.toml").write_text('duration = "500ms"\ntimeout = "2s"\nidle-timeout = 90\n')
    out = tmp_path / "s.json"
    assert main(["run", str(one_record(tmp_path)), "-t", nginx.url, "-q", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["requests"] > 1 and 0.4 < doc["duration_s"] < 30  # 500 ms of a cycled record


def test_doctor_waits_a_time_in_units(nginx_factory: NginxFactory, tmp_path: Path) -> None:
    server = nginx_factory(server="keepalive_requests 1000; keepalive_timeout 30s;")
    out = tmp_path / "doctor.json"
    args = ["doctor", f"{server.url}/", "--max-requests", "20", "--max-idle-wait", "300ms"]
    assert main([*args, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["idle_wait_s"] == 0.3


def test_the_default_times_are_the_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert client_options(parsed()) == ClientOptions()  # numbers still pass as seconds


# --- a path with no --target -----------------------------------------------------------------

NO_TARGET = "relative URL '/r/0' needs --target, the base URL paths are joined to"


@pytest.mark.parametrize(
    "how",
    [(), ("-c", "4", "-d", "1"), ("--rate", "50"), ("-w", "2", "-c", "2")],
    ids=["sequential", "concurrent-timed", "open-model", "workers"],
)
def test_paths_without_a_target_are_one_usage_error_before_anything_is_sent(
    nginx: NginxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    how: tuple[str, ...],
) -> None:
    records = write_records(tmp_path / "r.jsonl", 20, redirect_record)
    before = nginx.stub_status()["requests"]
    assert main(["run", str(records), *how]) == 2
    err = capsys.readouterr().err
    # One sentence naming the file and line, and no summary of zeros nor a line per record.
    assert err.count("needs --target") == 1 and f"tether: {records}:1: {NO_TARGET}" in err
    assert "requests" not in err and "skipped" not in err
    assert nginx.stub_status()["requests"] == before + 1  # nothing was sent


def test_a_path_after_what_was_sent_stops_the_run_there(
    nginx: NginxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A streamed file is checked as it goes: the first record (absolute) went out; the run
    # stops at the first path, said once, and what was sent stands.
    def make(i: int) -> dict[str, Any]:
        record = redirect_record(i)
        return record | {"url": f"{nginx.url}/r/0"} if i == 0 else record

    records = write_records(tmp_path / "r.jsonl", 20, make)
    before = nginx.stub_status()["requests"]
    status, doc, err = run_json(capsys, str(records), "-d", "60")
    assert status == 2 and doc["requests"] == doc["ok"] == 1
    assert nginx.stub_status()["requests"] == before + 2  # that one, and this status read
    [example] = doc["input_error_examples"]
    assert doc["input_errors"] == 1 and example["line"] == 2
    assert "relative URL '/r/1' needs --target" in example["error"]
    assert example["error"].endswith("the run stopped here")
    assert doc["duration_s"] < 30  # not the minute: the run ended there
    assert err.count("needs --target") == 1
