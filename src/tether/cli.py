"""The command line. ``main(argv) -> exit status`` is the only place where exceptions become
exit codes:

- 0: every response matched its record;
- 1: mismatches or failed requests;
- 2: a usage or input error (also: malformed records were skipped);
- 3: a gate (``--min-reuse``, ``--max-connections``, ``--threshold``, ``--fail-on-leak``) failed;
- 130: interrupted (Ctrl-C); the summary of what was done is still printed and written.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import click

from tether.commands import audit, convert, diff, doctor, record
from tether.commands import report as rerender
from tether.commands.options import (
    POSITIVE,
    POSITIVE_SECONDS,
    READ_OPTIONS,
    SECONDS,
    ExitStatus,
    Size,
    exit_status,
    reading,
    with_options,
)
from tether.engine.options import DEFAULT_DRAIN_LIMIT, ClientOptions
from tether.engine.request import split_url
from tether.errors import InputError
from tether.gates import Gates, failures
from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome
from tether.records import file_source
from tether.report import json_report
from tether.report.results import ResultsWriter
from tether.run.feed import validate
from tether.run.options import RunOptions
from tether.run.pacer import Schedule, parse_pace, parse_rate
from tether.run.session import OutcomeSink, ProgressView, run
from tether.secrets import secret_names
from tether.thresholds import evaluate, parse_threshold
from tether.thresholds import failures as threshold_failures
from tether.watch import parse_source

if TYPE_CHECKING:
    from tether.report.junit import PerRecord

# The run command's options, declared once: (flags, keyword arguments for click.option).
RUN_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--target", "-t"), {"help": "Base URL that record paths are joined to."}),
    (("--concurrency", "-c"), {"type": POSITIVE, "default": 1, "help": "Workers (closed model)."}),
    (("--requests", "-n"), {"type": POSITIVE, "help": "Send this many (records cycle)."}),
    (("--duration", "-d"), {"type": SECONDS, "help": "Stop sending after this many seconds."}),
    (
        ("--rate", "-r"),
        {
            "metavar": "R[:R2]",
            "help": "Open model: R requests/s (or a ramp R:R2 over --duration).",
        },
    ),
    (
        ("--pace",),
        {
            "metavar": "original[xF]",
            "help": "Open model at the records' own times (HAR, logs), F times faster.",
        },
    ),
    (
        ("--max-inflight",),
        {
            "type": POSITIVE,
            "default": 1000,
            "help": "Open model: most requests in flight; the rest wait and count as late.",
        },
    ),
    (
        ("--workers", "-w"),
        {
            "type": POSITIVE,
            "default": 1,
            "help": "Processes to split the run over (each its own event loop).",
        },
    ),
    (
        ("--cluster",),
        {
            "metavar": "ADDRESS",
            "help": "Run on the workers of a Dask cluster (tcp://scheduler:8786).",
        },
    ),
    (
        ("--cluster-workers",),
        {
            "type": POSITIVE,
            "metavar": "K",
            "help": "Use K of the cluster's workers [default: all].",
        },
    ),
    (
        ("--strict",),
        {"is_flag": True, "help": "Check every record first; any bad one stops the run."},
    ),
    (
        ("--json", "json_path"),
        {"metavar": "PATH", "help": "Write the summary as JSON ('-': stdout)."},
    ),
    (("--results",), {"metavar": "PATH", "help": "Write one JSON line per request."}),
    (("--junit",), {"metavar": "PATH", "help": "Write JUnit XML: a testcase per record group."}),
    (("--html",), {"metavar": "PATH", "help": "Write the HTML report (one file, plots inline)."}),
    (("--junit-per-record",), {"is_flag": True, "help": "JUnit: a testcase per record instead."}),
    (
        ("--min-reuse",),
        {
            "type": click.FloatRange(0, 1),
            "help": "Gate: least fraction of requests on a reused connection.",
        },
    ),
    (
        ("--max-connections",),
        {"type": click.IntRange(min=0), "help": "Gate: most connections opened."},
    ),
    (
        ("--watch",),
        {
            "multiple": True,
            "metavar": "SPEC",
            "help": "Watch the server: port:N, nginx:URL, pprof:URL or prom:URL#metric.",
        },
    ),
    (
        ("--watch-interval",),
        {"type": POSITIVE_SECONDS, "default": 0.5, "help": "Seconds between watch samples."},
    ),
    (
        ("--threshold",),
        {
            "multiple": True,
            "metavar": "EXPR",
            "help": "Gate, as k6 has them: 'p99<250ms', 'error_rate<0.1%', 'reuse>99%'.",
        },
    ),
    (
        ("--fail-on-leak",),
        {"is_flag": True, "help": "Gate: fail when a watched server's connections pile up."},
    ),
    (
        ("--leak",),
        {
            "is_flag": True,
            "help": "Behave like a leaky client: never read bodies nor return connections.",
        },
    ),
    (
        ("--max-idle-per-host",),
        {
            "type": click.IntRange(min=0),
            "help": "Idle connections kept per host [default: concurrency].",
        },
    ),
    (
        ("--max-idle",),
        {
            "type": click.IntRange(min=0),
            "default": 0,
            "help": "Idle connections kept in all (0: no limit).",
        },
    ),
    (
        ("--max-conns-per-host",),
        {
            "type": click.IntRange(min=0),
            "default": 0,
            "help": "Connections per host (0: no limit).",
        },
    ),
    (
        ("--idle-timeout",),
        {"type": SECONDS, "default": 90.0, "help": "Close connections idle this long (0: never)."},
    ),
    (
        ("--connect-timeout",),
        {"type": SECONDS, "default": 10.0, "help": "Seconds to connect (0: none)."},
    ),
    (
        ("--response-header-timeout",),
        {
            "type": SECONDS,
            "default": 0.0,
            "help": "Seconds from request to response headers (0: none).",
        },
    ),
    (
        ("--timeout",),
        {"type": SECONDS, "default": 30.0, "help": "Seconds for a whole request (0: none)."},
    ),
    (("--disable-keep-alives",), {"is_flag": True, "help": "One request per connection."}),
    (
        ("--follow-redirects",),
        {
            "type": click.IntRange(min=0),
            "default": 0,
            "metavar": "N",
            "help": "Follow up to N redirects (0: off).",
        },
    ),
    (
        ("--drain-limit",),
        {
            "type": Size(),
            "default": DEFAULT_DRAIN_LIMIT,
            "help": "Read bodies up to this size, else close [default: 256k].",
        },
    ),
    (
        ("--drain-timeout",),
        {"type": SECONDS, "default": 5.0, "help": "Seconds to read a body, else close."},
    ),
    (("--insecure", "-k"), {"is_flag": True, "help": "Do not verify TLS certificates."}),
    (
        ("--cacert",),
        {"type": click.Path(exists=True, dir_okay=False), "help": "Trust this CA file."},
    ),
    (
        ("--redact-header",),
        {
            "multiple": True,
            "metavar": "NAME",
            "help": "Mask this header's values in reports too (Authorization, Cookie and "
            "Set-Cookie always are).",
        },
    ),
    (("--show-secrets",), {"is_flag": True, "help": "Show secret header values in reports."}),
    (("--quiet", "-q"), {"is_flag": True, "help": "No text summary."}),
]


@click.group()
@click.version_option(package_name="tether")
def cli() -> None:
    """Replay HTTP request records, check every response, account for every connection."""


def _use_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """The config file's settings become the defaults of the other flags (so a flag given
    on the command line wins). Eager: it runs before those flags are read."""
    from tether import config

    path = value or config.find()
    if path is None:
        return
    names = [p.name for p in ctx.command.params if p.name and p is not param]
    ctx.default_map = {**(ctx.default_map or {}), **config.load(path, names)}


@cli.command("run")
@click.argument("records")
@click.option(
    "--config",
    metavar="PATH",
    is_eager=True,
    expose_value=False,
    callback=_use_config,
    help="Settings file [default: ./tether.toml, or [tool.tether] in ./pyproject.toml].",
)
@with_options(READ_OPTIONS)
@with_options(RUN_OPTIONS)
def run_command(records: str, **opts: Any) -> None:
    """Send RECORDS (JSONL, HAR, an access log, vegeta targets, curl commands or CSV; '-' for
    stdin) and check every response.

    \b
    Examples:
      tether run records.jsonl -t http://127.0.0.1:8080 -c 20 -n 100000 --json summary.json
      tether run session.har --expect-from-har --only-origin https://app.example \\
          --threshold 'p99<250ms' --threshold 'error_rate<0.1%'
      tether run access.log -t http://127.0.0.1:8080 --pace originalx2 --watch port:8080
    """
    raise SystemExit(execute(records, opts))


def client_options(opts: dict[str, Any]) -> ClientOptions:
    """The engine's settings from the run command's options."""
    return ClientOptions(
        max_idle_per_host=opts["max_idle_per_host"],
        max_idle=opts["max_idle"],
        max_conns_per_host=opts["max_conns_per_host"],
        idle_timeout=opts["idle_timeout"],
        connect_timeout=opts["connect_timeout"],
        response_header_timeout=opts["response_header_timeout"],
        timeout=opts["timeout"],
        disable_keep_alives=opts["disable_keep_alives"],
        follow_redirects=opts["follow_redirects"],
        drain_limit=opts["drain_limit"],
        drain_timeout=opts["drain_timeout"],
        insecure=opts["insecure"],
        cacert=opts["cacert"],
        leak=opts["leak"],
    )


def execute(records: str, opts: dict[str, Any]) -> int:
    """Run, report, and decide the exit status."""
    if opts["target"]:
        split_url(opts["target"])  # a bad target is a usage error before anything is sent
    if records != "-" and not os.path.isfile(records):
        raise InputError(f"records file {records!r} not found")
    raise_fd_limit()
    run_opts = run_options(opts)
    if opts["cluster"]:
        return report(_on_cluster(records, opts, run_opts), opts)
    if opts["workers"] > 1:
        _one_process_only(opts, run_opts)
        if opts["strict"]:
            validate(file_source(records, reading(opts)))
        # Imported here: multiprocessing adds to every start, and most runs are one process.
        from tether.run.processes import run_processes

        summary = run_processes(
            records, run_opts, client_options(opts), opts["workers"], reading(opts)
        )
        return report(summary, opts)
    per_record = None
    if opts["junit_per_record"]:
        from tether.report.junit import PerRecord

        per_record = PerRecord(run_opts.secret)
    with _results_sink(opts["results"], run_opts.secret) as results:
        summary = run(
            file_source(records, reading(opts)),
            run_opts,
            client_options(opts),
            sink=_tee(results, per_record),
            handle_sigint=True,
            progress=None if opts["quiet"] else _progress(opts),
        )
        if results is not None:
            results.close(summary)
    return report(summary, opts, per_record)


def _progress(opts: dict[str, Any]) -> ProgressView:
    # Imported here: rich is not needed for the first request.
    from rich.console import Console

    from tether.report.progress import Progress

    return Progress(Console(stderr=True), opts["requests"], opts["duration"])


def run_options(opts: dict[str, Any]) -> RunOptions:
    """What to send and how, from the run command's options; InputError before anything is
    sent when they do not fit together."""
    for text in opts["threshold"]:
        parse_threshold(text)  # a bad one stops the run before anything is sent
    if opts["rate"] and opts["pace"]:
        raise InputError("give --rate or --pace, not both")
    pacer: Schedule | None = None
    if opts["pace"]:
        pacer = parse_pace(opts["pace"], opts["duration"])
    elif opts["rate"]:
        pacer = parse_rate(opts["rate"], opts["duration"])
    run_opts = RunOptions(
        target=opts["target"],
        concurrency=opts["concurrency"],
        requests=opts["requests"],
        duration=opts["duration"],
        strict=opts["strict"],
        rate=pacer,
        max_inflight=opts["max_inflight"],
        watch=tuple(parse_source(spec) for spec in opts["watch"]),
        watch_interval=opts["watch_interval"],
        secret=secret_names(opts["redact_header"], opts["show_secrets"]),
    )
    if opts["fail_on_leak"] and not run_opts.watch:
        raise InputError("--fail-on-leak needs a server to watch: give --watch")
    return run_opts


def _on_cluster(records: str, opts: dict[str, Any], run_opts: RunOptions) -> Summary:
    """The run on a Dask cluster, its progress summed from the workers' reports."""
    from tether.run.cluster import Reports, run_on_cluster

    _one_process_only(opts, run_opts, "--cluster")
    if records == "-":
        raise InputError("--cluster: each worker reads the records file: give a file, not -")
    if opts["strict"]:
        validate(file_source(records, reading(opts)))
    shown = [0.0]

    def show(reports: Reports) -> None:
        now = time.monotonic()
        if not opts["quiet"] and now - shown[0] >= 1.0:
            shown[0] = now
            click.echo(
                f"cluster: {reports.requests():,} requests from {len(reports.last)} workers",
                err=True,
            )

    return run_on_cluster(
        opts["cluster"], records, reading(opts), run_opts, client_options(opts),
        opts["cluster_workers"], show,
    )  # fmt: skip


def _one_process_only(opts: dict[str, Any], run_opts: RunOptions, how: str = "--workers") -> None:
    """What needs every outcome, or one clock, cannot be split over processes."""
    alone = {
        "--results": opts["results"],
        "--junit-per-record": opts["junit_per_record"],
        "--watch": run_opts.watch,
        "--pace": opts["pace"],
    }
    for flag, given in alone.items():
        if given:
            raise InputError(f"{flag} needs the run in one process: not with {how}")


def _tee(*sinks: OutcomeSink | None) -> OutcomeSink | None:
    """One sink calling each given one (None when there is none: the run's fast path)."""
    given = [sink for sink in sinks if sink is not None]
    if len(given) <= 1:
        return given[0] if given else None

    def each(outcome: Outcome, mismatches: list[Mismatch]) -> None:
        for sink in given:
            sink(outcome, mismatches)

    return each


def report(summary: Summary, opts: dict[str, Any], per_record: PerRecord | None = None) -> int:
    """Print and write the summary; return the exit status it calls for."""
    doc = summary.to_dict()
    gates = Gates(opts["min_reuse"], opts["max_connections"], opts["fail_on_leak"])
    doc["thresholds"] = evaluate([parse_threshold(t) for t in opts["threshold"]], summary)
    gate_failures = failures(gates, doc) + threshold_failures(doc["thresholds"])
    doc["gate_failures"] = gate_failures
    if not opts["quiet"]:
        # With the JSON on stdout, the text goes to stderr so the two never mix.
        # rich is imported only now: the first request should not wait for it.
        from rich.console import Console

        from tether.report import text

        console = Console(stderr=opts["json_path"] == "-")
        text.print_summary(doc, gate_failures, console)
    if opts["json_path"]:
        json_report.write(doc, opts["json_path"])
    if opts["junit"]:
        with open(opts["junit"], "wb") as out:
            from tether.report import junit  # here: xml.etree is not needed for most runs

            out.write(junit.render(doc, per_record))
    if opts["html"]:
        from tether.report import html

        with open(opts["html"], "w", encoding="utf-8") as page:
            page.write(html.render(doc))
    return exit_status(doc, gate_failures)


@contextlib.contextmanager
def _results_sink(path: str | None, secret: frozenset[str]) -> Iterator[ResultsWriter | None]:
    if not path:
        yield None
        return
    stream: IO[str]
    with open(path, "w", encoding="utf-8") as stream:
        yield ResultsWriter(stream, secret)


def raise_fd_limit() -> None:
    """Leak mode and high concurrency need many sockets: lift the soft limit to the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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
    audit.audit_command,
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
