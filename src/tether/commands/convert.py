"""``tether convert``: any input format as native records."""

from __future__ import annotations

import contextlib
import sys
from typing import IO, Any

import click

from tether.commands.clickflags import with_flags
from tether.commands.options import (
    READ_FLAGS,
    ExitStatus,
    Verbosity,
    reading,
    with_verbosity,
)
from tether.errors import RecordError
from tether.records import Reading, file_source


@click.command("convert")
@click.argument("records")
@with_flags(READ_FLAGS)
@click.option("--to", "to", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("--output", "-o", metavar="PATH", default="-", help="Where to write ('-': stdout).")
@with_verbosity
def convert_command(records: str, to: str, output: str, **opts: Any) -> None:
    """Write RECORDS (any format tether reads) as native JSONL records. Bad entries are
    reported on stderr with their line and skipped; the exit status is then 2. It prints
    only those, so -q changes nothing; --silent drops them (the records are still written,
    to stdout too: they are the output asked for)."""
    raise SystemExit(convert(records, output, reading(opts), opts["verbosity"]))


def convert(
    records: str, output: str, how: Reading, verbosity: Verbosity = Verbosity.NORMAL
) -> int:
    """Convert, reporting bad entries as they come; 2 when there were any."""
    import json

    from tether.records.jsonl import to_object

    bad = 0
    stream: IO[str]
    with contextlib.ExitStack() as stack:
        stream = (
            sys.stdout
            if output == "-"
            else stack.enter_context(open(output, "w", encoding="utf-8"))
        )
        for item in file_source(records, how)():
            if isinstance(item, RecordError):
                bad += 1
                if verbosity > Verbosity.SILENT:
                    click.echo(f"tether: skipped {item}", err=True)
                continue
            stream.write(json.dumps(to_object(item), ensure_ascii=False) + "\n")
    return ExitStatus.INPUT if bad else ExitStatus.OK
