"""The README's examples, as written, against the demo service: its records example is the
records file, and its Python examples run with only the demo's port put in for 8080."""

from __future__ import annotations

import ast
import asyncio
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tether.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
WRITTEN_PORT = "127.0.0.1:8080"


def section(title: str) -> str:
    """The README's text from the heading ``title`` to the next heading of any level."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"{title}\n")
    end = re.compile(r"^#{2,3} ", re.M).search(text, start + len(title))
    return text[start : end.start() if end else len(text)]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.fixture
def in_demo_dir(
    tmp_path: Path, demo_port: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """A directory holding the README's records example as ``records.jsonl``, made the
    current one; and the demo's host:port to put in for the README's."""
    (records,) = blocks(section("### Records: JSON lines"), "json")
    (tmp_path / "records.jsonl").write_text(records, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path, f"127.0.0.1:{demo_port}"


def test_the_python_examples_run_as_written(in_demo_dir: tuple[Path, str]) -> None:
    """The async example used to ask for /r/abc, which the demo answers with 404."""
    _, where = in_demo_dir
    examples = blocks(section("## From Python"), "python")
    assert len(examples) == 2
    scope: dict[str, Any] = {}  # one session: the second example uses the first's import
    for code in examples:
        source = code.replace(WRITTEN_PORT, where)
        compiled = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        coroutine = eval(compiled, scope)  # with a top-level await: a coroutine to run
        if coroutine is not None:
            asyncio.run(coroutine)


def test_the_first_run_command_runs_as_written(in_demo_dir: tuple[Path, str]) -> None:
    _, where = in_demo_dir
    (commands,) = blocks(section("## Running it"), "sh")
    first = next(line for line in commands.splitlines() if line.startswith("tether run "))
    args = shlex.split(first.replace(WRITTEN_PORT, where))[1:]
    assert main(args) == 0
