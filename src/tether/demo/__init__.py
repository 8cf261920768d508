"""The embedded demo: a small URL shortener service and records to replay against it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["records_path"]

RECORDS_FILE = "records.jsonl"


def records_path() -> Path:
    """Where the bundled ``records.jsonl`` is (installed as package data)."""
    found = resources.files(__name__) / RECORDS_FILE
    if isinstance(found, Path):
        return found
    return Path(__file__).with_name(RECORDS_FILE)  # pragma: no cover - zipped installs
