"""``tether doctor URL``: a server's keep-alive behaviour (see :mod:`tether.doctor`)."""

from __future__ import annotations

import click

from tether.commands.options import POSITIVE, SECONDS, ExitStatus
from tether.doctor import MAX_IDLE_WAIT, MAX_REQUESTS
from tether.engine.request import split_url
from tether.report import json_report
from tether.report.files import check_outputs


@click.command("doctor")
@click.argument("url")
@click.option(
    "--json", "json_path", metavar="PATH", help="Write the findings as JSON ('-': stdout)."
)
@click.option(
    "--max-requests",
    type=POSITIVE,
    default=MAX_REQUESTS,
    show_default=True,
    help="Requests to send on one connection, at most, to find the server's limit.",
)
@click.option(
    "--max-idle-wait",
    type=SECONDS,
    default=MAX_IDLE_WAIT,
    show_default=True,
    help="Seconds to wait, at most, for the server to close an idle connection.",
)
def doctor_command(
    url: str, json_path: str | None, max_requests: int, max_idle_wait: float
) -> None:
    """Measure how the server at URL treats keep-alive connections, and what follows for a
    client's settings."""
    raise SystemExit(doctor(url, json_path, max_requests, max_idle_wait))


def doctor(url: str, json_path: str | None, max_requests: int, max_idle_wait: float) -> int:
    """Examine, explain, and decide the exit status (1 when the server could not be asked)."""
    import asyncio

    from tether.doctor.explain import report
    from tether.doctor.measure import examine

    split_url(url)
    check_outputs({"--json": json_path})  # before the probes, which can take minutes
    doc = report(asyncio.run(examine(url, max_requests, max_idle_wait)))
    if json_path != "-":
        from rich.console import Console

        from tether.report import doctor_text

        Console().print(doctor_text.render(doc))
    if json_path:
        json_report.write(doc, json_path)
    return ExitStatus.FAILED if doc["error"] else ExitStatus.OK
