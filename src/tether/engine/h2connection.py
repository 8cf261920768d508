"""One HTTP/2 connection: an asyncio Protocol driving the h2 library's connection (framing,
HPACK, flow control), carrying as many requests at once as the server lets it (its
SETTINGS_MAX_CONCURRENT_STREAMS).

Each stream is an :class:`~tether.engine.connection.Exchange`, as a request on an HTTP/1.1
connection is, so that the send path, the checks and the reports see the same thing. What
HTTP/2 changes:

- Many streams at once: the pool hands the connection out while it has room
  (:attr:`H2Connection.has_room`), not only when it is idle.
- A stream that goes wrong is reset (RST_STREAM), not its connection: a timeout, a body
  past the drain limit. The others go on.
- A GOAWAY ends the connection gracefully: the streams up to its last stream id go on to
  their end; those above it were never processed and fail as
  :class:`~tether.errors.StreamRefused`, for the send path to retry by the stale rule.
- Bodies are read as they come and their flow-control window given back as they are
  consumed (``acknowledge_received_data``). Leak mode never gives it back: the server's
  streams stall once the window is spent, which is what a client that never reads its
  bodies does to an HTTP/2 server.
- Over TLS, ALPN decides: a server that picks ``http/1.1`` gets an HTTP/1.1
  :class:`~tether.engine.connection.Connection`, handed the transport as it stands.

The connection is ready (:attr:`H2Connection.ready`) once the server's first SETTINGS are
in: until then nobody knows how many streams it may carry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import Frame, GoAwayFrame, HeadersFrame

from tether.engine.connection import Connection
from tether.engine.exchange import Done, Phase, Stage, timed_out
from tether.engine.h2common import (
    H2,
    MOST_ACKS_OWED,
    Stream,
    code_name,
    flood_text,
    lost_before_settings,
    lost_streams,
    response_fields,
    unacked_text,
    where,
)
from tether.engine.interface import Closed, Opened, PooledConnection, State
from tether.errors import (
    ConnectError,
    HeadersTooLarge,
    ProtocolError,
    RequestError,
    StaleConnection,
    StreamRefused,
    StreamReset,
)
from tether.ledger import CloseReason, Streams
from tether.model import BodyNeed

if TYPE_CHECKING:
    from tether.engine.options import ClientOptions
    from tether.engine.request import RequestHead

_SENT, _BODY = Stage.SENT, Stage.BODY
_DRAIN = Phase.DRAIN

_NO_LIMIT = 2**31 - 1


class _H2(h2.connection.H2Connection):
    """h2's connection, but for what it does at a GOAWAY. h2 closes its state machine there
    and then refuses every frame after it as a protocol error (python-hyper/h2#1199), where
    RFC 9113 6.8 lets the streams up to the GOAWAY's last stream id go on to their end
    (nginx sends its GOAWAY at ``keepalive_requests`` before the last responses). Here a
    GOAWAY is only reported; the connection sends no new stream after it (ours to see to)
    and ends once those streams are done."""

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[Frame], list[Any]]:
        event = h2.events.ConnectionTerminated()
        event.error_code = _error_code(frame.error_code)
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]

    oversized = 0
    """The stream whose header block went past the client's limit as it was decoded (hpack
    stops there, ``max_header_list_size``: an HPACK bomb's end); 0 while none has."""

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[Frame], list[Any]]:
        try:
            return super()._receive_headers_frame(frame)
        except h2.exceptions.DenialOfServiceError:
            self.oversized = frame.stream_id  # h2's error does not say whose it was
            raise


def _error_code(code: int) -> ErrorCodes | int:
    try:
        return ErrorCodes(code)
    except ValueError:
        return code


_CONFIG = h2.config.H2Configuration(
    client_side=True, header_encoding=None, validate_inbound_headers=False
)
"""Every connection's: fields as bytes; ours validated by h2, the server's by
:func:`tether.engine.h2common.response_fields`, as the compiled path validates them: h2
would make a malformed response the whole connection's error, where it is its stream's
(RFC 9113 8.1.1)."""


class H2Connection(PooledConnection):
    """An HTTP/2 client connection (h2 over TLS, or h2c with prior knowledge), owned by a
    pool that hears of its events. ``on_released`` is told each time a stream ends, since
    each frees a place for another request."""

    protocol: ClassVar[str] = H2
    multiplexed: ClassVar[bool] = True

    def __init__(
        self,
        conn_id: int,
        key: tuple[Any, ...],
        options: ClientOptions,
        on_open: Opened,
        on_released: Opened,
        on_closed: Closed,
        counts: Streams,
    ) -> None:
        super().__init__(conn_id, key, options, on_open, on_released, on_closed)
        self.counts = counts
        self.ready: asyncio.Future[PooledConnection] = self._loop.create_future()
        """Resolved when the server's first SETTINGS are in (with this connection), or with
        the HTTP/1.1 connection that took over when ALPN picked ``http/1.1``."""
        self._h2 = _H2(_CONFIG)
        self._scheme = str(key[0])
        self._streams: dict[int, Stream] = {}  # open on the wire (they count to the max)
        self._sending: dict[int, Stream] = {}  # with request body left to send
        self._max_streams = 1  # the server's SETTINGS say; nothing is sent before them
        self._draining: CloseReason | None = None  # no new stream; close once all are done
        self._in_read = False  # frames are written once, after all a read's events
        self._headed: list[Stream] = []  # streams whose head came in the current read
        self._limit = options.drain_limit
        self._checked_limit = options.max_body
        self._max_head = options.max_response_header_bytes or _NO_LIMIT
        self._header_timeout = options.response_header_timeout
        self._drain_timeout = options.drain_timeout
        self._leak = options.leak
        self._single_use = options.disable_keep_alives
        self._acked = False  # our SETTINGS, by the server
        self._unacked: asyncio.TimerHandle | None = None  # ends it if they stay unacked
        self._paused = False  # the transport's buffer is full: the server is not reading
        self._acks_owed = 0  # see MOST_ACKS_OWED
        self._flood = ""  # the frame the last of them answers

    # -- the pool's side -------------------------------------------------------------------

    @property
    def has_room(self) -> bool:
        """Ready, open, not going away, and room for one more stream."""
        t = self.transport
        return (
            self.ready.done()
            and self._draining is None
            and len(self._streams) < self._max_streams
            and t is not None
            and not t.is_closing()
        )

    def settled(self) -> asyncio.Future[PooledConnection]:
        """The connection that carries this one's requests once the server's SETTINGS are
        in: this one, or the HTTP/1.1 connection that took over when ALPN picked it."""
        return self.ready

    def send(self, request: RequestHead, need: BodyNeed, deadline: float, done: Done) -> None:
        """Open a stream for ``request``, its fields as HTTP/2 sends them; ``done`` is called
        once with its response or error, possibly before this returns (when nothing could be
        sent). A request that says ``Connection: close`` (which HTTP/2 does not send) is the
        last: no new stream after it, and the connection closes once its streams are done."""
        ex = Stream(self.id, self.requests > 0, request.method, need, done, deadline)
        if not self.has_room:
            # Nothing was written: retried whatever the method, as on HTTP/1.1.
            ex.fail(StaleConnection("connection closed before the request", written=False))
            return
        body = request.body
        sid = self._h2.get_next_available_stream_id()
        try:
            self._h2.send_headers(sid, request.h2_fields(self._scheme), end_stream=not body)
        except h2.exceptions.TooManyStreamsError:
            # The server lowered its maximum meanwhile: nothing was written, go elsewhere.
            ex.fail(StaleConnection("no room for another stream", written=False))
            return
        except h2.exceptions.ProtocolError as exc:
            ex.fail(ProtocolError(f"request not sent over HTTP/2: {exc}"))
            return
        ex.stream_id = sid
        self._opened_stream(ex)
        if body:
            ex.pending = memoryview(body)
            self._send_body(ex)
        if self._header_timeout:
            ex.reach(_SENT, self._loop.time(), self._header_timeout, self._drain_timeout)
        if self._single_use:
            self._draining = CloseReason.KEEP_ALIVE_OFF
        elif request.closes:
            self._draining = self._draining or CloseReason.REQUEST_CLOSE
        self._flush()

    def check_deadlines(self, now: float) -> bool:
        """End the streams whose deadlines have passed (each reset, the others go on)."""
        for ex in [ex for ex in self._streams.values() if ex.due and now >= ex.due]:
            if ex.done is not None:
                self._on_deadline(ex)
        return self.state is not State.CLOSED

    def close(self, reason: CloseReason) -> None:
        """Say GOAWAY, then close (the first reason given wins). Written at once, even in
        the middle of a read: the transport closes after what is written, not after what a
        read would have flushed."""
        t = self.transport
        if t is not None and not t.is_closing() and self.ready.done():
            with contextlib.suppress(h2.exceptions.ProtocolError):  # the server ended it
                self._h2.close_connection()
                t.write(self._h2.data_to_send())
        super().close(reason)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        tls = transport.get_extra_info("ssl_object")
        if tls is not None and tls.selected_alpn_protocol() != H2:
            self._hand_over(self.transport)
            return
        codes = h2.settings.SettingCodes
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={codes.ENABLE_PUSH: 0, codes.MAX_HEADER_LIST_SIZE: self._max_head},
        )
        # A client has nothing to say of extended CONNECT (RFC 8441 is the server's to offer).
        del self._h2.local_settings[codes.ENABLE_CONNECT_PROTOCOL]
        self._h2.decoder.max_header_list_size = self._max_head
        self._h2.initiate_connection()
        self._flush()
        self.counts.connections += 1
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        self._in_read = True
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._in_read = False
            self._broken(exc)
            return
        for event in events:
            handle = _HANDLERS.get(type(event))
            if handle is not None:
                handle(self, event)
        self._in_read = False
        if self._acks_owed > MOST_ACKS_OWED:
            self._flooded()
            return
        self._body_goes_on()
        self._flush()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        streams = list(self._streams.values())
        self._streams.clear()
        self._sending.clear()
        reason, failed = lost_streams(self._close_reason, self._draining, streams, exc)
        self.counts.stalled += sum(1 for ex in streams if ex.leaked)
        self.state = State.CLOSED
        if self._unacked is not None:
            self._unacked.cancel()
        if not self.ready.done():
            self.ready.set_exception(ConnectError(lost_before_settings(exc)))
            self.ready.exception()  # retrieved: the pool asks only while it waits
        if self.transport is not None:
            self._on_closed(self, reason)
        for ex, error in failed:
            ex.fail(error)

    # -- h2 events ---------------------------------------------------------------------------

    def _settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        self._owe_ack("SETTINGS")
        self._max_streams = self._h2.remote_settings.max_concurrent_streams
        if not self.ready.done():
            self._now_idle()
            self.ready.set_result(self)
            self._await_ack()
        else:
            self._on_released(self)  # a larger maximum may let a waiting request in

    def _await_ack(self) -> None:
        """Give the server ``settings_timeout`` to acknowledge our SETTINGS (RFC 9113 6.5.3),
        from its own SETTINGS on: until they come, the dial's connect timeout watches (and
        says what went wrong). Unacknowledged, they may not be applied (no push, our header
        list limit), so the connection ends, as nghttp2's clients end it (SETTINGS_TIMEOUT,
        after 10 s)."""
        timeout = self.options.settings_timeout
        if timeout and not self._acked:
            self._unacked = self._loop.call_later(timeout, self._settings_timed_out)

    def _settings_acked(self, event: h2.events.SettingsAcknowledged) -> None:
        self._acked = True
        if self._unacked is not None:
            self._unacked.cancel()
            self._unacked = None

    def _settings_timed_out(self) -> None:
        self._unacked = None
        timeout = self.options.settings_timeout
        self._end(ErrorCodes.SETTINGS_TIMEOUT, ProtocolError(unacked_text(timeout)))

    def _pinged(self, event: h2.events.PingReceived) -> None:
        self._owe_ack("PING")  # h2 queued the ack itself

    def _owe_ack(self, frame: str) -> None:
        """h2 queued an ack of a ``frame`` from the server (see :data:`MOST_ACKS_OWED`)."""
        self._acks_owed += 1
        self._flood = frame

    def _response(self, event: h2.events.ResponseReceived) -> None:
        if not self._paused:
            self._acks_owed = 0  # a frame for a stream: no flood (see MOST_ACKS_OWED)
        ex = self._streams.get(event.stream_id)
        if ex is None or ex.done is None:
            return
        try:
            size, status, headers = response_fields(event.headers)
        except ProtocolError as exc:  # a stream error (RFC 9113 8.1.1): its stream alone
            self._reset(ex, ErrorCodes.PROTOCOL_ERROR)
            self._closed_stream(ex)
            ex.fail(exc)
            return
        if size > self._max_head:
            self._reset(ex, ErrorCodes.CANCEL)
            ex.fail(HeadersTooLarge(f"response headers over {self._max_head:,} bytes"))
            return
        ex.headers = headers
        ex.status = status
        ex.stage = _BODY
        if self._leak:
            self._leaked(ex)
        else:
            self._headed.append(ex)

    def _data(self, event: h2.events.DataReceived) -> None:
        if not self._paused:
            self._acks_owed = 0  # as in _response
        ex = self._streams.get(event.stream_id)
        if ex is not None and ex.leaked:
            self.counts.unread_bytes += event.flow_controlled_length
            return  # never read, never acknowledged: its window is spent for good
        self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        if ex is None or ex.done is None:
            return
        size = ex.body_size + len(event.data)
        limit = self._checked_limit if ex.keeps else self._limit
        if size > limit:
            ex.keep(event.data[: max(limit - ex.body_size, 0)])
            ex.body_size = size
            self._undrained(ex)
            return
        ex.body_size = size
        if ex.keeps:
            ex.keep(event.data)

    def _ended(self, event: h2.events.StreamEnded) -> None:
        ex = self._streams.get(event.stream_id)
        if ex is None:
            return
        if ex.pending:
            # The server answered before the whole body was sent (RFC 9113 8.1): stop.
            self._reset(ex, ErrorCodes.CANCEL)
        self._closed_stream(ex)
        if ex.done is not None:
            ex.finish()

    def _reset_by_server(self, event: h2.events.StreamReset) -> None:
        if event.remote_reset:
            self.counts.reset_by_server[code_name(event.error_code)] += 1
        ex = self._streams.get(event.stream_id)
        if ex is None:
            return
        self._closed_stream(ex)
        if ex.done is None:
            return
        name = code_name(event.error_code)
        if not event.remote_reset:
            self._reset_by_h2(ex, event.error_code)
        elif event.error_code == ErrorCodes.REFUSED_STREAM:
            self._refused(ex, f"server refused the stream ({name})")
        else:
            ex.fail(StreamReset(f"server reset the stream ({name}) {where(ex)}"))

    def _reset_by_h2(self, ex: Stream, code: ErrorCodes | int) -> None:
        """h2 reset the stream itself (its RST_STREAM is queued): the server broke the
        protocol on that stream alone (RFC 9113 5.4.2), the others go on."""
        name = code_name(code)
        self.counts.reset_by_us[name] += 1
        why = _STREAM_ERRORS.get(code, "the server broke HTTP/2 on the stream")
        ex.fail(ProtocolError(f"{why} ({name}): reset {where(ex)}"))

    def _window(self, event: h2.events.WindowUpdated) -> None:
        if event.stream_id:
            ex = self._sending.get(event.stream_id)
            if ex is not None:
                self._send_body(ex)
            return
        for ex in list(self._sending.values()):
            self._send_body(ex)

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        """The server goes away: no new stream here; the streams above its last stream id
        were never processed, and fail for the send path to retry (RFC 9113 6.8)."""
        self.counts.goaway += 1
        self._draining = CloseReason.GOAWAY
        last = event.last_stream_id if event.last_stream_id is not None else _NO_LIMIT
        for ex in [ex for sid, ex in self._streams.items() if sid > last]:
            self._closed_stream(ex, release=False)
            if ex.done is not None:
                self._refused(ex, f"server sent GOAWAY (last stream {last})")
        self._maybe_close()

    def _refused(self, ex: Stream, why: str) -> None:
        """A stream the server never processed: it carried nothing (not counted among the
        requests this connection carried), and fails for the send path to retry."""
        self.requests -= 1
        ex.fail(StreamRefused(f"{why}: not processed"))

    # -- internals -------------------------------------------------------------------------

    def _opened_stream(self, ex: Stream) -> None:
        self._streams[ex.stream_id] = ex
        self.requests += 1
        if self.state is State.IDLE:
            self.state = State.ACTIVE  # (a leaking connection stays LEAKED: see _leaked)
        counts = self.counts
        counts.streams += 1
        if len(self._streams) > counts.peak:
            counts.peak = len(self._streams)

    def _closed_stream(self, ex: Stream, *, release: bool = True) -> None:
        """A stream is over on the wire: its place is free (the pool is told first, so that
        whoever its report wakes finds the connection with room)."""
        self._streams.pop(ex.stream_id, None)
        self._sending.pop(ex.stream_id, None)
        if ex.stalled_at:
            self.counts.flow_stall_s += self._loop.time() - ex.stalled_at
            ex.stalled_at = 0.0
        if not self._streams and self.state is State.ACTIVE:
            self._now_idle()
        if self._maybe_close() or not release:
            return
        self._on_released(self)

    def _maybe_close(self) -> bool:
        """Close a connection that is going away once its last stream is done."""
        if self._draining is not None and not self._streams:
            self.close(self._draining)
            return True
        return False

    def _send_body(self, ex: Stream) -> None:
        """As much of the request body as the flow-control windows (the stream's and the
        connection's) let go now; the rest waits for WINDOW_UPDATE, timed as a stall."""
        h2c = self._h2
        while ex.pending:
            room = min(h2c.local_flow_control_window(ex.stream_id), h2c.max_outbound_frame_size)
            if room <= 0:
                self._sending[ex.stream_id] = ex
                if not ex.stalled_at:
                    ex.stalled_at = self._loop.time()
                    self.counts.flow_stalls += 1
                return
            if ex.stalled_at:
                self.counts.flow_stall_s += self._loop.time() - ex.stalled_at
                ex.stalled_at = 0.0
            chunk, ex.pending = ex.pending[:room], ex.pending[room:]
            h2c.send_data(ex.stream_id, chunk.tobytes(), end_stream=not ex.pending)
        self._sending.pop(ex.stream_id, None)
        self._flush()

    def _body_goes_on(self) -> None:
        """The streams whose head came in this read and whose body goes on past it have the
        drain timeout from now on (set here, once a read, not per head: most bodies end in
        the read their head came in)."""
        headed, self._headed = self._headed, []
        for ex in headed:
            if ex.done is None or ex.phase is _DRAIN:
                continue
            now = self._loop.time() if self._drain_timeout else 0.0
            ex.reach(_BODY, now, self._header_timeout, self._drain_timeout)

    def _leaked(self, ex: Stream) -> None:
        """Leak mode: answer at the headers, never read the body nor give its window back.
        The stream stays open, as it does on the server, until the server can end it."""
        ex.leaked = True
        ex.truncated = True
        self.counts.leaked += 1
        self.state = State.LEAKED
        ex.finish()

    def _undrained(self, ex: Stream) -> None:
        """A body too big or too slow to read: the response stands, its stream is reset
        (the connection goes on carrying the others)."""
        ex.truncated = True
        self._reset(ex, ErrorCodes.CANCEL)
        self._closed_stream(ex)
        ex.finish()

    def _reset(self, ex: Stream, code: ErrorCodes) -> None:
        try:
            self._h2.reset_stream(ex.stream_id, code)
        except h2.exceptions.StreamClosedError:
            return  # it ended meanwhile
        self.counts.reset_by_us[code_name(code)] += 1
        self._flush()

    def _on_deadline(self, ex: Stream) -> None:
        if ex.phase is _DRAIN:
            self._undrained(ex)
            return
        self._reset(ex, ErrorCodes.CANCEL)
        self._closed_stream(ex)
        ex.fail(timed_out(ex.phase, self._header_timeout, self.options.timeout))

    def _broken(self, exc: h2.exceptions.ProtocolError) -> None:
        """h2 refused what the server sent and ended the connection. A stream whose header
        block was over the limit fails as such; every other stream with the protocol
        error (the connection's HPACK state is lost with it)."""
        ex = self._streams.get(self._h2.oversized)
        if ex is not None and ex.done is not None:
            ex.fail(HeadersTooLarge(f"response headers over {self._max_head:,} bytes (decoded)"))
        self._fail_all(ProtocolError(_what_broke(exc)))

    def _flooded(self) -> None:
        """The server floods us with SETTINGS or PINGs (see :data:`MOST_ACKS_OWED`): the
        connection ends rather than ack them all."""
        self._h2.clear_outbound_data_buffer()  # this read's acks: not worth sending
        error = ProtocolError(flood_text(self._flood, self._acks_owed))
        self._end(ErrorCodes.ENHANCE_YOUR_CALM, error)

    def _end(self, code: ErrorCodes, error: RequestError) -> None:
        """End the connection for the server's fault: GOAWAY with ``code`` (written for what
        it is worth: it is aborted next), then every stream fails with ``error``."""
        t = self.transport
        if t is not None and not t.is_closing():
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection(code)
                t.write(self._h2.data_to_send())
        self._fail_all(error)

    def _fail_all(self, error: RequestError) -> None:
        """The connection cannot go on (the server broke the protocol): every stream fails
        with ``error`` and the connection is closed."""
        streams = [ex for ex in self._streams.values() if ex.done is not None]
        self.abort(CloseReason.PROTOCOL)
        for ex in streams:
            ex.fail(error)

    def _hand_over(self, transport: asyncio.Transport) -> None:
        """ALPN picked HTTP/1.1: an HTTP/1.1 connection takes the transport over, with this
        one's id and the pool's callbacks; this one never opened, as far as anyone counts."""
        conn = Connection(
            self.id, self.key, self.options, self._on_open, self._on_released, self._on_closed
        )
        transport.set_protocol(conn)
        conn.connection_made(transport)
        self.transport = None
        self.state = State.CLOSED
        self.ready.set_result(conn)

    def _flush(self) -> None:
        """Write what h2 has for the wire, once per read (a response's callbacks may send
        the next requests: their frames go in the same write)."""
        if self._in_read:
            return
        data = self._h2.data_to_send()
        t = self.transport
        if data and t is not None and not t.is_closing():
            t.write(data)


def _what_broke(exc: h2.exceptions.ProtocolError) -> str:
    """What h2 refused, said as the server's error; in the RFC's words where h2's say less."""
    what = str(exc)
    if isinstance(exc, h2.exceptions.InvalidBodyLengthError):
        said, got = exc.expected_length, exc.actual_length
        what = f"response body disagrees with its content-length: {said:,} said, {got:,} received"
    return f"invalid HTTP/2 from the server: {what}"


_STREAM_ERRORS: dict[ErrorCodes | int, str] = {
    ErrorCodes.FLOW_CONTROL_ERROR: "the server took the stream's flow-control window past 2^31-1",
}
"""Why h2 resets a stream itself, by the code it resets it with."""


_HANDLERS: dict[type, Callable[[H2Connection, Any], None]] = {
    h2.events.RemoteSettingsChanged: H2Connection._settings,
    h2.events.SettingsAcknowledged: H2Connection._settings_acked,
    h2.events.PingReceived: H2Connection._pinged,
    h2.events.ResponseReceived: H2Connection._response,
    h2.events.DataReceived: H2Connection._data,
    h2.events.StreamEnded: H2Connection._ended,
    h2.events.StreamReset: H2Connection._reset_by_server,
    h2.events.WindowUpdated: H2Connection._window,
    h2.events.ConnectionTerminated: H2Connection._goaway,
}
"""What each h2 event does; the others (interim 1xx responses, trailers, priority, acks of
our pings) need nothing. h2 answers pings and SETTINGS itself; they are only counted."""
