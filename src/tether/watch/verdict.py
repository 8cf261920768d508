"""What a watched run's figures mean, in plain sentences. Pure: figures in, sentences out."""

from __future__ import annotations

__all__ = ["cross_check", "leak_verdict"]


def allowance(concurrency: int) -> float:
    """How far a server's open connections may rise during a run before it is a leak: a
    client that reuses its connections needs one per request in flight, a few to spare for
    the server's own (a status page, a health check) and some slack for connections the
    server has not yet noticed closed."""
    return 2 * concurrency + 10


def leak_verdict(
    what: str, first: float, last: float, requests: int, concurrency: int
) -> str | None:
    """A sentence when ``what`` (the server's open connections, or goroutines serving them)
    grew with the requests while the client's concurrency stayed at ``concurrency``; None
    when it stayed within what that concurrency needs."""
    if requests <= 0 or last - first <= allowance(concurrency):
        return None
    return (
        f"{what} grew from {first:,.0f} to {last:,.0f} over {requests:,} requests at "
        f"concurrency {concurrency:,}: connections are not being reused or closed"
    )


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
