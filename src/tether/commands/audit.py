"""``tether audit -- CMD``: another program's connections (see :mod:`tether.audit`)."""

from __future__ import annotations

from typing import Any

import click

from tether.commands.options import ExitStatus, Verbosity, with_verbosity
from tether.errors import InputError
from tether.report import json_report
from tether.report.files import check_outputs


@click.command(
    "audit", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--json", "json_path", metavar="PATH", help="Write the audit as JSON ('-': stdout).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@with_verbosity
def audit_command(json_path: str | None, verbosity: Verbosity, command: tuple[str, ...]) -> None:
    """Run COMMAND (a Python program: tether audit -- python script.py) and report the HTTP
    connections it opened and the requests it sent over them, per host and port.

    Exits with the program's status when it failed; else 3 when connections were not reused."""
    raise SystemExit(audit(list(command), json_path, verbosity))


def audit(
    command: list[str], json_path: str | None, verbosity: Verbosity = Verbosity.NORMAL
) -> int:
    """Run the audited program, report, and decide the exit status."""
    from tether.audit.runner import run_audited

    check_outputs({"--json": json_path})  # before the audited program runs
    try:
        result = run_audited(command)
    except FileNotFoundError:
        raise InputError(f"command not found: {command[0]!r}") from None
    doc = result.to_dict()
    if verbosity is Verbosity.NORMAL:
        from rich.console import Console

        from tether.report import audit_text

        Console(stderr=json_path == "-").print(audit_text.render(doc))
    elif verbosity is Verbosity.QUIET:
        for line in quiet_lines(doc):
            click.echo(line, err=json_path == "-")
    if json_path:
        json_report.write(doc, json_path)
    if result.exit_code:
        return result.exit_code
    return ExitStatus.GATE if doc["verdicts"] else ExitStatus.OK


def quiet_lines(doc: dict[str, Any]) -> list[str]:
    """What ``-q`` prints: the audit in one line, each peer not reused, each sent too few
    requests to judge, and what the audit could not see (a pass it could not see into is no
    pass)."""
    from tether.audit.verdict import overall, unjudged

    return [overall(doc["peers"]), *doc["verdicts"], *unjudged(doc["peers"]), *doc["notes"]]
