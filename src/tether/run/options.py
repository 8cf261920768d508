"""What a run is asked to do: how much to send, how, and what to watch. Pure data;
each field declares the flags that set it (:mod:`tether.flags`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.flags import Flag, Kind, flag, internal, made_of
from tether.flow.data import DataRows
from tether.flow.data import read as read_data
from tether.run.flows import FlowSettings, parse_weights
from tether.run.pacer import OriginalPace, Schedule
from tether.secrets import SECRET_HEADERS
from tether.watch import Source, parse_source


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How much to send and how. ``requests`` beyond the number of records cycles them,
    and so does a ``duration`` (as wrk, hey -z and k6 run: until the time is up); with
    both, the run ends at whichever comes first; with neither each record is sent once
    (see :attr:`cycles`).

    Without ``rate`` the model is closed: ``concurrency`` workers, each sending when its last
    response is in. With ``rate`` it is open: requests start on the pacer's schedule whatever
    the responses do, at most ``max_inflight`` at once; the rest wait, counted as late.

    ``share`` = (k, n) sends only every n-th request from the k-th of those one process
    would send (:func:`tether.run.feed.dealt`): one process's part of a run split over n
    (see :mod:`tether.run.processes`), with its part of ``requests`` and ``concurrency``.

    ``check_in_full`` judges every response with :func:`tether.check.check`, never vouched
    for by its expectation compiled for the hot path (:class:`tether.check.QuickCheck`):
    slower, and counts alike; it is there to prove the fast path against the full one.
    ``compiled`` lets the closed model's common case run compiled when the extension is
    built (see :mod:`tether.engine.compiled`); False keeps every request on the Python path,
    which counts alike.
    """

    target: str | None = field(
        default=None,
        metadata=flag("--target", "-t", help="Base URL that record paths are joined to."),
    )
    concurrency: int = field(
        default=1,
        metadata=flag(
            "--concurrency",
            "-c",
            kind=Kind.COUNT,
            help="Workers (closed model); for a flow, virtual users.",
        ),
    )
    requests: int | None = field(
        default=None,
        metadata=flag(
            "--requests",
            "-n",
            kind=Kind.COUNT,
            help="Send this many (records cycle; a flow's iterations start while they last).",
        ),
    )
    duration: float | None = field(
        default=None,
        metadata=flag(
            "--duration",
            "-d",
            kind=Kind.POSITIVE_SECONDS,
            help="Run this long (10s, 1m30s, 2h; a bare number is seconds): records cycle "
            "until it ends, or --requests does, whichever comes first.",
        ),
    )
    strict: bool = field(
        default=False,
        metadata=flag(
            "--strict",
            kind=Kind.SWITCH,
            help="Check every record first; any bad one stops the run.",
        ),
    )
    # One schedule of two flags, and of --duration (a ramp's length): the command makes it.
    rate: Schedule | None = field(
        default=None,
        metadata=made_of(
            Flag(
                ("--rate", "-r"),
                metavar="R[:R2]",
                help="Open model: R requests/s (or a ramp R:R2 over --duration); for a flow, "
                "R iterations/s, each arrival starting one.",
            ),
            Flag(
                ("--pace",),
                metavar="original[xF]",
                help="Open model at the records' own times (HAR, logs), F times faster.",
            ),
        ),
    )
    max_inflight: int = field(
        default=1000,
        metadata=flag(
            "--max-inflight",
            kind=Kind.COUNT,
            help="Open model: most requests in flight; the rest wait and count as late.",
        ),
    )
    share: tuple[int, int] = field(
        default=(0, 1), metadata=internal("one process's part of a split run: the split sets it")
    )
    watch: tuple[Source, ...] = field(
        default=(),
        metadata=flag(
            "--watch",
            multiple=True,
            metavar="SPEC",
            each=parse_source,
            help="Watch the server: port:N, nginx:URL, pprof:URL or prom:URL#metric.",
        ),
    )
    watch_interval: float = field(
        default=0.5,
        metadata=flag(
            "--watch-interval",
            kind=Kind.POSITIVE_SECONDS,
            help="Time between watch samples (500ms, 2s).",
        ),
    )
    # Header values reports do not show: the defaults, more, or none.
    secret: frozenset[str] = field(
        default=SECRET_HEADERS,
        metadata=made_of(
            Flag(
                ("--redact-header",),
                multiple=True,
                metavar="NAME",
                help="Mask this header's values in reports too (Authorization, Cookie and "
                "Set-Cookie always are).",
            ),
            Flag(
                ("--show-secrets",),
                kind=Kind.SWITCH,
                help="Show secret header values in reports.",
            ),
        ),
    )
    iterations: int | None = field(
        default=None,
        metadata=flag(
            "--iterations",
            kind=Kind.COUNT,
            help="Flows: run this many iterations (each a flow from its first record to its "
            "last), over all virtual users.",
        ),
    )
    on_capture_miss: str = field(
        default="skip-flow",
        metadata=flag(
            "--on-capture-miss",
            kind=Kind.CHOICE,
            choices=("skip-flow", "continue"),
            help="Flows: a capture that finds nothing fails its request and skips the rest of "
            "the iteration (skip-flow), or the iteration goes on without it (continue).",
        ),
    )
    no_cookies: bool = field(
        default=False,
        metadata=flag(
            "--no-cookies",
            kind=Kind.SWITCH,
            help="Flows: no cookie jar (each virtual user keeps one by default, fresh each "
            "iteration).",
        ),
    )
    flow_weights: tuple[tuple[str, int], ...] | None = field(
        default=None,
        metadata=flag(
            "--flow-weights",
            metavar="NAME=W,...",
            each=parse_weights,
            help='Flows: mix a file\'s flows (records with a "flow" key) as login=3,browse=7; '
            "a flow left out does not run.",
        ),
    )
    data: DataRows | None = field(
        default=None,
        metadata=flag(
            "--data",
            kind=Kind.FILE,
            metavar="CSV",
            each=read_data,
            help="Flows: a CSV file with a header row; each iteration takes the next row's "
            "values as variables ({{user}}), cycling.",
        ),
    )
    data_mode: str = field(
        default="cycle",
        metadata=flag(
            "--data-mode",
            kind=Kind.CHOICE,
            choices=("cycle", "unique"),
            help="Flows: cycle through --data's rows, or use each row once over the whole "
            "run (workers and cluster included) and stop when they run out.",
        ),
    )
    check_in_full: bool = field(
        default=False, metadata=internal("for the tests that prove the fast check")
    )
    compiled: bool = field(
        default=True, metadata=internal("for the tests that prove the compiled path")
    )

    def flow_settings(self) -> FlowSettings:
        """How this run's flows run, if its records are a flow."""
        return FlowSettings(
            skip_on_miss=self.on_capture_miss == "skip-flow",
            cookies=not self.no_cookies,
            weights=self.flow_weights or (),
            data=self.data,
            unique=self.data_mode == "unique",
            mask=bool(self.secret),
        )

    @property
    def cycles(self) -> bool:
        """Whether the records start over when a pass ends: for a count, or a duration.
        Not for a duration on the records' own schedule (``--pace``), whose times a second
        pass would repeat from its start: there the duration only cuts the schedule short."""
        timed = bool(self.duration) and not isinstance(self.rate, OriginalPace)
        return self.requests is not None or timed
