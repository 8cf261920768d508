"""``tether report``: any report from results files (see :mod:`tether.results.rebuild`)."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from tether.commands.clickflags import fields_flags, free_flags, with_flags
from tether.commands.options import Verbosity, exit_status, with_verbosity
from tether.commands.run import RunCommand
from tether.document import SummaryDocument
from tether.flags import flags_of
from tether.gates import Gates
from tether.judge import judged
from tether.report import json_report
from tether.run import signals
from tether.thresholds import parse_threshold

if TYPE_CHECKING:
    from collections.abc import Callable

    from tether.metrics.summary import Summary


# The gates and thresholds as tether run declares them (one declaration): the same results
# judged by the same gates give the same verdict in either command. (--fail-on-leak reads the
# watch the results file's closing line kept.)
JUDGE_FLAGS = [
    *free_flags(*(flag for field, flag in flags_of(RunCommand) if field.name == "thresholds")),
    *fields_flags(Gates),
]


@click.command("report")
@click.argument("results", nargs=-1, required=True)
@click.option(
    "--format",
    "report_format",
    type=click.Choice(["text", "json", "junit", "html", "markdown", "csv"]),
    default="text",
    show_default=True,
)
@click.option("--output", "-o", metavar="PATH", default="-", help="Where to write ('-': stdout).")
@with_flags(JUDGE_FLAGS)
@with_verbosity
def report_command(
    results: tuple[str, ...],
    report_format: str,
    output: str,
    threshold: tuple[str, ...],
    min_reuse: float | None,
    max_connections: int | None,
    fail_on_leak: bool,
    verbosity: Verbosity,
) -> None:
    """Render a report from RESULTS files (written with --results; several merge), one line
    at a time, in bounded memory. Judged as the run was, by the same gates and thresholds when
    given the same ones, and exits as it did (1 on mismatches or errors, 3 on a failed gate or
    threshold). -q and --silent shorten only a text report on stdout: a file, or another
    format, is the output asked for and is written whole. csv: one row per request, with the
    results file's keys as its columns."""
    gates = Gates(min_reuse, max_connections, fail_on_leak)
    status = rerender(list(results), report_format, output, list(threshold), verbosity, gates)
    raise SystemExit(status)


def rerender(
    paths: list[str],
    fmt: str,
    output: str,
    thresholds: list[str],
    verbosity: Verbosity = Verbosity.NORMAL,
    gates: Gates | None = None,
) -> int:
    """Rebuild the summary from results files, judge it as ``tether run`` does, and write it
    in ``fmt``."""
    from tether.results import rebuild

    asked = [parse_threshold(text) for text in thresholds]
    rebuild.readable(paths)
    said = None if verbosity is Verbosity.SILENT else _say_cut
    # CSV rows are written as the lines are read: one pass over the files makes both.
    summary = _write_csv(paths, output, said) if fmt == "csv" else rebuild.rebuild(paths, cut=said)
    doc = judged(summary, gates or Gates(), asked)
    gate_failures = doc["gate_failures"]
    if fmt == "json":
        json_report.write(doc, output)
    elif fmt == "text" and output == "-" and verbosity is not Verbosity.NORMAL:
        _print_quiet(doc, gate_failures, verbosity)
    elif fmt == "text":
        _write_text(doc, gate_failures, output)
    elif fmt != "csv":  # a CSV is written as the files are read
        _write_page(doc, fmt, output)
    return exit_status(doc, gate_failures)


def _say_cut(path: str, number: int) -> None:
    """A results file's last line, cut mid-write when its run was killed, is left out."""
    click.echo(
        f"tether: {path}:{number}: the last line is cut short (the run was stopped "
        "mid-write): left out",
        err=True,
    )


def _write_csv(
    paths: list[str], output: str, cut: Callable[[str, int], None] | None = None
) -> Summary:
    """Each request of the results files at ``paths`` as a CSV row, to ``output``; the
    summary of the runs, rebuilt in the same pass (``cut`` told of a last line cut short)."""
    import csv

    from tether.report import csv_report
    from tether.results import rebuild

    try:
        with contextlib.ExitStack() as stack:
            out = sys.stdout
            if output != "-":  # newline="": the csv module ends its rows itself
                out = stack.enter_context(open(output, "w", encoding="utf-8", newline=""))
            rows = csv.writer(out)
            rows.writerow(csv_report.CSV_COLUMNS)
            row = csv_report.csv_row
            return rebuild.rebuild(paths, each=lambda line: rows.writerow(row(line)), cut=cut)
    except BrokenPipeError:
        if output != "-":
            raise
        _stdout_closed()
    except OSError as exc:  # a full disk, often seen only as the file closes: named
        raise OSError(exc.errno, exc.strerror, output) from None


def _stdout_closed() -> NoReturn:
    """What reads stdout has stopped (``| head``): stop at once and quietly, as a program
    that SIGPIPE ends does, with its exit status. Stdout goes to /dev/null, so that the
    interpreter's last flush does not fail again."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(signals.exit_status("SIGPIPE"))


def _write_text(doc: SummaryDocument, gate_failures: list[str], output: str) -> None:
    from rich.console import Console

    from tether.report import text

    with contextlib.ExitStack() as stack:
        out = None if output == "-" else stack.enter_context(open(output, "w", encoding="utf-8"))
        text.print_summary(doc, gate_failures, Console(file=out, width=100 if out else None))


def _print_quiet(doc: SummaryDocument, gate_failures: list[str], verbosity: Verbosity) -> None:
    from tether.report import text

    if verbosity is Verbosity.QUIET:
        for line in text.quiet_lines(doc, gate_failures):
            click.echo(line)


def _write_page(doc: SummaryDocument, fmt: str, output: str) -> None:
    from tether.report import html, markdown

    if fmt == "junit":
        from tether.report import junit

        data = junit.render(doc)
    else:
        data = (html.render(doc) if fmt == "html" else markdown.render(doc)).encode("utf-8")
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        with open(output, "wb") as out:
            out.write(data)
