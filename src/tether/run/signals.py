"""The signals that stop a run the way Ctrl-C does: the summary of what was done is still
printed and written, marked interrupted, and the exit status says which signal it was
(128 + its number, as a shell reports a process a signal ended). CI timeouts, ``docker
stop`` and Kubernetes send SIGTERM; a closed terminal sends SIGHUP."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A stop signal other than SIGINT, raised where Ctrl-C raises KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def name_of(exc: KeyboardInterrupt) -> str:
    """The name of the signal behind an interrupt (Ctrl-C's, unless it was :class:`Stopped`)."""
    return signal.Signals(exc.signum if isinstance(exc, Stopped) else signal.SIGINT).name


def exit_status(name: str | None) -> int:
    """A run stopped by the signal ``name``: 128 plus its number (SIGINT when unknown)."""
    return 128 + signal.Signals[name or "SIGINT"].value


@contextmanager
def raising() -> Iterator[None]:
    """While in the block, SIGTERM and SIGHUP raise :class:`Stopped` as SIGINT raises
    KeyboardInterrupt, for code that waits outside an event loop (a cluster's gathering)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signum)

    others = [s for s in STOP_SIGNALS if s != signal.SIGINT]
    previous = {s: signal.signal(s, stop) for s in others}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
