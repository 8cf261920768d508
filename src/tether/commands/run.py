"""``tether run``: send records, check every response, report, and say how it went in the
exit status (see :mod:`tether.cli` for the codes). Its flags are declared on the fields of the
dataclasses they set (:mod:`tether.flags`); click's values become those dataclasses here,
once (:func:`command_options`); past that the run's functions take the dataclasses."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from tether import flags
from tether.commands.clickflags import fields_flags, free_flags, made, with_flags
from tether.commands.options import (
    READ_FLAGS,
    Verbosity,
    exit_status,
    nothing_to_send,
    reading,
    with_verbosity,
)
from tether.document import SummaryDocument
from tether.engine.options import ClientOptions
from tether.engine.request import framing_problem, split_url
from tether.errors import InputError, RecordError
from tether.gates import Gates
from tether.judge import judged
from tether.metrics.summary import Summary
from tether.model import Mismatch, Outcome
from tether.records import Reading, file_source, oneurl
from tether.records.oneurl import UrlRequest
from tether.report import json_report
from tether.report.files import check_outputs, not_written
from tether.results.writer import ResultsWriter
from tether.run.feed import validate
from tether.run.options import RunOptions
from tether.run.pacer import OriginalPace, Schedule, parse_pace, parse_rate
from tether.run.session import OutcomeSink, ProgressView, run
from tether.secrets import secret_names
from tether.thresholds import Threshold, parse_threshold

if TYPE_CHECKING:
    from tether.live.exporter import Exporter
    from tether.report.junit import PerRecord


@dataclass(frozen=True, slots=True)
class Outputs:
    """Where the summary is written besides the terminal (``None``: not written; ``"-"`` for
    ``json_path``: stdout), and how much is printed (``verbosity``: ``quiet`` when there is
    no progress line and no whole text summary). ``junit_per_record``: a JUnit testcase per
    record rather than per group. ``prometheus_listen``: the address Prometheus scrapes the
    run's figures at while it goes on, and after it for up to ``prometheus_linger`` seconds,
    until it has scraped the final figures once."""

    json_path: str | None = field(
        default=None,
        metadata=flags.flag(
            "--json", metavar="PATH", help="Write the summary as JSON ('-': stdout)."
        ),
    )
    results: str | None = field(
        default=None,
        metadata=flags.flag("--results", metavar="PATH", help="Write one JSON line per request."),
    )
    junit: str | None = field(
        default=None,
        metadata=flags.flag(
            "--junit", metavar="PATH", help="Write JUnit XML: a testcase per record group."
        ),
    )
    junit_per_record: bool = field(
        default=False,
        metadata=flags.flag(
            "--junit-per-record",
            kind=flags.Kind.SWITCH,
            help="JUnit: a testcase per record instead.",
        ),
    )
    html: str | None = field(
        default=None,
        metadata=flags.flag(
            "--html", metavar="PATH", help="Write the HTML report (one file, plots inline)."
        ),
    )
    verbosity: Verbosity = field(
        default=Verbosity.NORMAL, metadata=flags.made_of("--quiet", "--silent")
    )
    prometheus_listen: str | None = field(
        default=None,
        metadata=flags.flag(
            "--prometheus-listen",
            metavar="HOST:PORT",
            help="Serve the run's metrics to Prometheus at http://HOST:PORT/metrics.",
        ),
    )
    # Prometheus's conventional scrape interval: a scrape that comes at it sees the end.
    prometheus_linger: float = field(
        default=15.0,
        metadata=flags.flag(
            "--prometheus-linger",
            kind=flags.Kind.SECONDS,
            help="After the run, serve its final metrics until scraped, at most this long.",
        ),
    )

    @property
    def quiet(self) -> bool:
        """No progress line, and no whole text summary (-q, or --silent)."""
        return self.verbosity < Verbosity.NORMAL


@dataclass(frozen=True, slots=True)
class RunCommand:
    """What ``tether run`` was asked: the records and how to read them, what the engine and
    the run get, how the run is spread (``workers`` processes, or the workers of the Dask
    cluster at ``cluster``, ``cluster_workers`` of them, all when ``None``), where it is
    reported and what it is judged by."""

    records: str = field(metadata=flags.internal("the RECORDS argument"))
    run: RunOptions = field(metadata=flags.internal("made of RunOptions's own flags"))
    client: ClientOptions = field(metadata=flags.internal("made of ClientOptions's own flags"))
    reading: Reading = field(metadata=flags.internal("made of Reading's own flags"))
    outputs: Outputs = field(metadata=flags.internal("made of Outputs's own flags"))
    gates: Gates = field(metadata=flags.internal("made of Gates's own flags"))
    workers: int = field(
        default=1,
        metadata=flags.flag(
            "--workers",
            "-w",
            kind=flags.Kind.COUNT,
            help="Processes to split the run over (each its own event loop).",
        ),
    )
    cluster: str | None = field(
        default=None,
        metadata=flags.flag(
            "--cluster",
            metavar="ADDRESS",
            help="Run on the workers of a Dask cluster (tcp://scheduler:8786).",
        ),
    )
    cluster_workers: int | None = field(
        default=None,
        metadata=flags.flag(
            "--cluster-workers",
            kind=flags.Kind.COUNT,
            metavar="K",
            default_in_words="all",
            help="Use K of the cluster's workers.",
        ),
    )
    # Parsed by the command, in the order its other usage errors are said.
    thresholds: tuple[Threshold, ...] = field(
        default=(),
        metadata=flags.made_of(
            flags.Flag(
                ("--threshold",),
                multiple=True,
                metavar="EXPR",
                param="threshold",
                help="Gate, as k6 has them: 'p99<250ms', 'error_rate<0.1%', 'reuse>99%'.",
            )
        ),
    )


# The run command's flags, in the order its help lists them: each declared on the field it
# sets (the flags of the URL given in place of a records file set none: below).
RUN_FLAGS = fields_flags(RunOptions, RunCommand, Gates, Outputs, ClientOptions)

# A URL where the records file goes: its one request and check, as hey and oha take them.
URL_FLAGS = free_flags(
    flags.Flag(
        ("--method", "-m"),
        metavar="METHOD",
        default_in_words="GET",
        help="With a URL: its method.",
    ),
    flags.Flag(
        ("--header", "-H"),
        multiple=True,
        metavar="'NAME: VALUE'",
        param="headers",
        help="A request header (with a records file: set on every record, in place of "
        "its own of that name).",
    ),
    flags.Flag(("--body",), metavar="TEXT", help="With a URL: the request body (UTF-8)."),
    flags.Flag(
        ("--body-file",),
        kind=flags.Kind.FILE,
        help="With a URL: the request body, read from this file as is.",
    ),
    flags.Flag(
        ("--expect-status",),
        multiple=True,
        metavar="STATUS",
        help="With a URL: the status expected (repeat it for any of several; without it, "
        "any 2xx or 3xx; any: any status).",
    ),
    flags.Flag(
        ("--expect-header",),
        multiple=True,
        metavar="'NAME: VALUE'",
        help="With a URL: a response header expected to have this value.",
    ),
)

CONFIG_FLAG = flags.Flag(
    ("--config",),
    metavar="PATH",
    default_in_words="./tether.toml, or [tool.tether] in ./pyproject.toml",
    help="Settings file.",
)


def _use_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """The config file's settings become the defaults of the other flags (so a flag given
    on the command line wins). Eager: it runs before those flags are read."""
    from tether import config

    path = value or config.find()
    if path is None:
        return
    names = [p.name for p in ctx.command.params if p.name and p is not param]
    ctx.default_map = {**(ctx.default_map or {}), **config.load(path, names)}


@click.command("run")
@click.argument("records")
@with_flags(free_flags(CONFIG_FLAG), is_eager=True, expose_value=False, callback=_use_config)
@with_flags(READ_FLAGS)
@with_flags(RUN_FLAGS)
@with_flags(URL_FLAGS)
@with_verbosity
def run_command(records: str, **opts: Any) -> None:
    """Send RECORDS (JSONL, HAR, an access log, vegeta targets, curl commands or CSV; '-' for
    stdin; or one URL, its request and check given by -m, -H, --body and --expect-*) and
    check every response.

    \b
    Examples:
      tether run records.jsonl -t http://127.0.0.1:8080 -c 20 -n 100000 --json summary.json
      tether run http://127.0.0.1:8080/health -c 50 -n 100000 --expect-status 200
      tether run session.har --expect-from-har --only-origin https://app.example \\
          --threshold 'p99<250ms' --threshold 'error_rate<0.1%'
      tether run access.log -t http://127.0.0.1:8080 --pace originalx2 --watch port:8080
    """
    raise SystemExit(execute(command_options(records, opts)))


def command_options(records: str, opts: dict[str, Any]) -> RunCommand:
    """The run command's options as click hands them over, typed: the one place they are
    read, each dataclass made of its fields' flags (:func:`made`). InputError, before
    anything is sent, for a bad target, a missing records file, a bad threshold, or options
    that do not fit together."""
    if opts["target"]:
        split_url(opts["target"])  # a bad target is a usage error before anything is sent
    how = _reading(records, opts)
    if records != "-" and not oneurl.is_url(records) and not os.path.isfile(records):
        raise InputError(f"records file {records!r} not found")
    thresholds = tuple(parse_threshold(text) for text in opts["threshold"])
    outputs = made(Outputs, opts, verbosity=opts["verbosity"])
    check_outputs(_output_paths(outputs))  # before the run, not after it
    if outputs.prometheus_listen:
        from tether.live.exporter import listen_address

        listen_address(outputs.prometheus_listen)  # a bad address: a usage error now
    return made(
        RunCommand,
        opts,
        records=records,
        run=run_options(opts),
        client=client_options(opts),
        reading=how,
        outputs=outputs,
        gates=made(Gates, opts),
        thresholds=thresholds,
    )


_FRAMING_FIELDS = ("content-length", "transfer-encoding")


def _reading(records: str, opts: dict[str, Any]) -> Reading:
    """How to read the records; for a URL, with the request and check its flags make
    (checked now: a bad flag is a usage error before anything is sent). Those flags with a
    records file are refused: the file's records say their own requests."""
    given = [placed.flag.name for placed in URL_FLAGS if opts[placed.param]]
    if not oneurl.is_url(records):
        given = [name for name in given if name != "--header"]  # -H sets every record's
        if given:
            raise InputError(f"{', '.join(given)} go with a URL in place of the records file")
        headers = oneurl.header_fields(tuple(opts["headers"]))
        framing = [name for name, _ in headers if name.lower() in _FRAMING_FIELDS]
        if framing:
            raise InputError(f"-H {framing[0]}: tether frames every record's body itself")
        return dataclasses.replace(reading(opts), set_headers=headers)
    if opts["body"] is not None and opts["body_file"]:
        raise InputError("give --body or --body-file, not both")
    body = opts["body"].encode("utf-8") if opts["body"] is not None else b""
    if opts["body_file"]:
        with open(opts["body_file"], "rb") as given_body:
            body = given_body.read()
    request = UrlRequest(
        method=opts["method"] or "GET",
        headers=tuple(opts["headers"]),
        body=body,
        expect_status=oneurl.expected_statuses(tuple(opts["expect_status"])),
        expect_headers=tuple(opts["expect_header"]),
    )
    try:
        record = oneurl.read(records, request)
    except RecordError as exc:
        raise InputError(f"{records}: {exc.problem}") from None
    # The engine's own refusal, said now: a flag is a usage error, not a record skipped.
    problem = framing_problem(record.headers, record.body)
    if problem is not None:
        raise InputError(f"-H: {problem}")
    return made(Reading, opts, url_request=request)


def _output_paths(outputs: Outputs) -> dict[str, str | None]:
    """Each output file by the flag that asked for it."""
    return {
        "--json": outputs.json_path,
        "--results": outputs.results,
        "--junit": outputs.junit,
        "--html": outputs.html,
    }


def client_options(opts: dict[str, Any]) -> ClientOptions:
    """The engine's settings from the run command's options."""
    return made(ClientOptions, opts)


def run_options(opts: dict[str, Any]) -> RunOptions:
    """What to send and how, from the run command's options; InputError before anything is
    sent when they do not fit together."""
    if opts["rate"] and opts["pace"]:
        raise InputError("give --rate or --pace, not both")
    pacer: Schedule | None = None
    if opts["pace"]:
        pacer = parse_pace(opts["pace"], opts["duration"])
    elif opts["rate"]:
        pacer = parse_rate(opts["rate"], opts["duration"])
    secret = secret_names(opts["redact_header"], opts["show_secrets"])
    run_opts = made(RunOptions, opts, rate=pacer, secret=secret)
    if opts["fail_on_leak"] and not run_opts.watch:
        raise InputError("--fail-on-leak needs a server to watch: give --watch")
    return run_opts


def execute(command: RunCommand) -> int:
    """Run, report, and decide the exit status."""
    raise_fd_limit()
    if command.cluster:
        return report(_on_cluster(command, command.cluster), command)
    if command.workers > 1:
        _one_process_only(command, "--workers")
        if command.run.strict:
            validate(file_source(command.records, command.reading))
        # Imported here: multiprocessing adds to every start, and most runs are one process.
        from tether.run.processes import run_processes

        summary = run_processes(
            command.records, command.run, command.client, command.workers, command.reading
        )
        return report(summary, command)
    per_record = None
    if command.outputs.junit_per_record:
        from tether.report.junit import PerRecord

        per_record = PerRecord(command.run.secret)
    say = command.outputs.verbosity > Verbosity.SILENT
    with _metrics_served(command.outputs) as metrics:
        with _results_sink(command.outputs.results, command.run.secret, say) as results:
            summary = run(
                file_source(command.records, command.reading),
                command.run,
                command.client,
                sink=_tee(results, per_record),
                handle_sigint=True,
                progress=None if command.outputs.quiet else _progress(command.run),
                metrics=metrics,
            )
            if results is not None:
                results.close(summary)
        unwritten = []
        if results is not None and results.failed is not None:
            unwritten.append(
                not_written("--results", command.outputs.results or "", results.failed)
            )
        status = report(summary, command, per_record, unwritten)
        if metrics is not None and not summary.interrupted:  # a stop signal means now
            _linger(metrics, command.outputs)
        return status


@contextlib.contextmanager
def _metrics_served(outputs: Outputs) -> Iterator[Exporter | None]:
    """The --prometheus-listen endpoint, its address bound now (before anything is sent),
    closed when the command is done."""
    if not outputs.prometheus_listen:
        yield None
        return
    from tether.live.exporter import Exporter

    exporter = Exporter(outputs.prometheus_listen)
    try:
        yield exporter
    finally:
        exporter.close()


def _linger(exporter: Exporter, outputs: Outputs) -> None:
    """Serve the final figures until Prometheus has scraped them once (the last second of the
    run is in no earlier scrape), or the linger is up."""
    from tether.report.progress import clock

    if exporter.scraped or not outputs.prometheus_linger:
        return
    say = outputs.verbosity is Verbosity.NORMAL
    linger = clock(outputs.prometheus_linger)
    if say:
        click.echo(
            f"tether: serving the final metrics at {exporter.url} until they are scraped "
            f"(at most {linger}; Ctrl-C ends it)",
            err=True,
        )
    if not exporter.linger(outputs.prometheus_linger) and say:
        click.echo("tether: the final metrics were not scraped", err=True)


def _progress(asked: RunOptions) -> ProgressView:
    # Imported here: rich is not needed for the first request.
    from rich.console import Console

    from tether.report.progress import Progress

    return Progress(Console(stderr=True), asked.requests, asked.duration)


def _on_cluster(command: RunCommand, address: str) -> Summary:
    """The run on the Dask cluster at ``address``, its progress summed from the workers'
    reports."""
    from tether.run.cluster import Reports, run_on_cluster

    _one_process_only(command, "--cluster")
    if command.records == "-":
        raise InputError("--cluster: each worker reads the records file: give a file, not -")
    if command.run.strict:
        validate(file_source(command.records, command.reading))
    shown = [0.0]

    def show(reports: Reports) -> None:
        now = time.monotonic()
        if not command.outputs.quiet and now - shown[0] >= 1.0:
            shown[0] = now
            click.echo(
                f"cluster: {reports.requests():,} requests from {len(reports.last)} workers",
                err=True,
            )

    return run_on_cluster(
        address, command.records, command.reading, command.run, command.client,
        command.cluster_workers, show,
    )  # fmt: skip


def _one_process_only(command: RunCommand, how: str) -> None:
    """What needs every outcome, or one clock, cannot be split over processes."""
    alone = {
        "--results": command.outputs.results,
        "--junit-per-record": command.outputs.junit_per_record,
        "--watch": command.run.watch,
        "--pace": isinstance(command.run.rate, OriginalPace),
        # The workers' figures meet only once they are done: nothing live to serve.
        "--prometheus-listen": command.outputs.prometheus_listen,
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


def report(
    summary: Summary,
    command: RunCommand,
    per_record: PerRecord | None = None,
    unwritten: list[str] | None = None,
) -> int:
    """Write and print the summary; return the exit status it calls for. An output that
    cannot be written is named (in the outputs written after it, on stderr, and in the text
    summary) and the others are still written."""
    outputs = command.outputs
    doc = judged(summary, command.gates, command.thresholds)
    gate_failures = doc["gate_failures"]
    doc["unwritten"] = list(unwritten or ())
    # What ran, for the reports (the HTML page's header); never merged: it is the command's.
    from tether.run import provenance as ran

    doc["started_at"] = ran.started_at(doc["duration_s"])
    doc["tether_version"] = ran.tether_version()
    doc["command"] = ran.command_line(click.get_current_context(silent=True), command.run.secret)
    doc["model"] = ran.load_model(command.run)
    for flag, path, write in _writers(doc, outputs, per_record):
        try:
            write(path)
        except OSError as exc:
            doc["unwritten"].append(not_written(flag, path, exc))
    # With the JSON on stdout, the text goes to stderr so the two never mix.
    # rich is imported only now: the first request should not wait for it.
    if outputs.verbosity is Verbosity.NORMAL:
        from rich.console import Console

        from tether.report import text

        console = Console(stderr=outputs.json_path == "-")
        text.print_summary(doc, gate_failures, console)
    elif outputs.verbosity is Verbosity.QUIET:
        from tether.report import text

        for line in text.quiet_lines(doc, gate_failures):
            click.echo(line, err=outputs.json_path == "-")
    if nothing_to_send(doc) and outputs.verbosity > Verbosity.SILENT:
        click.echo("tether: no request was sent: there was no record to send", err=True)
    return exit_status(doc, gate_failures)


Writer = Callable[[str], None]


def _writers(
    doc: SummaryDocument, outputs: Outputs, per_record: PerRecord | None
) -> Iterator[tuple[str, str, Writer]]:
    """Each output asked for: its flag, its path, and what writes it there."""
    if outputs.json_path:
        yield "--json", outputs.json_path, functools.partial(json_report.write, doc)
    if outputs.junit:

        def junit_file(path: str) -> None:
            from tether.report import junit  # here: xml.etree is not needed for most runs

            with open(path, "wb") as out:
                out.write(junit.render(doc, per_record))

        yield "--junit", outputs.junit, junit_file
    if outputs.html:

        def html_file(path: str) -> None:
            from tether.report import html

            with open(path, "w", encoding="utf-8") as page:
                page.write(html.render(doc))

        yield "--html", outputs.html, html_file


@contextlib.contextmanager
def _results_sink(
    path: str | None, secret: frozenset[str], say: bool = True
) -> Iterator[ResultsWriter | None]:
    """The results file's writer. A write that fails is said at once (unless not ``say``:
    --silent), and the run goes on."""
    if not path:
        yield None
        return

    def said(exc: OSError) -> None:
        sentence = not_written("--results", path, exc)
        if say:
            click.echo(f"tether: {sentence}: the run goes on without it", err=True)

    # Not a with block: its close would raise the full disk's error again, already said.
    stream = open(path, "w", encoding="utf-8")  # noqa: SIM115
    try:
        yield ResultsWriter(stream, secret, on_failure=said)
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def raise_fd_limit() -> None:
    """Leak mode and high concurrency need many sockets: lift the soft limit to the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
