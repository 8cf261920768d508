"""Secret header values never reach a report or the results file unless asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servers import NginxFactory
from tether.cli import main
from tether.secrets import MASK, masked, secret_names

LOGIN = (
    'location = /login { add_header Set-Cookie "session=s3cr3t"; '
    'add_header X-Token "tok-123"; return 200 "ok"; }'
)


@pytest.mark.parametrize("show", [False, True])
def test_secret_headers_are_masked_in_reports(
    nginx_factory: NginxFactory, tmp_path: Path, show: bool
) -> None:
    server = nginx_factory(locations=LOGIN)
    records = tmp_path / "r.jsonl"
    expect = {"headers": {"Set-Cookie": "session=other", "X-Token": "tok-999"}}
    records.write_text(json.dumps({"url": "/login", "expect": expect}) + "\n")
    out, results = tmp_path / "s.json", tmp_path / "results.jsonl"
    args = ["run", str(records), "-t", server.url, "--json", str(out), "--results", str(results)]
    args += ["--redact-header", "X-Token", *(["--show-secrets"] if show else [])]
    assert main(args) == 1
    text = out.read_text() + results.read_text()
    for secret in ("s3cr3t", "tok-123", "session=other", "tok-999"):
        assert (secret in text) is show
    examples = json.loads(out.read_text())["mismatch_examples"]
    assert {e["field"] for e in examples} == {"header set-cookie", "header x-token"}
    if not show:
        assert all(e["got"] == e["expected"] == MASK for e in examples)


def test_masked() -> None:
    secret = secret_names(("X-Api-Key",))
    assert masked("header authorization", "Bearer x", secret) == MASK
    assert masked("header x-api-key", "k", secret) == MASK
    assert masked("header authorization", "(absent)", secret) == "(absent)"
    assert masked("header location", "/x", secret) == "/x"
    assert masked("body.equals", "Bearer x", secret) == "Bearer x"
    assert masked("header cookie", "c=1", secret_names(show=True)) == "c=1"
