"""The command line. ``main(argv) -> exit status`` is the only place where exceptions become
exit codes:

- 0: every response matched its record;
- 1: mismatches or failed requests;
- 2: a usage or input error (also: malformed records were skipped);
- 3: a gate (``--min-reuse``, ``--max-connections``) failed;
- 130: interrupted (Ctrl-C); the summary of what was done is still printed and written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import sys
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import IO, Any, TypeVar

import click

from tether.engine.options import DEFAULT_DRAIN_LIMIT, ClientOptions
from tether.engine.pacer import Schedule, parse_pace, parse_rate
from tether.engine.request import split_url
from tether.engine.runner import (
    OutcomeSink,
    ProgressView,
    RecordSource,
    RunOptions,
    run,
    validate,
)
from tether.errors import InputError, RecordError
from tether.gates import Gates, failures
from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome
from tether.records import FORMATS, Items, Reading, file_source
from tether.report import json_report, junit
from tether.report.junit import PerRecord
from tether.report.results import ResultsWriter
from tether.secrets import secret_names
from tether.thresholds import evaluate, parse_threshold
from tether.thresholds import failures as threshold_failures
from tether.watch import parse_source


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
        {"type": SECONDS, "default": 0.5, "help": "Seconds between watch samples."},
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


def _with_options(options: list[tuple[tuple[str, ...], dict[str, Any]]]) -> Callable[[F], F]:
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
@_with_options(READ_OPTIONS)
@_with_options(RUN_OPTIONS)
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
    if opts["workers"] > 1:
        _one_process_only(opts, run_opts)
        if opts["strict"]:
            validate(file_source(records, reading(opts)))
        # Imported here: multiprocessing adds to every start, and most runs are one process.
        from tether.engine.processes import run_processes

        summary = run_processes(
            records, run_opts, client_options(opts), opts["workers"], reading(opts)
        )
        return report(summary, opts)
    per_record = PerRecord(run_opts.secret) if opts["junit_per_record"] else None
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
        watch_interval=opts["watch_interval"] or 0.5,
        secret=secret_names(opts["redact_header"], opts["show_secrets"]),
    )
    if opts["fail_on_leak"] and not run_opts.watch:
        raise InputError("--fail-on-leak needs a server to watch: give --watch")
    return run_opts


def _one_process_only(opts: dict[str, Any], run_opts: RunOptions) -> None:
    """What needs every outcome, or one clock, cannot be split over processes."""
    alone = {
        "--results": opts["results"],
        "--junit-per-record": opts["junit_per_record"],
        "--watch": run_opts.watch,
        "--pace": opts["pace"],
    }
    for flag, given in alone.items():
        if given:
            raise InputError(f"{flag} needs the run in one process: not with --workers")


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
            out.write(junit.render(doc, per_record))
    if opts["html"]:
        from tether.report import html

        with open(opts["html"], "w", encoding="utf-8") as page:
            page.write(html.render(doc))
    return exit_status(doc, gate_failures)


def exit_status(doc: dict[str, Any], gate_failures: list[str]) -> int:
    """The exit code for a finished run (see the module docstring)."""
    if doc["interrupted"]:
        return ExitStatus.INTERRUPTED
    if doc["input_errors"]:
        return ExitStatus.INPUT
    if gate_failures:
        return ExitStatus.GATE
    if doc["mismatches"] or doc["errors"]:
        return ExitStatus.FAILED
    return ExitStatus.OK


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


@cli.command("record")
@click.argument("records")
@_with_options(READ_OPTIONS)
@click.option("--target", "-t", help="The known-good service's base URL.")
@click.option("--output", "-o", metavar="PATH", required=True, help="The golden records file.")
@click.option(
    "--keep-header",
    multiple=True,
    metavar="NAME",
    help="Also expect this response header's value (Location always is).",
)
@click.option(
    "--ignore-json-path",
    multiple=True,
    metavar="PATH",
    help="Leave this field of JSON bodies out of the expectation ($.a.b, $.items[*].id).",
)
@click.option("--concurrency", "-c", type=POSITIVE, default=1, show_default=True)
@click.option("--timeout", type=SECONDS, default=30.0, show_default=True)
def record_command(records: str, **opts: Any) -> None:
    """Replay RECORDS against a known-good service and write them to --output with their
    expectations taken from its responses: status, Location, kept headers, and the body (JSON
    without the ignored fields, else its sha256). Then `tether run` the output against a new
    service. Records that got no response are reported and left out (exit 1)."""
    raise SystemExit(record(records, opts))


def record(records: str, opts: dict[str, Any]) -> int:
    """Capture, writing each record as its response comes in (an interrupted capture keeps
    what it has)."""
    import json

    from tether.capture import Capture, expectations
    from tether.records.jsonl import to_object

    capture = Capture.from_options(opts["keep_header"], opts["ignore_json_path"])
    source = _keeping_bodies(file_source(records, reading(opts)))
    run_opts = RunOptions(target=opts["target"], concurrency=opts["concurrency"])
    options = ClientOptions(timeout=opts["timeout"], drain_limit=64 << 20)
    missed = 0
    with open(opts["output"], "w", encoding="utf-8") as out:

        def keep(outcome: Outcome, mismatches: list[Any]) -> None:
            nonlocal missed
            expect = expectations(outcome, capture)
            if expect is None:
                missed += 1
                why = outcome.error or "body over the drain limit"
                click.echo(f"tether: {outcome.record.where}: not captured: {why}", err=True)
                return
            golden = dataclasses.replace(outcome.record, expect=expect)
            out.write(json.dumps(to_object(golden), ensure_ascii=False) + "\n")

        summary = run(source, run_opts, options, sink=keep, handle_sigint=True)
    click.echo(
        f"captured {summary.requests - missed:,} records to {opts['output']}"
        + (f" ({missed:,} not captured)" if missed else ""),
        err=True,
    )
    if summary.interrupted:
        return ExitStatus.INTERRUPTED
    if summary.input_errors:
        return ExitStatus.INPUT
    return ExitStatus.FAILED if missed else ExitStatus.OK


def _keeping_bodies(source: RecordSource) -> RecordSource:
    """The records with their own expectations swapped for one that keeps the body (the
    engine keeps a body only when a check needs it; an empty "contains" holds for any)."""
    from tether.model import BodyExpect, Expect, Record

    keep = Expect(body=(BodyExpect("contains", ""),))

    def open_records() -> Items:
        for item in source():
            yield dataclasses.replace(item, expect=keep) if isinstance(item, Record) else item

    return open_records


@cli.command("diff")
@click.argument("records")
@_with_options(READ_OPTIONS)
@click.option("--primary", required=True, metavar="URL", help="The service as it is.")
@click.option("--candidate", required=True, metavar="URL", help="The service to compare.")
@click.option(
    "--secondary",
    metavar="URL",
    help="A second instance of the primary: fields that differ between the two are noise.",
)
@click.option("--concurrency", "-c", type=POSITIVE, default=1, show_default=True)
@click.option("--timeout", type=SECONDS, default=30.0, show_default=True)
@click.option("--json", "json_path", metavar="PATH", help="Write the report as JSON ('-': stdout).")
def diff_command(records: str, **opts: Any) -> None:
    """Send each of RECORDS to the primary and the candidate (and the secondary) and report
    the response fields that differ, by group of records. Exit 1 when differences remain
    (after taking out the noise a secondary shows)."""
    raise SystemExit(diff(records, opts))


def diff(records: str, opts: dict[str, Any]) -> int:
    """Compare, report, and decide the exit status."""
    import asyncio
    from urllib.parse import urlsplit

    from tether.diff import Differences, fields
    from tether.engine.fanout import fan_out
    from tether.metrics.groups import group_key
    from tether.model import Record

    targets = [
        opts["primary"],
        opts["candidate"],
        *([opts["secondary"]] if opts["secondary"] else []),
    ]
    for target in targets:
        split_url(target)
    found = Differences()
    bad: list[RecordError] = []

    def each(record: Record, outcomes: list[Outcome]) -> None:
        parts = urlsplit(record.url)
        group = group_key(
            record.method, parts.path + (f"?{parts.query}" if parts.query else ""), record.tag
        )
        third = fields(outcomes[2]) if len(outcomes) > 2 else None
        found.add(group, record.where, fields(outcomes[0]), fields(outcomes[1]), third)

    def skip(error: RecordError) -> None:
        bad.append(error)
        click.echo(f"tether: skipped {error}", err=True)

    options = ClientOptions(timeout=opts["timeout"], drain_limit=64 << 20)
    items = file_source(records, reading(opts))()
    asyncio.run(fan_out(items, targets, opts["concurrency"], options, each, skip))
    doc = found.to_dict()
    if opts["json_path"] != "-":
        from rich.console import Console

        from tether.report import diff_text

        Console().print(diff_text.render(doc))
    if opts["json_path"]:
        json_report.write(doc, opts["json_path"])
    if bad:
        return ExitStatus.INPUT
    return ExitStatus.FAILED if doc["differences"] else ExitStatus.OK


@cli.command("report")
@click.argument("results", nargs=-1, required=True)
@click.option(
    "--format",
    "report_format",
    type=click.Choice(["text", "json", "junit", "html", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--output", "-o", metavar="PATH", default="-", help="Where to write ('-': stdout).")
@click.option("--threshold", multiple=True, metavar="EXPR", help="Judge the runs by it too.")
def report_command(
    results: tuple[str, ...], report_format: str, output: str, threshold: tuple[str, ...]
) -> None:
    """Render a report from RESULTS files (written with --results; several merge), one line
    at a time, in bounded memory. Exits as the run would have (1 on mismatches or errors, 3 on
    a failed threshold)."""
    raise SystemExit(rerender(list(results), report_format, output, list(threshold)))


def rerender(paths: list[str], fmt: str, output: str, thresholds: list[str]) -> int:
    """Rebuild the summary from results files and write it in ``fmt``."""
    from tether.report import rebuild

    judged = [parse_threshold(text) for text in thresholds]
    summary = rebuild.rebuild(paths)
    doc = summary.to_dict()
    doc["thresholds"] = evaluate(judged, summary)
    gate_failures = threshold_failures(doc["thresholds"])
    doc["gate_failures"] = gate_failures
    if fmt == "json":
        json_report.write(doc, output)
    elif fmt == "text":
        _write_text(doc, gate_failures, output)
    else:
        _write_page(doc, fmt, output)
    return exit_status(doc, gate_failures)


def _write_text(doc: dict[str, Any], gate_failures: list[str], output: str) -> None:
    from rich.console import Console

    from tether.report import text

    with contextlib.ExitStack() as stack:
        out = None if output == "-" else stack.enter_context(open(output, "w", encoding="utf-8"))
        text.print_summary(doc, gate_failures, Console(file=out, width=100 if out else None))


def _write_page(doc: dict[str, Any], fmt: str, output: str) -> None:
    from tether.report import html, markdown

    if fmt == "junit":
        data = junit.render(doc)
    else:
        data = (html.render(doc) if fmt == "html" else markdown.render(doc)).encode("utf-8")
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        with open(output, "wb") as out:
            out.write(data)


@cli.command("convert")
@click.argument("records")
@_with_options(READ_OPTIONS)
@click.option("--to", "to", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("--output", "-o", metavar="PATH", default="-", help="Where to write ('-': stdout).")
def convert_command(records: str, to: str, output: str, **opts: Any) -> None:
    """Write RECORDS (any format tether reads) as native JSONL records. Bad entries are
    reported on stderr with their line and skipped; the exit status is then 2."""
    raise SystemExit(convert(records, output, reading(opts)))


def convert(records: str, output: str, how: Reading) -> int:
    """Convert, reporting bad entries as they come; 2 when there were any."""
    import json

    from tether.records.jsonl import to_object

    bad = 0
    stream: IO[str]
    with contextlib.ExitStack() as stack:
        stream = (
            sys.stdout
            if output == "-"
            else stack.enter_context(open(output, "w", encoding="utf-8"))
        )
        for item in file_source(records, how)():
            if isinstance(item, RecordError):
                bad += 1
                click.echo(f"tether: skipped {item}", err=True)
                continue
            stream.write(json.dumps(to_object(item), ensure_ascii=False) + "\n")
    return ExitStatus.INPUT if bad else ExitStatus.OK


@cli.command(
    "audit", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--json", "json_path", metavar="PATH", help="Write the audit as JSON ('-': stdout).")
@click.option("--quiet", "-q", is_flag=True, help="No text report.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def audit_command(json_path: str | None, quiet: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND (a Python program: tether audit -- python script.py) and report the HTTP
    connections it opened and the requests it sent over them, per host and port.

    Exits with the program's status when it failed; else 3 when connections were not reused."""
    raise SystemExit(audit(list(command), json_path, quiet))


def audit(command: list[str], json_path: str | None, quiet: bool) -> int:
    """Run the audited program, report, and decide the exit status."""
    from tether.audit.runner import run_audited

    try:
        result = run_audited(command)
    except FileNotFoundError:
        raise InputError(f"command not found: {command[0]!r}") from None
    doc = result.to_dict()
    if not quiet:
        from rich.console import Console

        from tether.report import audit_text

        Console(stderr=json_path == "-").print(audit_text.render(doc))
    if json_path:
        json_report.write(doc, json_path)
    if result.exit_code:
        return result.exit_code
    return ExitStatus.GATE if doc["verdicts"] else ExitStatus.OK


@cli.command("doctor")
@click.argument("url")
@click.option(
    "--json", "json_path", metavar="PATH", help="Write the findings as JSON ('-': stdout)."
)
@click.option(
    "--max-requests",
    type=POSITIVE,
    default=1000,
    show_default=True,
    help="Requests to send on one connection, at most, to find the server's limit.",
)
@click.option(
    "--max-idle-wait",
    type=SECONDS,
    default=100.0,
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
    doc = report(asyncio.run(examine(url, max_requests, max_idle_wait)))
    if json_path != "-":
        from rich.console import Console

        from tether.report import doctor_text

        Console().print(doctor_text.render(doc))
    if json_path:
        json_report.write(doc, json_path)
    return ExitStatus.FAILED if doc["error"] else ExitStatus.OK


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
