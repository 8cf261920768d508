"""What the commands share: exit codes, option types, the options that say how to read a
records file, how much to print (--quiet, --silent), and the exit status a finished run calls
for."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar, cast

import click

from tether.document import SummaryDocument
from tether.engine.options import ClientOptions, default_of
from tether.records import FORMATS, Reading
from tether.run import signals
from tether.run.options import RunOptions
from tether.thresholds import parse_duration


class ExitStatus(IntEnum):
    """The process exit codes."""

    OK = 0
    FAILED = 1
    INPUT = 2
    GATE = 3
    INTERRUPTED = 130


def parse_size(value: str) -> int:
    """``262144``, ``256k``, ``1m``, ``1g`` (powers of 1024) to bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text_ = value.strip().lower().removesuffix("b").removesuffix("i")
    scale = units.get(text_[-1:], 1)
    number = text_[:-1] if scale != 1 else text_
    try:
        size = int(float(number) * scale)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size like 262144, 256k or 1m") from None
    if size < 0:
        raise click.BadParameter("a size cannot be negative")
    return size


class Size(click.ParamType):  # type: ignore[type-arg]
    """A byte size with an optional k/m/g suffix."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        return value if isinstance(value, int) else parse_size(str(value))


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A time, as Go's time.ParseDuration writes it (``10s``, ``500ms``, ``1m30s``, ``2h``;
    :func:`tether.thresholds.parse_duration`), or a number of seconds (on the command line
    or in tether.toml, as it always was), to seconds. Never negative; with ``positive``,
    never 0 either (where 0 would mean no time at all, rather than none set)."""

    name = "duration"

    def __init__(self, positive: bool = False) -> None:
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        seconds = _seconds(value)
        if seconds is None:
            self.fail(
                f"{value!r} is not a duration: give seconds (10, 0.5) or a time with units "
                "(ms, s, m, h) such as 10s, 500ms or 1m30s",
                param,
                ctx,
            )
        if seconds < 0:
            self.fail(f"{value!r}: a duration cannot be negative", param, ctx)
        if self.positive and seconds == 0:
            self.fail(f"{value!r}: give a duration longer than 0", param, ctx)
        return seconds


def _seconds(value: Any) -> float | None:
    """``value`` in seconds: a number as it is (a default, or a number in tether.toml), text
    as a duration; None for what is neither, or is no finite time."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value) if isinstance(value, (int, float)) else parse_duration(str(value))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


F = TypeVar("F", bound=Callable[..., Any])

POSITIVE = click.IntRange(min=1)
SECONDS = Duration()
POSITIVE_SECONDS = Duration(positive=True)

# How to read a records file (run and convert): (flags, keyword arguments for click.option).
READ_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--format", "records_format"),
        {
            "type": click.Choice(FORMATS),
            "help": "The records' format [default: from the file's name, else its first line].",
        },
    ),
    (
        ("--expect-from-har", "--expect-recorded", "expect_recorded"),
        {
            "is_flag": True,
            "help": "Expect the recorded responses: HAR status and Location, a log's status.",
        },
    ),
    (
        ("--only-origin",),
        {"metavar": "ORIGIN", "help": "HAR: keep only entries for this scheme://host[:port]."},
    ),
    (
        ("--log-format",),
        {"metavar": "FORMAT", "help": "Access logs: the nginx log_format they were written in."},
    ),
]


# What the commands that send records for their own ends share (record, diff): how many at
# once and how long one may take, with the run's and the engine's defaults.
SEND_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--concurrency", "-c"),
        {"type": POSITIVE, "default": default_of(RunOptions, "concurrency")},
    ),
    (("--timeout",), {"type": SECONDS, "default": default_of(ClientOptions, "timeout")}),
]


def with_options(options: list[tuple[tuple[str, ...], dict[str, Any]]]) -> Callable[[F], F]:
    def add(func: F) -> F:
        for flags, kwargs in reversed(options):
            func = click.option(*flags, **({"show_default": "default" in kwargs} | kwargs))(func)
        return func

    return add


class Verbosity(IntEnum):
    """How much a command prints, the same on every command. The files it was asked for
    (``--json``, ``-o``, ``--junit``, ...; ``-`` too) are written whatever it is: they are
    what was asked, not talk."""

    SILENT = 0  # nothing: the exit status says how it went
    QUIET = 1  # no progress; one line of result, then each thing that failed, a line each
    NORMAL = 2  # progress while it runs, then the whole report


# --quiet and --silent, on every command (with_verbosity).
VERBOSITY_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--quiet", "-q"),
        {"is_flag": True, "help": "No progress: one line of result, and what failed."},
    ),
    (
        ("--silent",),
        {
            "is_flag": True,
            "help": "Print nothing: the exit status says how it went (files asked for are "
            "still written).",
        },
    ),
]


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

    return with_options(VERBOSITY_OPTIONS)(cast(F, command))


def reading(opts: dict[str, Any]) -> Reading:
    """How to read the records, from the command's options."""
    return Reading(
        opts["records_format"], opts["expect_recorded"], opts["only_origin"], opts["log_format"]
    )


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
