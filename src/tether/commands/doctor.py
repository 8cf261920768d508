"""``tether doctor URL``: a server's keep-alive behaviour (see :mod:`tether.doctor`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from tether.commands.clickflags import Placed, with_flags
from tether.commands.options import ExitStatus, Verbosity, with_verbosity
from tether.doctor import MAX_IDLE_WAIT, MAX_REQUESTS
from tether.engine.request import split_url
from tether.flags import Flag, Kind
from tether.report import json_report
from tether.report.files import check_outputs

if TYPE_CHECKING:
    from tether.doctor.measure import OnProbe


@click.command("doctor")
@click.argument("url")
@click.option(
    "--json", "json_path", metavar="PATH", help="Write the findings as JSON ('-': stdout)."
)
@with_flags(
    [
        Placed(
            Flag(
                ("--max-requests",),
                kind=Kind.COUNT,
                help="Requests to send on one connection, at most, to find the server's limit.",
            ),
            "max_requests",
            MAX_REQUESTS,
        ),
        Placed(
            Flag(
                ("--max-idle-wait",),
                kind=Kind.SECONDS,
                help="Time to wait, at most, for the server to close an idle connection (90s, 2m).",
            ),
            "max_idle_wait",
            MAX_IDLE_WAIT,
        ),
    ]
)
@with_verbosity
def doctor_command(
    url: str, json_path: str | None, max_requests: int, max_idle_wait: float, verbosity: Verbosity
) -> None:
    """Measure how the server at URL treats keep-alive connections, and what follows for a
    client's settings. Each probe is shown on stderr as it runs."""
    raise SystemExit(doctor(url, json_path, max_requests, max_idle_wait, verbosity))


def doctor(
    url: str,
    json_path: str | None,
    max_requests: int,
    max_idle_wait: float,
    verbosity: Verbosity = Verbosity.NORMAL,
) -> int:
    """Examine, explain, and decide the exit status (1 when the server could not be asked)."""
    import asyncio

    from tether.doctor.explain import report
    from tether.doctor.measure import examine

    split_url(url)
    check_outputs({"--json": json_path})  # before the probes, which can take minutes
    with _progress(verbosity) as on_probe:
        found = asyncio.run(examine(url, max_requests, max_idle_wait, on_probe))
    doc = report(found)
    if json_path != "-":  # the JSON on stdout is the report then
        from tether.report import doctor_text

        if verbosity is Verbosity.NORMAL:
            from rich.console import Console

            Console().print(doctor_text.render(doc))
        elif verbosity is Verbosity.QUIET:
            click.echo(doctor_text.one_line(doc))
    if json_path:
        json_report.write(doc, json_path)
    return ExitStatus.FAILED if doc["error"] else ExitStatus.OK


@contextlib.contextmanager
def _progress(verbosity: Verbosity) -> Iterator[OnProbe | None]:
    """What shows the probes as they run: on stderr (never among stdout's JSON), and only
    at the normal verbosity (-q and --silent show none)."""
    if verbosity is not Verbosity.NORMAL:
        yield None
        return
    from rich.console import Console

    from tether.report.doctor_text import ProbeProgress

    with ProbeProgress(Console(stderr=True)) as shown:
        yield shown
