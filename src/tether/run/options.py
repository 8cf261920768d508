"""What a run is asked to do: how much to send, how, and what to watch. Pure data;
each field declares the flags that set it (:mod:`tether.flags`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.flags import Flag, Kind, flag, internal, made_of
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
        metadata=flag("--concurrency", "-c", kind=Kind.COUNT, help="Workers (closed model)."),
    )
    requests: int | None = field(
        default=None,
        metadata=flag("--requests", "-n", kind=Kind.COUNT, help="Send this many (records cycle)."),
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
                help="Open model: R requests/s (or a ramp R:R2 over --duration).",
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
    check_in_full: bool = field(
        default=False, metadata=internal("for the tests that prove the fast check")
    )
    compiled: bool = field(
        default=True, metadata=internal("for the tests that prove the compiled path")
    )

    @property
    def cycles(self) -> bool:
        """Whether the records start over when a pass ends: for a count, or a duration.
        Not for a duration on the records' own schedule (``--pace``), whose times a second
        pass would repeat from its start: there the duration only cuts the schedule short."""
        timed = bool(self.duration) and not isinstance(self.rate, OriginalPace)
        return self.requests is not None or timed
