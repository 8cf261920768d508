"""``tether diff``: two services side by side (see :mod:`tether.diff`)."""

from __future__ import annotations

from typing import Any

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
from tether.engine.request import split_url
from tether.errors import RecordError
from tether.records import Reading, file_source
from tether.report import json_report
from tether.report.files import check_outputs
from tether.run.options import RunOptions


@click.command("diff")
@click.argument("records")
@with_flags(READ_FLAGS)
@click.option("--primary", required=True, metavar="URL", help="The service as it is.")
@click.option("--candidate", required=True, metavar="URL", help="The service to compare.")
@click.option(
    "--secondary",
    metavar="URL",
    help="A second instance of the primary: fields that differ between the two are noise.",
)
@with_flags(
    [
        own_flag(RunOptions, "concurrency", help="Records sent at once, each to every service."),
        own_flag(ClientOptions, "timeout"),
    ]
)
@click.option("--json", "json_path", metavar="PATH", help="Write the report as JSON ('-': stdout).")
@with_verbosity
def diff_command(records: str, **opts: Any) -> None:
    """Send each of RECORDS to the primary and the candidate (and the secondary) and report
    the response fields that differ, by group of records. Exit 1 when differences remain
    (after taking out the noise a secondary shows)."""
    targets = [
        opts["primary"],
        opts["candidate"],
        *([opts["secondary"]] if opts["secondary"] else []),
    ]
    # Whole bodies: they are what is compared.
    options = ClientOptions(timeout=opts["timeout"], drain_limit=WHOLE_BODY_DRAIN_LIMIT)
    how = reading(opts)
    code = diff(
        records, targets, how, opts["concurrency"], options, opts["json_path"], opts["verbosity"]
    )
    raise SystemExit(code)


def diff(
    records: str,
    targets: list[str],
    how: Reading,
    concurrency: int,
    options: ClientOptions,
    json_path: str | None,
    verbosity: Verbosity = Verbosity.NORMAL,
) -> int:
    """Send each record to each of ``targets`` (primary, candidate, then the secondary if
    there is one), ``concurrency`` records at a time; report, and decide the exit status."""
    import asyncio

    check_outputs({"--json": json_path})  # before anything is sent
    from urllib.parse import urlsplit

    from tether.diff import Differences, fields
    from tether.metrics.groups import group_key
    from tether.model import Outcome, Record
    from tether.run.fanout import fan_out

    for target in targets:
        split_url(target)
    found = Differences()
    bad: list[RecordError] = []

    def each(record: Record, outcomes: list[Outcome]) -> None:
        parts = urlsplit(record.url)
        group = group_key(
            record.method, parts.path + (f"?{parts.query}" if parts.query else ""), record.tag
        )
        third = fields(outcomes[2]) if len(outcomes) > 2 else None
        found.add(group, record.where, fields(outcomes[0]), fields(outcomes[1]), third)

    def skip(error: RecordError) -> None:
        bad.append(error)
        if verbosity > Verbosity.SILENT:
            click.echo(f"tether: skipped {error}", err=True)

    items = file_source(records, how)()
    asyncio.run(fan_out(items, targets, concurrency, options, each, skip))
    doc = found.to_dict()
    if json_path != "-":  # the JSON on stdout is the report then
        _print(doc, verbosity)
    if json_path:
        json_report.write(doc, json_path)
    if bad:
        return ExitStatus.INPUT
    return ExitStatus.FAILED if doc["differences"] else ExitStatus.OK


def _print(doc: dict[str, Any], verbosity: Verbosity) -> None:
    """The report at ``verbosity``: whole, or (-q) a line of totals and a line per field
    that differs."""
    if verbosity is Verbosity.NORMAL:
        from rich.console import Console

        from tether.report import diff_text

        Console().print(diff_text.render(doc))
    elif verbosity is Verbosity.QUIET:
        for line in quiet_lines(doc):
            click.echo(line)


def quiet_lines(doc: dict[str, Any]) -> list[str]:
    """What ``-q`` prints: the totals, then each group and field that differs. Pure."""
    lines = [f"{doc['records']:,} records compared, {doc['records_differing']:,} with differences"]
    for row in doc["differences"]:
        lines.append(f"differs: {row['group']} {row['field']} ({row['count']:,} records)")
    return lines
