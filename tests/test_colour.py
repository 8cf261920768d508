"""Colour on a terminal, and only there: the text summary's failures (mismatches, errors,
failed gates) in red and a clean run's closing sentence in green, the doctor's and the diff's
verdicts alike; no colour with NO_COLOR set, and no escape code at all when the output is not
a terminal (a file, a pipe, a CI log). Real runs against servers on 127.0.0.1; rich decides
what a terminal is, so the terminal tests run tether on a pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from helpers import on_a_terminal, write_records
from servers import ThreadServer, json_server, keepalive_handler
from tether.cli import main
from tether.report import text

SGR = re.compile(r"\x1b\[([0-9;]*)m")
BOLD, RED, GREEN, YELLOW = "1", "31", "32", "33"
# rich's own switches: taken out so that the terminal, or the test, alone decides.
RICH_ENV = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def runs(output: str) -> list[tuple[frozenset[str], str]]:
    """The output as runs of text, each with the SGR codes in force over it (rich resets
    with 0 before each styled run)."""
    found: list[tuple[frozenset[str], str]] = []
    codes: frozenset[str] = frozenset()
    at = 0
    for m in SGR.finditer(output):
        found.append((codes, output[at : m.start()]))
        given = m.group(1).split(";") if m.group(1) else ["0"]
        codes = frozenset() if given == ["0"] else codes | set(given)
        at = m.end()
    found.append((codes, output[at:]))
    return [(c, t) for c, t in found if t]


def style_of(output: str, words: str) -> frozenset[str]:
    """The codes over the first run that holds ``words``."""
    held = [codes for codes, part in runs(output) if words in part]
    assert held, f"{words!r} not in one run of {output!r}"
    return held[0]


def colours(output: str) -> set[str]:
    """Every foreground or background colour code used (30-49, 90-107)."""
    found = set()
    for m in SGR.finditer(output):
        for code in m.group(1).split(";"):
            if code.isdigit() and (30 <= int(code) <= 49 or 90 <= int(code) <= 107):
                found.add(code)
    return found


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in RICH_ENV:
        monkeypatch.delenv(name, raising=False)


def records(tmp_path: Path, mismatched: int = 0) -> str:
    """Records the keep-alive server (200 "ok" to all) satisfies, then ``mismatched`` that
    it does not (they expect a 201)."""
    made = [{"url": f"/ok/{i}", "expect": {"status": 200}} for i in range(3)]
    made += [{"url": f"/m/{i}", "expect": {"status": 201}} for i in range(mismatched)]
    path = tmp_path / f"r{mismatched}.jsonl"
    return str(write_records(path, len(made), lambda i: made[i]))


def document(tmp_path: Path, url: str, *argv: str) -> Any:
    out = tmp_path / "doc.json"
    main(["run", *argv, "-t", url, "-n", "20", "-c", "2", "--json", str(out), "--silent"])
    return json.loads(out.read_text())


def on_terminal(doc: Any, gate_failures: list[str] | None = None) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=120)
    text.print_summary(doc, gate_failures or [], console)
    return out.getvalue()


# --- the summary, rendered ----------------------------------------------------------------


def test_a_clean_run_ends_in_green(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)
    with ThreadServer(keepalive_handler()) as server:
        doc = document(tmp_path, server.url, records(tmp_path))
    shown = on_terminal(doc)
    assert style_of(shown, "All 20 responses matched.") == {BOLD, GREEN}
    assert RED not in colours(shown)  # nothing to be red about


def test_mismatches_and_a_failed_gate_are_red(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_env(monkeypatch)
    with ThreadServer(keepalive_handler()) as server:
        gate = ["--threshold", "mismatch_rate<1%"]
        doc = document(tmp_path, server.url, records(tmp_path, mismatched=1), *gate)
    assert doc["mismatches"] == 5 and doc["gate_failures"]
    shown = on_terminal(doc, doc["gate_failures"])
    assert style_of(shown, "mismatches: 5 responses") == {BOLD, RED}
    assert style_of(shown, "line 4  GET /m/0") == {BOLD}  # the record: no colour
    assert style_of(shown, "got       200") == {BOLD, RED}
    assert style_of(shown, "expected  201") == {BOLD, GREEN}
    assert style_of(shown, "threshold FAIL") == {BOLD, RED}
    assert style_of(shown, "gate failed: ") == {BOLD, RED}
    assert style_of(shown, "5 of 20 responses did not match") == {BOLD, RED}


def test_no_color_takes_the_colours_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env(monkeypatch)
    with ThreadServer(keepalive_handler()) as server:
        doc = document(tmp_path, server.url, records(tmp_path, mismatched=1))
    monkeypatch.setenv("NO_COLOR", "1")
    shown = on_terminal(doc)
    # Still a terminal (bold stays, as no-color.org asks only that colour go), no colour.
    assert colours(shown) == set() and style_of(shown, "mismatches: 5") == {BOLD}


def test_not_a_terminal_has_no_escape_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_env(monkeypatch)
    with ThreadServer(keepalive_handler()) as server:
        doc = document(tmp_path, server.url, records(tmp_path, mismatched=1))
    out = io.StringIO()
    text.print_summary(doc, [], Console(file=out, width=120))
    assert "mismatches: 5 responses" in out.getvalue() and "\x1b" not in out.getvalue()


# --- the commands, on a terminal and not ----------------------------------------------------


def on_a_pty(argv: list[str], stdout_too: bool = True, **env: str) -> tuple[str, str]:
    """Run tether with stderr (and stdout, unless not ``stdout_too``: then a pipe) on a
    pseudo-terminal, 30 s at most: what the terminal showed, and the piped stdout."""
    environ = {k: v for k, v in os.environ.items() if k not in RICH_ENV}
    environ.update(TERM="xterm-256color", COLUMNS="120", **env)
    return on_a_terminal(argv, environ, stdout_too)


def test_a_run_on_a_terminal_is_in_colour(tmp_path: Path) -> None:
    with ThreadServer(keepalive_handler()) as server:
        argv = ["run", records(tmp_path), "-t", server.url, "-n", "20"]
        shown, _ = on_a_pty(argv)
        bad, _ = on_a_pty(["run", records(tmp_path, mismatched=1), "-t", server.url, "-n", "20"])
        plain, _ = on_a_pty(argv, NO_COLOR="1")
    assert style_of(shown, "All 20 responses matched.") == {BOLD, GREEN}
    assert style_of(bad, "mismatches: 5 responses") == {BOLD, RED}
    assert style_of(bad, "5 of 20 responses did not match") == {BOLD, RED}
    assert "All 20 responses matched." in plain and colours(plain) == set()


def test_with_the_json_on_stdout_the_text_on_the_terminal_is_in_colour(tmp_path: Path) -> None:
    with ThreadServer(keepalive_handler()) as server:
        argv = ["run", records(tmp_path), "-t", server.url, "-n", "20", "--json", "-"]
        shown, stdout = on_a_pty(argv, stdout_too=False)
    assert style_of(shown, "All 20 responses matched.") == {BOLD, GREEN}
    assert json.loads(stdout)["requests"] == 20 and "\x1b" not in stdout


def test_a_report_on_a_terminal_is_in_colour(tmp_path: Path) -> None:
    results = tmp_path / "out.jsonl"
    with ThreadServer(keepalive_handler()) as server:
        argv = ["run", records(tmp_path, mismatched=1), "-t", server.url, "-n", "20", "-q"]
        assert main([*argv, "--results", str(results)]) == 1
    shown, _ = on_a_pty(["report", str(results)])
    assert style_of(shown, "5 of 20 responses did not match") == {BOLD, RED}


def test_captured_output_has_no_escape_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_env(monkeypatch)
    results = tmp_path / "out.jsonl"
    with ThreadServer(keepalive_handler()) as server:
        argv = ["run", records(tmp_path, mismatched=1), "-t", server.url, "-n", "20"]
        gate = ["--threshold", "mismatch_rate<1%"]
        assert main([*argv, "--results", str(results), *gate]) == 3
        assert main([*argv, "-q"]) == 1
        assert main([*argv, "--json", "-"]) == 1
    assert main(["report", str(results)]) == 1
    out, err = capsys.readouterr()
    assert "gate failed" in out and "did not match" in out and "did not match" in err
    assert "\x1b" not in out + err


def test_the_doctors_and_the_diffs_verdicts_are_coloured_on_a_terminal_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_env(monkeypatch)
    pairs = tmp_path / "p.jsonl"
    pairs.write_text("".join(json.dumps({"url": f"/u/{i}"}) + "\n" for i in range(3)))

    def both() -> tuple[str, str]:
        with ThreadServer(keepalive_handler()) as server:
            main(["doctor", f"{server.url}/", "--max-requests", "3", "--max-idle-wait", "0.2"])
        doctor = capsys.readouterr().out
        with json_server(lambda t: {"v": 1}) as a, json_server(lambda t: {"v": 2}) as b:
            main(["diff", str(pairs), "--primary", a.url, "--candidate", b.url])
        return doctor, capsys.readouterr().out

    doctor, diff = both()
    assert "keep-alive" in doctor and "with differences" in diff
    assert "\x1b" not in doctor + diff
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich's switch: as if on a terminal
    doctor, diff = both()
    assert style_of(doctor, "yes") == {GREEN}
    assert style_of(diff, "3 records compared, 3 with differences") == {BOLD, RED}
