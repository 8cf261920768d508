"""A capture's life: the listener up, the proxy forwarding until a signal, ``--limit`` or
the caller stops it, then what is in flight answered (within a grace), the records file
closed whole, and what happened (:class:`Captured`) handed back."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from tether.capture import Capture
from tether.engine.client import Client
from tether.engine.options import WHOLE_BODY_DRAIN_LIMIT, ClientOptions
from tether.engine.request import split_url
from tether.errors import InputError
from tether.http.urls import host_port
from tether.ledger import Ledger
from tether.proxy.forward import Proxy, RecordsFile, Tally
from tether.proxy.listener import Limits, Listener
from tether.proxy.mirror import Mirror
from tether.proxy.options import CaptureOptions
from tether.proxy.recording import RecordRules
from tether.secrets import secret_names

__all__ = ["Captured", "capture", "listen_address", "upstream_options"]

GRACE = 5.0  # seconds what is in flight may take to be answered once the proxy stops


@dataclass(slots=True)
class Captured:
    """What a capture did: the proxy's tally, the client side's counts, the upstream's
    connection ledger, the mirror (when there was one), and the signal that ended it."""

    tally: Tally
    accepted: int
    refused: dict[int, int]
    ledger: Ledger
    mirror: Mirror | None
    signal: str | None = None


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a host and a port; InputError otherwise."""
    found = host_port(text)
    if found is None:
        raise InputError(f"--listen {text!r}: give HOST:PORT (as in 127.0.0.1:8081)")
    return found


def _origin(url: str, what: str) -> str:
    """``url`` when it names an origin (a path prefix is not proxied to)."""
    split = split_url(url)
    if split.target not in ("", "/"):
        raise InputError(f"{what} {url!r}: give an origin (scheme://host:port), not a path")
    return url.rstrip("/")


def upstream_options(options: CaptureOptions, given: ClientOptions) -> ClientOptions:
    """The engine's settings for the upstream: whole bodies read (they are answered and
    recorded), no User-Agent of tether's added to what a client sent, and never more
    connections than are kept idle, so that the upstream sees the reuse it would see from
    its clients at best."""
    most = options.max_idle_per_host
    return replace(
        given,
        drain_limit=WHOLE_BODY_DRAIN_LIMIT,
        max_body=WHOLE_BODY_DRAIN_LIMIT,
        max_idle_per_host=most,
        max_conns_per_host=most,
        follow_redirects=0,
        user_agent="",
    )


def _rules(options: CaptureOptions) -> RecordRules:
    capture = Capture.from_options(options.keep_header, options.ignore_json_path, options.max_body)
    return RecordRules(
        capture,
        options.only,
        options.exclude,
        options.max_body,
        options.keep_secrets,
        secret_names(options.redact_header),
    )


def _mirror(
    options: CaptureOptions, client: ClientOptions, heard: Callable[[str, str], None]
) -> Mirror | None:
    if options.mirror is None:
        if options.mirror_secondary or options.mirror_unsafe:
            raise InputError("--mirror-secondary and --mirror-unsafe go with --mirror")
        return None
    # Pools of their own, keeping as many idle as the upstream's; what bounds the mirrors in
    # flight is the mirror's own count (Mirror.most), so their pools wait for nothing.
    mirror_client = replace(client, max_conns_per_host=0)
    secondary = options.mirror_secondary
    return Mirror(
        Client(mirror_client, target=_origin(options.mirror, "--mirror")),
        Client(mirror_client, target=_origin(secondary, "--mirror-secondary"))
        if secondary
        else None,
        options.mirror_unsafe,
        heard=heard,
    )


async def capture(
    options: CaptureOptions,
    client_options: ClientOptions,
    say: Callable[[str], None],
    heard: Callable[[str, str], None],
    stop_signals: Sequence[signal.Signals],
) -> Captured:
    """Run the proxy until one of ``stop_signals`` (or ``--limit``). ``say`` gets the
    sentence that says where it listens; ``heard`` each difference a mirror finds first."""
    host, port = listen_address(options.listen)
    upstream = _origin(options.upstream, "--upstream")
    engine = upstream_options(options, client_options)
    mirror = _mirror(options, engine, heard)
    out = RecordsFile(options.output)
    stop = asyncio.Event()
    client = Client(engine, target=upstream)
    proxy = Proxy(
        client, upstream, _rules(options), out.write, options.via, options.limit, mirror, stop.set
    )
    limits = Limits(
        max_head=options.max_head,
        request_timeout=options.client_timeout,
        idle_timeout=options.client_idle_timeout,
    )
    listener = Listener(proxy.handle, limits)
    stopped_by: list[str] = []
    loop = asyncio.get_running_loop()
    try:
        port = await listener.start(host, port)
    except OSError as exc:
        out.close()
        raise InputError(f"--listen {options.listen}: {exc.strerror}") from None
    for sig in stop_signals:
        loop.add_signal_handler(sig, _stopping, stop, stopped_by, sig)
    say(f"capture: listening on http://{host}:{port}, forwarding to {upstream}")
    flusher = loop.create_task(_flush_every_second(out))
    try:
        await stop.wait()
    finally:
        for sig in stop_signals:
            loop.remove_signal_handler(sig)
        await _wind_down(listener, mirror, client)
        flusher.cancel()
        out.close()
    return Captured(
        proxy.tally,
        listener.accepted,
        dict(listener.refused),
        client.ledger,
        mirror,
        stopped_by[0] if stopped_by else None,
    )


def _stopping(stop: asyncio.Event, stopped_by: list[str], sig: signal.Signals) -> None:
    if not stopped_by:
        stopped_by.append(signal.Signals(sig).name)
    stop.set()


async def _flush_every_second(out: RecordsFile) -> None:
    while True:
        await asyncio.sleep(1.0)
        out.flush()


async def _wind_down(listener: Listener, mirror: Mirror | None, client: Client) -> None:
    """No new connections; what clients wait for is answered within :data:`GRACE`; then
    every connection closes (the ledger is whole once the client is closed)."""
    listener.stop_listening()
    loop = asyncio.get_running_loop()
    until = loop.time() + GRACE
    while any(conn.busy for conn in listener.connections) and loop.time() < until:
        await asyncio.sleep(0.02)
    listener.close()
    if mirror is not None:
        await mirror.finish(max(0.0, until - loop.time()) + 1.0)
    await client.aclose()
