"""tether: replay HTTP request records, check every response, account for every connection.

From Python::

    import tether

    summary = tether.run("records.jsonl", target="http://127.0.0.1:8080")
    assert summary.mismatches == 0
    assert summary.ledger.opened == 1

or, for one request at a time inside async code, :class:`tether.Client`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tether.check import check
from tether.engine.client import Client
from tether.engine.options import ClientOptions, default_of
from tether.errors import (
    ConnectError,
    ConnectionClosed,
    HeadersTooLarge,
    InputError,
    ProtocolError,
    RecordError,
    RequestError,
    StaleConnection,
    TetherError,
    TimeoutError_,
    TooManyRedirects,
)
from tether.flow.data import read as read_data
from tether.gates import Gates, failures
from tether.ledger import CloseReason, Ledger
from tether.metrics.summary import Summary
from tether.model import BodyExpect, Expect, HeaderExpect, Mismatch, Outcome, Record
from tether.records import file_source
from tether.run.feed import RecordSource
from tether.run.options import RunOptions
from tether.run.pacer import Pacer, parse_rate
from tether.run.session import run as _run
from tether.run.session import run_async
from tether.watch import parse_source

__all__ = [
    "BodyExpect",
    "Client",
    "ClientOptions",
    "CloseReason",
    "ConnectError",
    "ConnectionClosed",
    "Expect",
    "Gates",
    "HeaderExpect",
    "HeadersTooLarge",
    "InputError",
    "Ledger",
    "Mismatch",
    "Outcome",
    "Pacer",
    "ProtocolError",
    "Record",
    "RecordError",
    "RequestError",
    "RunOptions",
    "StaleConnection",
    "Summary",
    "TetherError",
    "TimeoutError_",
    "TooManyRedirects",
    "check",
    "failures",
    "run",
    "run_async",
]


def run(
    records: str | os.PathLike[str] | Iterable[Record],
    *,
    target: str | None = default_of(RunOptions, "target"),
    concurrency: int = default_of(RunOptions, "concurrency"),
    requests: int | None = default_of(RunOptions, "requests"),
    duration: float | None = default_of(RunOptions, "duration"),
    strict: bool = default_of(RunOptions, "strict"),
    rate: str | float | None = None,
    max_inflight: int = default_of(RunOptions, "max_inflight"),
    watch: Sequence[str] = (),
    watch_interval: float = default_of(RunOptions, "watch_interval"),
    iterations: int | None = default_of(RunOptions, "iterations"),
    on_capture_miss: str = default_of(RunOptions, "on_capture_miss"),
    no_cookies: bool = default_of(RunOptions, "no_cookies"),
    flow_weights: Mapping[str, int] | None = None,
    data: str | os.PathLike[str] | None = None,
    data_mode: str = default_of(RunOptions, "data_mode"),
    **client_options: Any,
) -> Summary:
    """Replay ``records`` (a JSONL path, or Record objects) and return the closed summary.

    With neither ``requests`` nor ``duration`` (seconds) each record is sent once; with
    either, the records cycle until it is reached (with both, whichever comes first), as
    the CLI's ``-n`` and ``-d`` do. ``rate`` switches to the open model (requests per
    second, or ``"R1:R2"`` to ramp over ``duration``). ``watch`` takes the CLI's
    ``--watch`` specs (``"port:8080"``, ...); the summary's ``watch`` then holds what they
    showed. ``client_options`` are :class:`ClientOptions` fields (``timeout=5``,
    ``leak=True``, ...). A flow's keywords are the CLI's flags of the same names
    (``flow_weights={"login": 3, "browse": 7}``, ``data="users.csv"``). Blocking: it runs
    its own event loop, so call it from synchronous code (a test).
    """
    source: RecordSource
    if isinstance(records, (str, os.PathLike)):
        source = file_source(os.fspath(records))
    else:
        items = list(records)
        source = items.__iter__
    pacer = parse_rate(str(rate), duration) if rate is not None else None
    run_options = RunOptions(
        target=target,
        concurrency=concurrency,
        requests=requests,
        duration=duration,
        strict=strict,
        rate=pacer,
        max_inflight=max_inflight,
        watch=tuple(parse_source(spec) for spec in watch),
        watch_interval=watch_interval,
        iterations=iterations,
        on_capture_miss=on_capture_miss,
        no_cookies=no_cookies,
        flow_weights=tuple(flow_weights.items()) if flow_weights else None,
        data=read_data(os.fspath(data)) if data is not None else None,
        data_mode=data_mode,
    )
    return _run(source, run_options, ClientOptions(**client_options))
