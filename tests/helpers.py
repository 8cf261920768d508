"""Small shared helpers for the tests."""

from __future__ import annotations

import json
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
