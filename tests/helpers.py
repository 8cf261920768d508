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


def interrupt_run(args: list[str], after: float) -> tuple[int, str]:
    """Start ``tether run ARGS`` as a real process, Ctrl-C it after ``after`` seconds (by its
    PID), and return its exit status and standard output (both bounded in time)."""
    argv = [sys.executable, "-m", "tether", "run", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(after)
        os.kill(proc.pid, signal.SIGINT)
        stdout, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout
