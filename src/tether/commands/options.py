"""What the commands share: exit codes, the flags that say how to read a records file, how
much to print (--quiet, --silent), and the exit status a finished run calls for. The click
options themselves are made in :mod:`tether.commands.clickflags`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar, cast

from tether.commands.clickflags import fields_flags, free_flags, made, with_flags
from tether.document import SummaryDocument
from tether.flags import Flag, Kind
from tether.records import Reading
from tether.run import signals

F = TypeVar("F", bound=Callable[..., Any])


class ExitStatus(IntEnum):
    """The process exit codes."""

    OK = 0
    FAILED = 1
    INPUT = 2
    GATE = 3
    INTERRUPTED = 130


# How to read a records file (run and convert): Reading's flags.
READ_FLAGS = fields_flags(Reading)


class Verbosity(IntEnum):
    """How much a command prints, the same on every command. The files it was asked for
    (``--json``, ``-o``, ``--junit``, ...; ``-`` too) are written whatever it is: they are
    what was asked, not talk."""

    SILENT = 0  # nothing: the exit status says how it went
    QUIET = 1  # no progress; one line of result, then each thing that failed, a line each
    NORMAL = 2  # progress while it runs, then the whole report


# --quiet and --silent, on every command (with_verbosity).
VERBOSITY_FLAGS = free_flags(
    Flag(
        ("--quiet", "-q"),
        kind=Kind.SWITCH,
        help="No progress: one line of result, and what failed.",
    ),
    Flag(
        ("--silent",),
        kind=Kind.SWITCH,
        help="Print nothing: the exit status says how it went (files asked for are still written).",
    ),
)


def verbosity(quiet: bool, silent: bool) -> Verbosity:
    """The level the two flags ask for; --silent wins over --quiet (both ask for less)."""
    if silent:
        return Verbosity.SILENT
    return Verbosity.QUIET if quiet else Verbosity.NORMAL


def with_verbosity(func: F) -> F:
    """Add --quiet and --silent to a command, handed to it as one ``verbosity`` argument.
    The flags stay two parameters named quiet and silent, so a config file can set them."""

    @functools.wraps(func)
    def command(*args: Any, quiet: bool, silent: bool, **kwargs: Any) -> Any:
        return func(*args, verbosity=verbosity(quiet, silent), **kwargs)

    return with_flags(VERBOSITY_FLAGS)(cast(F, command))


def reading(opts: dict[str, Any]) -> Reading:
    """How to read the records, from the command's options."""
    return made(Reading, opts, url_request=None)


def nothing_to_send(doc: SummaryDocument) -> bool:
    """The run sent nothing because the records held nothing to send (not one was bad, and
    nothing stopped it): a usage error, never a green run that tested nothing."""
    return not doc["requests"] and not doc["input_errors"] and not doc["interrupted"]


def exit_status(doc: SummaryDocument, gate_failures: list[str]) -> int:
    """The exit code for a finished run (the codes are listed in :mod:`tether.cli`)."""
    if doc["interrupted"]:
        return signals.exit_status(doc.get("signal"))  # 130 for Ctrl-C
    if doc.get("partial"):
        return ExitStatus.FAILED  # a cluster worker was lost: the run is not all there
    if doc["input_errors"] or nothing_to_send(doc):
        return ExitStatus.INPUT
    if gate_failures:
        return ExitStatus.GATE
    if doc["mismatches"] or doc["errors"]:
        return ExitStatus.FAILED
    if doc.get("unwritten"):
        return ExitStatus.FAILED  # an output a later step needs is missing: not a green run
    return ExitStatus.OK
