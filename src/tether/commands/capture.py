"""``tether capture``: a reverse proxy that writes checked records (see
:mod:`tether.proxy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from tether.commands.clickflags import fields_flags, made, own_flag, with_flags
from tether.commands.options import ExitStatus, Verbosity, with_verbosity
from tether.engine.options import ClientOptions
from tether.errors import InputError
from tether.proxy.options import CaptureOptions
from tether.report.files import check_outputs

if TYPE_CHECKING:
    from tether.proxy.serve import Captured


@click.command("capture")
@click.option("--upstream", required=True, metavar="URL", help="The service to forward to.")
@click.option(
    "--output", "-o", required=True, metavar="PATH", help="The records file ('-': stdout)."
)
@with_flags(fields_flags(CaptureOptions))
@with_flags([own_flag(ClientOptions, "timeout")])
@with_verbosity
def capture_command(upstream: str, output: str, **opts: Any) -> None:
    """Listen as a reverse proxy in front of --upstream and write each exchange as a record
    whose expectations are its real response (as `tether record` takes them: status,
    Location, kept headers, the body as JSON or its sha256). Clients get the upstream's
    responses unchanged. Ctrl-C or SIGTERM ends it with the file whole.

    \b
    Examples:
      tether capture --listen 127.0.0.1:8081 --upstream http://127.0.0.1:8080 -o records.jsonl
      tether capture --upstream http://127.0.0.1:8080 -o - | tether run - -t http://new:8080
      tether capture --upstream http://old:8080 --mirror http://new:8080 \\
          --mirror-secondary http://old2:8080 -o records.jsonl --json diff.json
    """
    options = made(CaptureOptions, opts, upstream=upstream, output=output)
    client = ClientOptions(timeout=opts["timeout"])
    raise SystemExit(capture(options, client, opts["verbosity"]))


def capture(options: CaptureOptions, client: ClientOptions, verbosity: Verbosity) -> int:
    """Run the proxy until it is stopped; report. Exit 0, or 1 when a mirror found
    differences or the records could not be written on (a signal is how a capture is meant
    to end: its exit is 0, not 128 + the signal's number)."""
    import uvloop

    from tether.proxy.serve import capture as serve
    from tether.run.signals import STOP_SIGNALS

    if options.json_path and not options.mirrors:
        raise InputError("--json writes the mirror's report: it goes with --mirror")
    if options.json_path == "-" and options.output == "-":
        raise InputError("-o - and --json - cannot both have stdout: give one a file")
    check_outputs({"--json": options.json_path})
    say = verbosity > Verbosity.SILENT

    def told(text: str) -> None:
        if say:
            click.echo(text, err=True)

    def heard(group: str, name: str) -> None:
        told(f"mirror: differs: {group} {name}")

    done = uvloop.run(serve(options, client, told, heard, STOP_SIGNALS))
    for line in closing_lines(done, options):
        told(line)
    mirrored = _report_mirror(done, options, verbosity)
    return ExitStatus.FAILED if done.tally.write_failed is not None else mirrored


def closing_lines(done: Captured, options: CaptureOptions) -> list[str]:
    """What a capture says when it ends: records written, why others were not, the client
    side's refusals, the upstream's connections. Pure."""
    tally = done.tally
    where = "stdout" if options.output == "-" else options.output
    lines = [
        f"capture: {tally.exchanges:,} requests from {done.accepted:,} client connections; "
        f"{tally.written:,} records written to {where}"
        + (f" (stopped by {done.signal})" if done.signal else "")
    ]
    if tally.write_failed is not None:
        lines.append(f"  stopped: the records could not be written on ({tally.write_failed})")
    if tally.filtered:
        lines.append(f"  {tally.filtered:,} not recorded: outside --only/--exclude")
    for why, count in sorted(tally.not_recorded.items()):
        lines.append(f"  {count:,} not recorded: {why}")
    for kind, count in sorted(tally.upstream_failed.items()):
        lines.append(f"  {count:,} answered 502/504: the upstream failed ({kind})")
    if tally.bad_requests:
        lines.append(f"  {tally.bad_requests:,} answered 400: the request could not be forwarded")
    for status, count in sorted(done.refused.items()):
        lines.append(f"  {count:,} client requests refused with {status}")
    ledger = done.ledger
    carried = sum(ledger.carried.values())
    per = f" ({carried / ledger.opened:,.1f} per connection)" if ledger.opened else ""
    lines.append(f"  upstream: {ledger.opened:,} connections opened for {carried:,} requests{per}")
    return lines


def _report_mirror(done: Captured, options: CaptureOptions, verbosity: Verbosity) -> int:
    mirror = done.mirror
    if mirror is None:
        return ExitStatus.OK
    doc = mirror.to_dict()
    if verbosity is Verbosity.NORMAL and options.json_path != "-":
        from rich.console import Console

        from tether.report import diff_text

        Console(stderr=True).print(diff_text.render(doc))
    if options.json_path:
        from tether.report import json_report

        json_report.write(doc, options.json_path)
    return ExitStatus.FAILED if doc["differences"] else ExitStatus.OK
