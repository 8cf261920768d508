"""What the commands share: exit codes, option types, the options that say how to read a
records file, and the exit status a finished run calls for."""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar

import click

from tether.document import SummaryDocument
from tether.engine.options import ClientOptions, default_of
from tether.records import FORMATS, Reading
from tether.run import signals
from tether.run.options import RunOptions


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


F = TypeVar("F", bound=Callable[..., Any])

POSITIVE = click.IntRange(min=1)
SECONDS = click.FloatRange(min=0)
POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)

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
