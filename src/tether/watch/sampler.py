"""The watch's sampler: every interval, each source is read on the run's own event loop (its
HTTP sources through a client of tether's own, kept apart from the run's ledger), and the
figures go into bounded series, each sample with tether's own open connections at that
moment (:data:`OWN_OPEN`, from the run's ledger), so that a server's growth can be told from
tether's. At the end, :func:`conclude` turns them into the summary's ``"watch"`` document,
verdicts included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tether.document import Watch, WatchSource
from tether.engine.client import Client
from tether.engine.options import WHOLE_BODY_DRAIN_LIMIT, ClientOptions
from tether.ledger import Ledger
from tether.model import KEEP_BODY, Record
from tether.watch import Source, nginx, port, pprof, prom
from tether.watch.verdict import Counted, cross_check, leak_verdict

__all__ = ["MAX_POINTS", "OWN_OPEN", "Track", "Watcher", "conclude"]

OWN_OPEN = "tether_open"
"""The figure every sample adds to its source's: the run's own open connections (its
ledger's) when the sample was taken."""


MAX_POINTS = 400
"""A series keeps at most this many points: when full, every other one goes and the rest are
kept at half the rate, so a run of any length costs the same memory."""


@dataclass(slots=True)
class Track:
    """One source's samples: the first, peak and last of each figure (from every sample),
    and a series of (seconds, requests done, figures) thinned to :data:`MAX_POINTS`."""

    source: Source
    samples: int = 0
    errors: int = 0
    last_error: str | None = None
    metric_type: str | None = None  # prom: the metric's declared type
    first: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    points: list[tuple[float, int, dict[str, float]]] = field(default_factory=list)
    _every: int = 1

    def add(self, seconds: float, requests: int, figures: dict[str, float]) -> None:
        """Keep one sample."""
        if not self.samples:
            self.first = dict(figures)
        self.samples += 1
        self.last = dict(figures)
        for name, value in figures.items():
            self.peak[name] = max(self.peak.get(name, value), value)
        if (self.samples - 1) % self._every == 0:
            self.points.append((seconds, requests, figures))
            if len(self.points) > MAX_POINTS:
                self.points = self.points[::2]
                self._every *= 2

    def failed(self, error: str) -> None:
        """A sample that could not be taken: counted, the last reason kept."""
        self.errors += 1
        self.last_error = error

    def to_dict(self) -> WatchSource:
        """This source's part of the ``"watch"`` document."""
        names = list(self.last)
        return {
            "source": self.source.spec,
            "samples": self.samples,
            "errors": self.errors,
            "last_error": self.last_error,
            "metric_type": self.metric_type,
            "figures": {
                name: {"first": self.first.get(name), "peak": self.peak[name], "last": value}
                for name, value in self.last.items()
            },
            "series": {
                "seconds": [round(t, 3) for t, _, _ in self.points],
                "requests": [n for _, n, _ in self.points],
                **{name: [p.get(name) for _, _, p in self.points] for name in names},
            },
        }


class Watcher:
    """Samples ``sources`` every ``interval`` seconds from :meth:`start` to :meth:`stop`;
    ``progress`` says how many requests the run has done so far, ``ledger`` (the run's) how
    many connections it has open."""

    def __init__(
        self,
        sources: Sequence[Source],
        interval: float,
        progress: Callable[[], int],
        ledger: Ledger,
    ) -> None:
        self.tracks = [Track(source) for source in sources]
        self.interval = interval
        self._progress = progress
        self._ledger = ledger
        # Status pages are small, but a goroutine dump of a leaking Go server is not.
        options = ClientOptions(timeout=max(2.0, interval), drain_limit=WHOLE_BODY_DRAIN_LIMIT)
        self.client = Client(options)
        self._started = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take the baseline sample (before any request), then sample in the background."""
        self._started = time.perf_counter()
        await self.sample()
        self._task = asyncio.get_running_loop().create_task(self._every_interval())

    async def stop(self) -> None:
        """Stop sampling and take the last sample, while the run's connections are still as
        the run left them (before its pool closes them)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.sample()
        await self.client.aclose()

    async def sample(self) -> None:
        """One sample of every source, read side by side."""
        seconds = time.perf_counter() - self._started
        requests = self._progress()
        own = float(self._ledger.open_now)
        await asyncio.gather(
            *(self._sample(track, seconds, requests, own) for track in self.tracks)
        )

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.sample()

    async def _sample(self, track: Track, seconds: float, requests: int, own: float) -> None:
        try:
            figures = await self._read(track)
        except (OSError, ValueError) as exc:
            track.failed(f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc))
            return
        track.add(seconds, requests, {**figures, OWN_OPEN: own})

    async def _read(self, track: Track) -> dict[str, float]:
        source = track.source
        if source.kind == "port":
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, port.read, int(source.where))
        text = await self._fetch(source.where)
        if source.kind == "nginx":
            return nginx.parse(text)
        if source.kind == "pprof":
            return pprof.parse(text)
        value, track.metric_type = prom.parse(text, source.metric)
        return {"value": value}

    async def _fetch(self, url: str) -> str:
        outcome = await self.client.fetch(Record("GET", url, expect=KEEP_BODY))
        if outcome.error is not None:
            raise ValueError(f"{url}: {outcome.error}")
        if outcome.status != 200:
            raise ValueError(f"{url}: status {outcome.status}")
        return (outcome.body or b"").decode("utf-8", "replace")


def conclude(watcher: Watcher, requests: int, concurrency: int, opened: int, failed: int) -> Watch:
    """The summary's ``"watch"`` document: each source's figures and series, a leak verdict
    per source whose open connections grew past what ``concurrency`` needs (saying whether
    tether's own grew with them), and nginx's accepted connections checked against tether's
    ``opened``."""
    verdicts: list[str] = []
    checks: list[str] = []
    for track in watcher.tracks:
        source = track.source
        counter = source.kind == "prom" and track.metric_type == "counter"
        key = source.open_metric
        if track.samples >= 2 and not counter and key in track.first:
            server, ours = _counted(track, key), _counted(track, OWN_OPEN)
            found = leak_verdict(source.open_label, server, ours, requests, concurrency)
            if found is not None:
                verdicts.append(found)
        if source.kind == "nginx" and track.samples >= 2:
            accepted = int(track.last["accepts"] - track.first["accepts"])
            # The baseline sample's own connection is already in its count; any later one
            # (nginx closing the watch's idle connection) is the watch's, not the run's.
            own = max(watcher.client.ledger.opened - 1, 0)
            checks.append(cross_check(accepted, opened, own, failed))
    return {
        "interval_s": watcher.interval,
        "sources": [track.to_dict() for track in watcher.tracks],
        "leak_verdicts": verdicts,
        "cross_checks": checks,
    }


def _counted(track: Track, name: str) -> Counted:
    return Counted(track.first[name], track.peak[name], track.last[name])
