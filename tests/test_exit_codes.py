"""The exit codes: failed requests alone exit 1 (a run against a closed port, with nothing
expected), and when several outcomes meet, the one that decides is, in order: interrupted
(130), a partial cluster run (1), input errors (2), a failed gate (3), mismatches or failed
requests (1), an output that could not be written (1), else 0."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from helpers import write_records
from servers import free_port
from tether.cli import main
from tether.commands.options import ExitStatus, exit_status


def test_failed_requests_alone_exit_1_and_keep_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No record expects anything: the only thing wrong is that nothing answers.
    records = write_records(tmp_path / "r.jsonl", 3, lambda i: {"url": f"/p/{i}"})
    target = f"http://127.0.0.1:{free_port()}"
    status = main(["run", str(records), "--target", target, "--json", "-"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert status == 1
    assert doc["requests"] == doc["errors"] == 3 and doc["error_kinds"] == {"connect": 3}
    assert doc["ok"] == doc["mismatches"] == doc["input_errors"] == 0
    assert doc["gate_failures"] == [] and doc["interrupted"] is False and doc["partial"] is False
    assert doc["connections"]["connect_failed"] == 3 and doc["connections"]["opened"] == 0
    assert "Connection refused" in doc["error_examples"][0]["error"]
    flat = " ".join(err.split())  # the text summary, on stderr beside the JSON; rich wraps it
    assert "errors 3" in flat and "3 requests failed" in flat


# The facts a finished run's exit status depends on, highest priority first, each with the
# code it calls for when it is the highest one present. Mismatches and failed requests are
# two facts with one code: either alone must be enough.
PRIORITY: list[tuple[str, int]] = [
    ("interrupted", 130),
    ("partial", 1),
    ("input_errors", 2),
    ("gate_failed", 3),
    ("mismatches", 1),
    ("errors", 1),
    ("unwritten", 1),
]
FACTS = [name for name, _ in PRIORITY]


def facts_doc(present: set[str]) -> tuple[dict[str, Any], list[str]]:
    """A summary document and gate failures with exactly the ``present`` facts."""
    doc: dict[str, Any] = {
        "requests": 12,  # (a run that sent nothing is a case of its own, below)
        "interrupted": "interrupted" in present,
        "partial": "partial" in present,
        "input_errors": 2 if "input_errors" in present else 0,
        "mismatches": 5 if "mismatches" in present else 0,
        "errors": 7 if "errors" in present else 0,
        "unwritten": ["--json 'x.json' was not written: No space left on device"]
        if "unwritten" in present
        else [],
    }
    gates = ["connection reuse was 0.0%"] if "gate_failed" in present else []
    return doc, gates


COMBINATIONS = [
    {name for name, on in zip(FACTS, flags, strict=True) if on}
    for flags in itertools.product((False, True), repeat=len(FACTS))
]


@pytest.mark.parametrize(
    "present", COMBINATIONS, ids=["+".join(sorted(p)) or "nothing" for p in COMBINATIONS]
)
def test_the_highest_outcome_present_decides_the_exit_status(present: set[str]) -> None:
    expected = next((code for name, code in PRIORITY if name in present), 0)
    doc, gates = facts_doc(present)
    assert exit_status(doc, gates) == expected


def test_the_table_names_every_code() -> None:
    # The table above is the README's list of codes, in priority order.
    assert {code for _, code in PRIORITY} | {0} == {int(s) for s in ExitStatus}
    assert exit_status(*facts_doc(set())) == ExitStatus.OK


@pytest.mark.parametrize("content", ["", "# only a comment\n\n"], ids=["empty", "comments"])
def test_a_run_with_nothing_to_send_is_a_usage_error_and_its_gates_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    """An empty or comment-only records file used to exit 0 even with gates asked for: a
    CI gate went green having tested nothing."""
    records = tmp_path / "r.jsonl"
    records.write_text(content)
    out = tmp_path / "out.json"
    args = ["run", str(records), "-t", "http://127.0.0.1:9", "--json", str(out)]
    status = main([*args, "--min-reuse", "0.99", "--threshold", "p99<1ms"])
    assert status == 2
    assert "no request was sent: there was no record to send" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["requests"] == 0
    assert len(doc["gate_failures"]) == 2
    assert all("no request was sent" in failure for failure in doc["gate_failures"])
    assert [t["ok"] for t in doc["thresholds"]] == [False]
