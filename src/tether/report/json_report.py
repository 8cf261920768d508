"""A report document as JSON (``--json PATH``, or ``-`` for standard output): the summary's
(:class:`tether.document.SummaryDocument`), or another command's."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping


def dumps(doc: Mapping[str, object]) -> str:
    """The document as indented JSON text."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write(doc: Mapping[str, object], path: str) -> None:
    """Write the document to ``path`` (``-`` is standard output)."""
    text = dumps(doc)
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        # A full disk is seen on the close's flush, with no file named: name it.
        exc.filename = exc.filename or path
        raise
