"""Small shared helpers for the tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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
