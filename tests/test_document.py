"""The summary document and the results file hold to their TypedDicts (tether.document) key
for key, nested parts included, on a real run against nginx with something in every part:
a key added to, or renamed in, a writer or a TypedDict and not the other fails here."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest

import tether.document
from helpers import shape_problems
from servers import NginxServer, free_port
from tether.cli import main
from tether.document import ClosingLine, Counts, OutcomeLine, RunEnd, SummaryDocument

# Only a cluster run that lost a worker has these: test_cluster.py holds that one to them.
# Only a run over HTTP/2 has H2Streams: test_h2.py holds that one to it.
CLUSTER_ONLY = {"LostWorker", "WorkerReport", "H2Streams"}
# A flow's: the run below sends plain records (tests/test_flows.py holds a flow's document).
FLOW_ONLY = {"FlowRow"}
# The document's counts, which a live scrape takes alone: its keys, held to it below.
PARTS = {"Counts"}


def real_run(nginx: NginxServer, tmp_path: Path) -> tuple[Any, list[Any]]:
    """A run with matches, mismatches, failed requests, a skipped record, a threshold and two
    watched sources: its summary document and its results file's lines."""
    dead = free_port()
    lines = [
        json.dumps({"url": "/", "expect": {"status": 200}}),
        json.dumps({"url": "/r/1", "expect": {"headers": {"Location": "https://example.org/x"}}}),
        json.dumps({"url": f"http://127.0.0.1:{dead}/gone"}),
        "not a record",
    ]
    records, doc, results = tmp_path / "r.jsonl", tmp_path / "s.json", tmp_path / "out.jsonl"
    records.write_text("\n".join(lines) + "\n")
    args = ["run", str(records), "-t", nginx.url, "-n", "60", "-c", "2", "-q"]
    args += ["--json", str(doc), "--results", str(results), "--threshold", "p99<10s"]
    args += ["--watch", f"nginx:{nginx.url}/status", "--watch", f"port:{nginx.port}"]
    assert main(args) == 2  # the skipped record decides
    return json.loads(doc.read_text()), [json.loads(t) for t in results.read_text().splitlines()]


def test_a_real_runs_document_and_results_have_the_typed_keys(
    nginx: NginxServer, tmp_path: Path
) -> None:
    doc, lines = real_run(nginx, tmp_path)
    seen: set[str] = set()
    assert shape_problems(doc, SummaryDocument, "doc", seen) == []
    *outcomes, closing = lines
    assert shape_problems(closing, ClosingLine, "end line", seen) == []
    for i, line in enumerate(outcomes):
        assert shape_problems(line, OutcomeLine, f"line {i}", seen) == []
    # Every part was there to be checked: none of the run's is empty.
    assert doc["mismatch_examples"] and doc["error_examples"] and doc["input_error_examples"]
    assert doc["thresholds"] and doc["timeline"] and len(doc["groups"]) == 3
    assert doc["latency_histogram"] and all(m["count"] for m in doc["mismatch_examples"])
    assert [s["samples"] > 0 for s in doc["watch"]["sources"]] == [True, True]
    assert any(line.get("mismatches") for line in outcomes)  # absent when there are none
    typed = {name for name, v in vars(tether.document).items() if typing.is_typeddict(v)}
    assert seen == typed - CLUSTER_ONLY - PARTS - FLOW_ONLY


@pytest.mark.parametrize("part", [Counts, RunEnd], ids=["counts", "closing line"])
def test_a_part_of_the_document_is_its_own_keys_typed_alike(part: Any) -> None:
    # Each is the document's keys of its names: the closing line is taken from the document,
    # and the document takes the counts whole.
    keys = typing.get_type_hints(part)
    whole = typing.get_type_hints(SummaryDocument)
    assert {key: whole.get(key) for key in keys} == keys


def test_the_check_sees_a_key_on_one_side_only(nginx: NginxServer, tmp_path: Path) -> None:
    doc, _ = real_run(nginx, tmp_path)
    added = {**doc, "connections": {**doc["connections"], "kept_alive": 1}}
    assert shape_problems(added, SummaryDocument) == [
        "doc.connections.kept_alive: not in Connections"
    ]
    renamed = {**doc, "mismatch_count": doc["mismatches"]}
    del renamed["mismatches"]
    assert shape_problems(renamed, SummaryDocument) == [
        "doc.mismatches: missing",
        "doc.mismatch_count: not in SummaryDocument",
    ]
    deep = json.loads(json.dumps(doc))
    del deep["watch"]["sources"][1]["figures"]["open"]["peak"]
    assert shape_problems(deep, SummaryDocument) == [
        "doc.watch.sources[1].figures['open'].peak: missing"
    ]
