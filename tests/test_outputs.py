"""Output files: every path is tried before the first request (exit 2, naming it), and a file
that fails while being written (a full disk: ``/dev/full`` answers every write with ENOSPC)
costs only itself, never the run, the other outputs or the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import write_records
from servers import ThreadServer, keepalive_handler
from tether.cli import main

FULL = "/dev/full"  # every write to it fails with "No space left on device"

pytestmark = pytest.mark.skipif(not Path(FULL).exists(), reason="needs /dev/full")


def records(tmp_path: Path, count: int = 3) -> Path:
    return write_records(tmp_path / "r.jsonl", count, lambda i: {"url": f"/p/{i}"})


@pytest.mark.parametrize(
    ("flag", "where", "why"),
    [
        ("--json", "missing/dir/out.json", "No such file or directory"),
        ("--html", "missing/out.html", "No such file or directory"),
        ("--junit", ".", "Is a directory"),
        ("--results", "missing/out.jsonl", "No such file or directory"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, where: str, why: str
) -> None:
    """Such a path used to be found only after the whole run (or, for --results, as a
    traceback-less ``tether: ...`` with the run lost)."""
    path = str(tmp_path / where)
    with ThreadServer(keepalive_handler()) as srv:
        status = main(["run", str(records(tmp_path)), "-t", srv.url, flag, path])
        assert srv.requests == 0 and srv.accepted == 0
    assert status == 2
    err = capsys.readouterr().err
    assert f"{flag} {path!r} cannot be written: {why}" in err


def test_a_tried_path_that_did_not_exist_is_left_as_it_was(tmp_path: Path) -> None:
    out, bad = tmp_path / "out.json", tmp_path / "missing" / "out.html"
    with ThreadServer(keepalive_handler()) as srv:
        # --json is tried first and passes, then --html fails: nothing may be left behind.
        args = ["run", str(records(tmp_path)), "-t", srv.url, "--json", str(out)]
        status = main([*args, "--html", str(bad)])
        assert srv.requests == 0
    assert status == 2 and not out.exists()


def test_one_path_for_two_outputs_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = str(tmp_path / "out")
    args = ["run", str(records(tmp_path)), "-t", "http://127.0.0.1:9"]
    status = main([*args, "--json", both, "--html", both])
    assert status == 2
    assert f"--json and --html would both write {both!r}" in capsys.readouterr().err


def test_a_full_disk_under_the_results_file_costs_only_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to stop the run at once with ``tether: : No space left on device``: no file
    named, and no --json at all."""
    out, page = tmp_path / "out.json", tmp_path / "out.html"
    args = ["run", str(records(tmp_path, 2000)), "-c", "4", "--results", FULL]
    with ThreadServer(keepalive_handler()) as srv:
        status = main([*args, "-t", srv.url, "--json", str(out), "--html", str(page)])
        served = srv.requests
    said = capsys.readouterr()
    err, text = said.err, " ".join(said.out.split())  # rich wraps the text summary
    sentence = f"--results {FULL!r} was not written: No space left on device"
    assert f"tether: {sentence}: the run goes on without it" in err
    assert f"output failed: {sentence}" in text  # and again in the summary
    doc = json.loads(out.read_text())
    assert doc["requests"] == doc["ok"] == served == 2000  # the run went on to its end
    assert doc["unwritten"] == [sentence]
    assert "output failed" in page.read_text()
    assert status == 1  # every response matched, but an output is missing


def test_a_full_disk_under_one_report_still_writes_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, junit = tmp_path / "out.html", tmp_path / "out.xml"
    args = ["run", str(records(tmp_path)), "--json", FULL]
    with ThreadServer(keepalive_handler()) as srv:
        status = main([*args, "-t", srv.url, "--html", str(page), "--junit", str(junit)])
    text = " ".join(capsys.readouterr().out.split())
    assert f"output failed: --json {FULL!r} was not written: No space left on device" in text
    assert "All 3 responses matched" in text  # the text summary is all there
    assert "<html" in page.read_text() and "<testsuite" in junit.read_text()
    assert status == 1


@pytest.mark.parametrize("command", ["doctor", "diff", "audit"])
def test_the_other_commands_try_their_json_path_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """doctor's probes can take minutes, diff sends every record twice, audit runs a whole
    program: a --json path they cannot write used to be found only at the end."""
    path = str(tmp_path / "missing" / "out.json")
    with ThreadServer(keepalive_handler()) as srv:
        url = srv.url
        rest = {
            "doctor": [url, "--max-requests", "3"],
            "diff": [str(records(tmp_path)), "--primary", url, "--candidate", url],
            "audit": ["--", "python3", "-c", f"import urllib.request as u; u.urlopen({url!r})"],
        }[command]
        status = main([command, "--json", path, *rest])
        assert srv.accepted == 0
    assert status == 2
    assert (
        f"--json {path!r} cannot be written: No such file or directory" in capsys.readouterr().err
    )


def test_a_full_disk_under_another_commands_json_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ThreadServer(keepalive_handler()) as srv:
        args = ["diff", str(records(tmp_path)), "--primary", srv.url, "--candidate", srv.url]
        status = main([*args, "--json", FULL])
    assert status == 2
    assert f"tether: {FULL}: No space left on device" in capsys.readouterr().err
