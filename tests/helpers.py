"""Small shared helpers for the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_records(path: Path, count: int, make: Callable[[int], dict[str, Any]]) -> Path:
    """Write ``count`` JSONL records made by ``make(i)``."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            out.write(json.dumps(make(i)) + "\n")
    return path


def redirect_record(i: int) -> dict[str, Any]:
    """A record the test nginx answers with a 302 to https://example.org/r/<i>."""
    return {
        "url": f"/r/{i}",
        "expect": {"status": 302, "headers": {"Location": f"https://example.org/r/{i}"}},
    }


def interrupt_run(args: list[str], sending: Callable[[], bool]) -> tuple[int, str]:
    """Start ``tether run ARGS`` as a real process, Ctrl-C it (by its PID) once ``sending()``
    says its requests are arriving, and return its exit status and standard output. Waiting
    on the server rather than a clock: a slow machine may take seconds to start Python."""
    argv = [sys.executable, "-m", "tether", "run", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not sending() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGINT)
        stdout, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout


def shape_problems(
    value: Any, hint: Any, where: str = "doc", seen: set[str] | None = None
) -> list[str]:
    """Where ``value`` (a document as JSON holds it) and ``hint`` (a TypedDict of
    :mod:`tether.document`, or a type holding some) disagree on keys: a key the TypedDict
    requires and the value lacks, or one the value has and the TypedDict does not declare,
    all the way down. ``seen`` collects the names of the TypedDicts checked."""
    if value is None:
        return []
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return shape_problems(value, kinds[0], where, seen) if len(kinds) == 1 else []
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not a {hint.__name__}"]
        if seen is not None:
            seen.add(hint.__name__)
        declared = typing.get_type_hints(hint)
        problems = [f"{where}.{k}: missing" for k in sorted(hint.__required_keys__ - set(value))]
        problems += [
            f"{where}.{k}: not in {hint.__name__}" for k in sorted(set(value) - set(declared))
        ]
        for key in sorted(set(value) & set(declared)):
            problems += shape_problems(value[key], declared[key], f"{where}.{key}", seen)
        return problems
    if origin is list:
        return [
            p
            for i, item in enumerate(value)
            for p in shape_problems(item, args[0], f"{where}[{i}]", seen)
        ]
    if origin is dict:
        return [
            p
            for k, item in value.items()
            for p in shape_problems(item, args[1], f"{where}[{k!r}]", seen)
        ]
    return []
