"""Pass/fail gates on a finished run's summary document. Pure: document in, sentences out."""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.document import SummaryDocument
from tether.flags import Kind, flag


@dataclass(frozen=True, slots=True)
class Gates:
    """Limits a run must stay within. ``None`` leaves a gate off.

    ``min_reuse`` is the fraction of requests that went out on an already-used connection
    (a sequential run of N requests on one connection reaches (N-1)/N). ``fail_on_leak``
    fails the run on any leak verdict of the watch (see :mod:`tether.watch.verdict`).
    """

    min_reuse: float | None = field(
        default=None,
        metadata=flag(
            "--min-reuse",
            kind=Kind.FRACTION,
            help="Gate: least fraction of requests on a reused connection.",
        ),
    )
    max_connections: int | None = field(
        default=None,
        metadata=flag(
            "--max-connections", kind=Kind.NATURAL, help="Gate: most connections opened."
        ),
    )
    fail_on_leak: bool = field(
        default=False,
        metadata=flag(
            "--fail-on-leak",
            kind=Kind.SWITCH,
            help="Gate: fail when a watched server's connections pile up.",
        ),
    )


def failures(gates: Gates, doc: SummaryDocument) -> list[str]:
    """One plain sentence per breached gate; empty when all hold."""
    found: list[str] = []
    conns = doc["connections"]
    requests = doc["requests"]
    if gates.min_reuse is not None and not requests:
        found.append(f"connection reuse of {gates.min_reuse:.1%} was required, but {NOTHING}")
    elif gates.min_reuse is not None:
        fraction = conns["reused"] / requests
        if fraction < gates.min_reuse:
            found.append(
                f"connection reuse was {fraction:.1%} ({conns['reused']:,} of {requests:,} "
                f"requests on an already-used connection), below the required "
                f"{gates.min_reuse:.1%}; {_connections(conns['opened'])} opened"
            )
    if gates.max_connections is not None and conns["opened"] > gates.max_connections:
        found.append(
            f"{_connections(conns['opened'])} opened for {requests:,} requests, "
            f"more than the allowed {gates.max_connections:,}"
        )
    watch = doc.get("watch")
    if gates.fail_on_leak and watch:
        found.extend(watch["leak_verdicts"])
    return found


NOTHING = "no request was sent, so nothing could be judged"


def _connections(n: int) -> str:
    return f"{n:,} connection was" if n == 1 else f"{n:,} connections were"
