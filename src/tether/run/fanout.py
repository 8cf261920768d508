"""Each record sent to several services at once (``tether diff``): the outcomes of one record
side by side, handed to a callback in record order per worker.

Every service gets a client of its own (its own pool and ledger). Bodies are kept, whatever
the records expect, since the point is to compare them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence

from tether.engine.client import Client
from tether.engine.options import ClientOptions
from tether.errors import InputError, RecordError
from tether.model import KEEP_BODY, Outcome, Record
from tether.records import Items

__all__ = ["fan_out"]


async def fan_out(
    items: Items,
    targets: Sequence[str],
    concurrency: int,
    options: ClientOptions,
    each: Callable[[Record, list[Outcome]], None],
    bad: Callable[[RecordError], None],
) -> list[Client]:
    """Send every record to every target; ``each(record, outcomes)`` in target order. Bad
    records go to ``bad``. Returns the clients (closed), whose ledgers hold the counts."""
    clients = [Client(options, target=target) for target in targets]
    lock = asyncio.Lock()  # the records iterator is shared by the workers

    async def next_record() -> Record | None:
        async with lock:
            for item in items:
                if isinstance(item, RecordError):
                    bad(item)
                    continue
                return item
            return None

    async def worker() -> None:
        while (record := await next_record()) is not None:
            sent = dataclasses.replace(record, expect=KEEP_BODY)
            try:
                outcomes = await asyncio.gather(*(c.fetch(sent) for c in clients))
            except InputError as exc:  # a URL a target cannot take: this record's fault
                bad(RecordError(record.source, record.line, str(exc)))
                continue
            each(record, [dataclasses.replace(o, record=record) for o in outcomes])

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        for client in clients:
            await client.aclose()
    return clients
