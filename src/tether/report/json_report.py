"""The summary document as JSON (``--json PATH``, or ``-`` for standard output)."""

from __future__ import annotations

import json
import sys
from typing import Any


def dumps(doc: dict[str, Any]) -> str:
    """The document as indented JSON text."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write(doc: dict[str, Any], path: str) -> None:
    """Write the document to ``path`` (``-`` is standard output)."""
    text = dumps(doc)
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
