"""``tether record``: golden capture (see :mod:`tether.capture`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from tether.commands.clickflags import own_flag, with_flags
from tether.commands.options import (
    READ_FLAGS,
    ExitStatus,
    Verbosity,
    reading,
    with_verbosity,
)
from tether.engine.options import WHOLE_BODY_DRAIN_LIMIT, ClientOptions
from tether.model import Outcome
from tether.proxy.options import CaptureOptions
from tether.records import Items, Reading, file_source
from tether.run.feed import RecordSource
from tether.run.options import RunOptions
from tether.run.session import run

if TYPE_CHECKING:
    from tether.capture import Capture


@click.command("record")
@click.argument("records")
@with_flags(READ_FLAGS)
@with_flags([own_flag(RunOptions, "target", help="The known-good service's base URL.")])
@click.option("--output", "-o", metavar="PATH", required=True, help="The golden records file.")
@with_flags([own_flag(CaptureOptions, "keep_header"), own_flag(CaptureOptions, "ignore_json_path")])
@with_flags([own_flag(RunOptions, "concurrency"), own_flag(ClientOptions, "timeout")])
@with_verbosity
def record_command(records: str, **opts: Any) -> None:
    """Replay RECORDS against a known-good service and write them to --output with their
    expectations taken from its responses: status, Location, kept headers, and the body (JSON
    without the ignored fields, else its sha256). Then `tether run` the output against a new
    service. Records that got no response are reported and left out (exit 1). It prints
    only what failed and a line of result, so -q changes nothing; --silent drops both."""
    from tether.capture import Capture  # here: only a capture needs it

    capture = Capture.from_options(opts["keep_header"], opts["ignore_json_path"])
    asked = RunOptions(target=opts["target"], concurrency=opts["concurrency"])
    # The whole body is read: it is what the expectation is taken from.
    options = ClientOptions(timeout=opts["timeout"], drain_limit=WHOLE_BODY_DRAIN_LIMIT)
    code = record(
        records, opts["output"], capture, reading(opts), asked, options, opts["verbosity"]
    )
    raise SystemExit(code)


def record(
    records: str,
    output: str,
    capture: Capture,
    how: Reading,
    asked: RunOptions,
    options: ClientOptions,
    verbosity: Verbosity = Verbosity.NORMAL,
) -> int:
    """Capture, writing each record to ``output`` as its response comes in (an interrupted
    capture keeps what it has)."""
    import json

    from tether.capture import expectations
    from tether.records.jsonl import to_object

    source = _keeping_bodies(file_source(records, how))
    say = verbosity > Verbosity.SILENT
    missed = 0
    with open(output, "w", encoding="utf-8") as out:

        def keep(outcome: Outcome, mismatches: list[Any]) -> None:
            nonlocal missed
            expect = expectations(outcome, capture)
            if expect is None:
                missed += 1
                why = outcome.error or "body over the drain limit"
                if say:
                    click.echo(f"tether: {outcome.record.where}: not captured: {why}", err=True)
                return
            golden = dataclasses.replace(outcome.record, expect=expect)
            out.write(json.dumps(to_object(golden), ensure_ascii=False) + "\n")

        summary = run(source, asked, options, sink=keep, handle_sigint=True)
    if say:
        click.echo(
            f"captured {summary.requests - missed:,} records to {output}"
            + (f" ({missed:,} not captured)" if missed else ""),
            err=True,
        )
    if summary.interrupted:
        return ExitStatus.INTERRUPTED
    if summary.input_errors:
        return ExitStatus.INPUT
    return ExitStatus.FAILED if missed else ExitStatus.OK


def _keeping_bodies(source: RecordSource) -> RecordSource:
    """The records with their own expectations swapped for one that keeps the body."""
    from tether.model import KEEP_BODY, Record

    def open_records() -> Items:
        for item in source():
            yield dataclasses.replace(item, expect=KEEP_BODY) if isinstance(item, Record) else item

    return open_records
