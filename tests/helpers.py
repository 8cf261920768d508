"""Small shared helpers for the tests."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tether.engine import compiled
from tether.engine.options import ClientOptions
from tether.metrics.summary import Summary
from tether.metrics.tally import Tally
from tether.model import Counted, Record
from tether.run.options import RunOptions
from tether.run.session import run


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


def interrupt_run(
    args: list[str], sending: Callable[[], bool], signum: int = signal.SIGINT
) -> tuple[int, str]:
    """Start ``tether run ARGS`` as a real process, Ctrl-C it (or send it ``signum``; by its
    PID) once ``sending()`` says its requests are arriving, and return its exit status and
    standard output. Waiting on the server rather than a clock: a slow machine may take
    seconds to start Python."""
    argv = [sys.executable, "-m", "tether", "run", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not sending() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.3)
        os.kill(proc.pid, signum)
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


# --- two runs that must count alike ----------------------------------------------------------

# What timing decides: latencies, rates, the timeline, and in the open model the requests
# sent late and the most in flight at once.
TIMING = ("duration_s", "rate", "latency_ms", "latency_distribution", "latency_histogram")
TIMING += ("service_ms", "timeline")
OPEN_TIMING = ("late", "peak_inflight")
# How many connections a run opens with more than one request in flight is a matter of
# timing too: a worker whose connection closed takes one left idle by a worker that has
# finished, if one is by then; in the open model a request due while every connection is
# busy opens one. Everything else about the connections (closes included) is not.
SCHEDULED = ("opened", "reused", "peak_open", "requests_per_connection", "reuse_fraction")


def comparable(summary: Summary, sequential: bool, open_model: bool) -> dict[str, Any]:
    """The summary's whole document, less only what timing decides; with the number of
    latencies each histogram holds (their values are timing)."""
    doc: dict[str, Any] = json.loads(json.dumps(summary.to_dict()))  # as --json writes it
    for key in TIMING + (OPEN_TIMING if open_model else ()):
        del doc[key]
    del doc["engine"]  # which path counted is what the tests compare
    for group in doc["groups"]:
        del group["latency_ms"]
    connections = doc["connections"]
    # Every connection opened is closed, for one reason or another, by the end of the run,
    # and every request went out on a new connection or on one reused.
    assert sum(connections["closed"].values()) == connections["opened"]
    if not (doc["errors"] or doc["redirects_followed"]):  # (those count otherwise)
        assert connections["opened"] + connections["reused"] == doc["requests"]
    if not sequential:
        for key in SCHEDULED:
            del connections[key]
        # What the run left open, closed at its end, is what it opened less what closed.
        connections["closed"].pop("shutdown", None)
        # Which 20 mismatches are the examples depends on the order responses come in (and
        # so how often the ones left out happened; not how many distinct ones they are).
        doc["mismatch_examples"] = len(doc["mismatch_examples"])
        doc["mismatch_examples_omitted"] = doc["mismatch_examples_omitted"]["distinct"]
    doc["latency counts"] = [summary.latency.count] + [
        g.latency.count for _, g in sorted(summary.groups.by_key.items())
    ]
    return doc


def on_a_terminal(
    args: list[str], env: dict[str, str], stdout_too: bool = False
) -> tuple[str, str]:
    """Run ``tether *args`` with its stderr (and its stdout too, with ``stdout_too``; else a
    pipe) on a pseudo-terminal, 30 s at most: what the terminal showed, and the piped
    stdout."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", *args],
        stdout=slave if stdout_too else subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    shown = bytearray()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the program has closed its end
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        stdout, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return shown.decode(errors="replace"), (stdout or b"").decode()


def run_on(
    path: str, recs: Sequence[Record], asked: RunOptions, options: ClientOptions | None = None
) -> tuple[Summary, int]:
    """The records run on ``path`` ("compiled" or "python"); with how many responses the
    compiled path counted itself, so that a run it took no part in cannot pass for it."""
    counted = 0
    add_counted = Tally.add_counted

    def spy(self: Tally, counts: Counted) -> None:
        nonlocal counted
        counted += counts["requests"]
        add_counted(self, counts)

    Tally.add_counted = spy  # type: ignore[method-assign,assignment]
    try:
        summary = run(
            list(recs).__iter__, dataclasses.replace(asked, compiled=path == "compiled"), options
        )
    finally:
        Tally.add_counted = add_counted  # type: ignore[method-assign]
    return summary, counted


def both(
    recs: list[Record],
    asked: RunOptions,
    options: ClientOptions | None = None,
    between: Callable[[], None] | None = None,
) -> tuple[Summary, Summary, int]:
    """The records run compiled and on the Python path (``between`` called between the
    two: a server that must start again as it was); with how many responses the compiled
    path counted itself (so that a run it never took part in cannot pass)."""
    fast, counted = run_on("compiled", recs, asked, options)
    if between is not None:
        between()
    slow, _ = run_on("python", recs, asked, options)
    return fast, slow, counted


def pure() -> bool:
    """This pass of the suite runs the Python path only (TETHER_PURE_PYTHON)."""
    return compiled.native is None
