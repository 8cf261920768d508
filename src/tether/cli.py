"""The command line: the table of commands (each in :mod:`tether.commands`), and
``main(argv) -> exit status``, the only place where exceptions become exit codes:

- 0: every response matched its record;
- 1: mismatches or failed requests;
- 2: a usage or input error (also: malformed records were skipped);
- 3: a gate (``--min-reuse``, ``--max-connections``, ``--threshold``, ``--fail-on-leak``) failed;
- 130: interrupted (Ctrl-C); the summary of what was done is still printed and written;
  143 and 129 the same for SIGTERM and SIGHUP (:mod:`tether.run.signals`).
"""

from __future__ import annotations

import sys

import click

from tether.commands import audit, capture, convert, diff, doctor, record, run
from tether.commands import report as rerender
from tether.commands.options import ExitStatus
from tether.errors import InputError


@click.group()
@click.version_option(package_name="tether")
def cli() -> None:
    """Replay HTTP request records, check every response, account for every connection."""


@cli.command("demo")
@click.option("--records", "records_path", help="Records to replay [default: the bundled ones].")
def demo_command(records_path: str | None) -> None:
    """Run the bundled demo: a leaky harness and tether, side by side, on a demo service."""
    from rich.console import Console

    from tether.demo.showcase import run_demo

    raise SystemExit(run_demo(records_path, Console()))


@cli.command("serve-demo")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
def serve_demo_command(port: int) -> None:
    """Serve the demo service on 127.0.0.1 until Ctrl-C."""
    from tether.demo.server import main as serve

    raise SystemExit(serve(["--port", str(port)]))


for _command in (
    run.run_command,
    audit.audit_command,
    capture.capture_command,
    convert.convert_command,
    diff.diff_command,
    doctor.doctor_command,
    record.record_command,
    rerender.report_command,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv``; return the exit status, never raise."""
    try:
        cli.main(args=argv, prog_name="tether", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitStatus.OK
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return ExitStatus.INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return ExitStatus.INPUT
    except InputError as exc:
        click.echo(f"tether: {exc}", err=True)
        return ExitStatus.INPUT
    except OSError as exc:  # an output file that cannot be written
        click.echo(f"tether: {exc.filename or ''}: {exc.strerror or exc}", err=True)
        return ExitStatus.INPUT
    return ExitStatus.OK


def entry() -> None:
    """The console script."""
    sys.exit(main())
