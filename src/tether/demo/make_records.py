"""Generate the bundled ``records.jsonl``: one GET record per demo code, in order.

Each line expects ``302`` and the code's ``Location`` from the demo table, except the codes
in :data:`WRONG`, whose expectation is deliberately stale so the demo has mismatches to
catch. Regenerate with ``python -m tether.demo.make_records`` (``--check`` only compares).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from tether.demo import records_path
from tether.demo.server import DEMO_CODES, demo_target

WRONG: Final = frozenset({100, 500, 900})
"""Indices whose record expects a stale ``Location`` (``.../page/old-<i>``)."""


def expected_location(i: int) -> str:
    """The ``Location`` record ``i`` expects: the real target, or a stale one for WRONG."""
    return f"https://example.org/page/old-{i}" if i in WRONG else demo_target(i)


def records_lines() -> Iterator[str]:
    """The lines of ``records.jsonl``, in order, without their trailing newlines."""
    for i in range(DEMO_CODES):
        record = {
            "method": "GET",
            "url": f"/r/c{i:04d}",
            "expect": {"status": 302, "headers": {"Location": expected_location(i)}},
        }
        yield json.dumps(record)


def records_text() -> str:
    """The whole file: every line followed by a newline."""
    return "".join(line + "\n" for line in records_lines())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tether.demo.make_records", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--output", type=Path, default=None, help="default: the bundled file")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    args = parser.parse_args(argv)
    path: Path = args.output or records_path()
    text = records_text()
    if args.check:
        same = path.is_file() and path.read_text(encoding="utf-8") == text
        print(f"{path}: {'up to date' if same else 'differs'}")
        return 0 if same else 1
    path.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
