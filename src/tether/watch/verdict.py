"""What a watched run's figures mean, in plain sentences. Pure: figures in, sentences out."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Counted", "cross_check", "leak_verdict"]


@dataclass(frozen=True, slots=True)
class Counted:
    """Open connections at the watch's first and last samples, and the most at any."""

    first: float
    peak: float
    last: float


def allowance(concurrency: int) -> float:
    """How far a server's open connections may rise during a run before it is a leak: a
    client that reuses its connections needs one per request in flight, a few to spare for
    the server's own (a status page, a health check) and some slack for connections the
    server has not yet noticed closed."""
    return 2 * concurrency + 10


def leak_verdict(
    what: str, server: Counted, own: Counted, requests: int, concurrency: int
) -> str | None:
    """A sentence when ``what`` (the server's open connections, or goroutines serving them)
    grew with the requests while the client's concurrency stayed at ``concurrency``, saying
    whose the growth is: ``own`` is tether's own open connections (the run's ledger) at the
    same samples. None when it stayed within what that concurrency needs."""
    if requests <= 0 or server.last - server.first <= allowance(concurrency):
        return None
    return (
        f"{what} grew from {server.first:,.0f} to {server.last:,.0f} over {requests:,} "
        f"requests at concurrency {concurrency:,}{_whose(server, own, concurrency)}"
    )


def _whose(server: Counted, own: Counted, concurrency: int) -> str:
    """The growth is tether's as far as tether's own open connections grew past what its
    concurrency needs; the rest came from other clients of the same server (a server's
    count cannot tell its clients apart, but tether's ledger knows its own)."""
    mine = own.last - own.first
    others = (server.last - server.first) - max(mine, 0)
    if mine <= allowance(concurrency):
        return (
            f" while tether's own open connections never rose above {own.peak:,.0f}: the "
            "growth came from another client of this server, not from tether"
        )
    said = (
        f", and tether's own open connections grew with it from {own.first:,.0f} to "
        f"{own.last:,.0f}: the growth is tether's, its connections are not being reused or "
        "closed"
    )
    if others > allowance(concurrency):
        said += f"; {others:,.0f} more came from other clients of this server"
    return said


def cross_check(accepted: int, opened: int, watch_opened: int, failed: int) -> str:
    """nginx's count of connections accepted during the run against tether's ledger
    (``opened`` by the run, ``watch_opened`` by the watch itself, ``failed`` connects)."""
    ours = opened + watch_opened
    own = f" (and the watch {watch_opened:,})" if watch_opened else ""
    if accepted == ours:
        return (
            f"nginx accepted {accepted:,} connections during the run; tether opened "
            f"{opened:,}{own}: the two agree"
        )
    if accepted > ours:
        return (
            f"nginx accepted {accepted:,} connections during the run but tether opened only "
            f"{opened:,}{own}: {accepted - ours:,} came from other clients of this server"
        )
    return (
        f"tether opened {opened:,} connections{own} but nginx accepted only {accepted:,} "
        f"during the run: {ours - accepted:,} not seen by nginx "
        f"(tether counted {failed:,} failed connects)"
    )
