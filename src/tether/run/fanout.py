"""Each record sent to several services at once (``tether diff``): the outcomes of one record
side by side, handed to a callback in record order per worker.

Every service gets a client of its own (its own pool and ledger). Bodies are kept, whatever
the records expect, since the point is to compare them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from itertools import chain, islice

from tether.engine.client import Client
from tether.engine.options import ClientOptions
from tether.engine.request import split_url
from tether.errors import InputError, RecordError
from tether.flow.cookies import CookieJar
from tether.model import KEEP_BODY, Outcome, Record
from tether.records import Items
from tether.run.flows import FLOW_MOST, FlowSettings, Refused, Step, captured, filled, flows_of

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
    head = list(islice(items, FLOW_MOST + 1))
    if any(isinstance(item, Record) and item.in_flow for item in head):
        try:
            await _fan_out_flows(head, clients, each, bad)
        finally:
            for client in clients:
                await client.aclose()
        return clients
    items = chain(head, items)
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


async def _fan_out_flows(
    items: list[Record | RecordError],
    clients: list[Client],
    each: Callable[[Record, list[Outcome]], None],
    bad: Callable[[RecordError], None],
) -> None:
    """A flow file: one iteration of each flow, every service with a user of its own (its
    variables and cookie jar), each step's outcomes side by side. A step that cannot be
    filled for a service is a bad record, and sent to none."""
    for item in items:
        if isinstance(item, RecordError):
            bad(item)
    records = [item for item in items if isinstance(item, Record)]
    try:
        flows = flows_of(records, FlowSettings())
    except InputError as exc:
        bad(RecordError(records[0].source, 0, str(exc)))
        return
    for flow in flows:
        users: list[tuple[dict[str, str], CookieJar]] = [({}, CookieJar()) for _ in clients]
        for step in flow.steps:
            sent = _filled(step, users, clients)
            if isinstance(sent, RecordError):
                bad(sent)
                continue
            outcomes = await asyncio.gather(
                *(c.fetch(r) for c, r in zip(clients, sent, strict=True))
            )
            for outcome, (values, jar) in zip(outcomes, users, strict=True):
                if outcome.error is None:
                    response = (outcome.status, outcome.headers, outcome.body)
                    captured(step.record, response, values, jar, split_url(outcome.url))
            each(step.record, [dataclasses.replace(o, record=step.record) for o in outcomes])


def _filled(
    step: Step, users: list[tuple[dict[str, str], CookieJar]], clients: list[Client]
) -> list[Record] | RecordError:
    sent = []
    record = step.record
    for (values, jar), client in zip(users, clients, strict=True):
        try:
            sent.append(
                dataclasses.replace(filled(step, values, jar, client.base), expect=KEEP_BODY)
            )
        except Refused as exc:
            return RecordError(record.source, record.line, str(exc))
    return sent
