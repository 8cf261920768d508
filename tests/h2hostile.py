"""A hostile HTTP/2 server for the tests: h2c with prior knowledge on 127.0.0.1, written on
raw frames (hyperframe's frame classes, hpack's coder) rather than on a state machine that
would refuse to break the protocol for us.

It answers a request for :data:`HOSTILE` as its behaviour says, and any other with a plain
``200`` and ``hello\\n``, so that a test can send good requests before and after the bad
one. A malformed response is otherwise whole (headers, then its body with END_STREAM): a
client that does not check what it must sees a good response, and its test fails.

The behaviours (:data:`BEHAVIOURS`):

- ``continuation_flood``: a HEADERS without END_HEADERS, then CONTINUATION frames with no
  end, each of well-formed fields (nothing for a decoder to refuse but the endlessness).
- ``hpack_bomb``: one header block that inserts a field of about 4 KB into the dynamic table
  and then names it :data:`BOMB_REFERENCES` times, one byte each: about 64 MB of fields
  decoded from about 20 KB on the wire.
- ``window_overflow`` / ``stream_window_overflow``: a WINDOW_UPDATE on stream 0 / on the
  request's stream taking its window past 2^31-1 (RFC 9113 6.9.1), then the response.
- ``settings_flood`` / ``ping_flood``: SETTINGS (PING) frames without end, and nothing read
  from then on: the client's acks pile up on its side.
- ``no_settings_ack``: its SETTINGS, answers, but never an ACK of the client's SETTINGS;
  :data:`HOSTILE` is never answered (so that a request is in flight when the client gives
  up on the connection).
- ``data_beyond_content_length``: ``content-length: 5`` and 10 bytes of DATA.
- ``uppercase_field``, ``connection_specific_field`` (``connection: keep-alive``),
  ``transfer_encoding_field`` (``transfer-encoding: chunked``), ``missing_status``, and
  ``status_2000``, ``status_20``, ``status_abc``, ``status_2x0`` (a ``:status`` that is not
  three digits): a malformed response head (RFC 9113 8.2.1, 8.2.2, 8.3.2).

Every flood is bounded here too (:data:`FLOOD_BYTES`, :data:`FLOOD_SECONDS`), and ends
when the client goes away; ``flooded`` lists how much each flood wrote. Stopping the server
closes what is still open.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable

from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from servers import ConnInfo, ThreadServer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HOSTILE = "/hostile"
"""The path whose request gets the behaviour; every other one a plain 200."""

MAX_FRAME = 16_384
"""The client's SETTINGS_MAX_FRAME_SIZE as tether leaves it (the default): no frame here is
larger."""

FLOOD_BYTES = 64 << 20
FLOOD_SECONDS = 5.0
"""A flood stops after this much, or this long, if the client has not ended it by then."""

BOMB_VALUE = b"b" * 4_000
"""The bomb's field value: ``x-bomb`` with it takes 4,038 bytes of the client's 4,096-byte
dynamic table (RFC 7541 4.1 counts 32 bytes more than name and value)."""
BOMB_REFERENCES = 16_000
"""How many times the bomb names its table entry, one byte each (index 62)."""

LARGEST_WINDOW = 2**31 - 1

RECEIVE_BUFFER = 4_096
"""The SO_RCVBUF of each connection (Linux doubles it, and keeps it: no autotuning)."""

_FILLER = (b"\x00\x08x-filler\x64" + b"f" * 100) * (MAX_FRAME // 111)
"""A CONTINUATION's payload: whole HPACK literal fields, not indexed, ``x-filler`` with 100
bytes (111 bytes each), as many as fit in one frame."""

_HELLO = b"hello\n"


class H2Hostile(ThreadServer):
    """The server (see the module's docstring) with one ``behaviour`` for all its
    connections. ``flooded``: the bytes each flood wrote before it stopped."""

    def __init__(self, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"no such behaviour: {behaviour}")
        super().__init__(self._serve)
        self.behaviour = behaviour
        self._flood_lock = threading.Lock()
        self._flooded: list[int] = []

    def __enter__(self) -> H2Hostile:
        self.start()
        return self

    @property
    def flooded(self) -> list[int]:
        with self._flood_lock:
            return list(self._flooded)

    def _flood_ended(self, sent: int) -> None:
        with self._flood_lock:
            self._flooded.append(sent)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        await _Conn(self, reader, writer, info).serve()


class _Conn:
    """One connection: frames read one at a time, each request answered when its header
    block is in."""

    def __init__(
        self,
        server: H2Hostile,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: ConnInfo,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.info = info
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.block = b""  # a request's header block, while its CONTINUATIONs come

    async def serve(self) -> None:
        # A small receive buffer: what a flood's acks can fill on this side is small, and
        # they pile up on the client's (see flood).
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.send(SettingsFrame(0, settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 100}))
        if await self.reader.readexactly(len(PREFACE)) != PREFACE:
            return
        while await self.received(await self.frame()):
            pass

    async def frame(self) -> Frame:
        head = await self.reader.readexactly(9)
        frame, length = Frame.parse_frame_header(memoryview(head))
        frame.parse_body(memoryview(await self.reader.readexactly(length)))
        return frame

    async def received(self, frame: Frame) -> bool:
        """Handle one of the client's frames; False once the connection is to end."""
        if isinstance(frame, SettingsFrame):
            if "ACK" not in frame.flags and self.server.behaviour != "no_settings_ack":
                self.send(SettingsFrame(0, flags=["ACK"]))
        elif isinstance(frame, PingFrame):
            if "ACK" not in frame.flags:
                self.send(PingFrame(0, frame.opaque_data, flags=["ACK"]))
        elif isinstance(frame, HeadersFrame | ContinuationFrame):
            self.block += frame.data
            if "END_HEADERS" in frame.flags:
                fields = dict(self.decoder.decode(self.block, raw=True))
                self.block = b""
                return await self.answer(frame.stream_id, bytes(fields[b":path"]).decode())
        elif isinstance(frame, GoAwayFrame):
            return False
        await self.writer.drain()
        return True

    async def answer(self, sid: int, path: str) -> bool:
        self.info.count_request()
        if path != HOSTILE:
            self.respond(sid, [(b":status", b"200")])
            return True
        return await _BEHAVIOURS[self.server.behaviour](self, sid)

    # -- the behaviours -----------------------------------------------------------------------

    async def continuation_flood(self, sid: int) -> bool:
        self.send(HeadersFrame(sid, self.encoder.encode([(b":status", b"200")])))
        await self.flood(ContinuationFrame(sid, _FILLER).serialize())
        return False

    async def hpack_bomb(self, sid: int) -> bool:
        block = self.encoder.encode([(b":status", b"200"), (b"x-bomb", BOMB_VALUE)])
        self.send_block(sid, block + bytes([0x80 | 62]) * BOMB_REFERENCES, end_stream=True)
        return True

    async def window_overflow(self, sid: int) -> bool:
        self.send(WindowUpdateFrame(0, window_increment=LARGEST_WINDOW))
        self.respond(sid, [(b":status", b"200")])
        return True

    async def stream_window_overflow(self, sid: int) -> bool:
        self.send(WindowUpdateFrame(sid, window_increment=LARGEST_WINDOW))
        self.respond(sid, [(b":status", b"200")])
        return True

    async def settings_flood(self, sid: int) -> bool:
        await self.flood(SettingsFrame(0).serialize())
        return False

    async def ping_flood(self, sid: int) -> bool:
        await self.flood(PingFrame(0, b"hostile!").serialize())
        return False

    async def no_settings_ack(self, sid: int) -> bool:
        return True  # never answered: the client's request waits until it gives up

    async def data_beyond_content_length(self, sid: int) -> bool:
        self.send_block(sid, self.encoder.encode([(b":status", b"200"), (b"content-length", b"5")]))
        self.send(DataFrame(sid, b"0123456789", flags=["END_STREAM"]))
        return True

    async def uppercase_field(self, sid: int) -> bool:
        self.respond(sid, [(b":status", b"200"), (b"X-Upper", b"v")])
        return True

    async def connection_specific_field(self, sid: int) -> bool:
        self.respond(sid, [(b":status", b"200"), (b"connection", b"keep-alive")])
        return True

    async def transfer_encoding_field(self, sid: int) -> bool:
        self.respond(sid, [(b":status", b"200"), (b"transfer-encoding", b"chunked")])
        return True

    async def missing_status(self, sid: int) -> bool:
        self.respond(sid, [(b"content-type", b"text/plain")])
        return True

    # -- writing --------------------------------------------------------------------------------

    def respond(self, sid: int, fields: list[tuple[bytes, bytes]]) -> None:
        """``fields`` (content-length added), then ``hello\\n`` ending the stream."""
        fields = [*fields, (b"content-length", str(len(_HELLO)).encode())]
        self.send_block(sid, self.encoder.encode(fields))
        self.send(DataFrame(sid, _HELLO, flags=["END_STREAM"]))

    def send_block(self, sid: int, block: bytes, *, end_stream: bool = False) -> None:
        """A header block as HEADERS and as many CONTINUATIONs as it takes."""
        parts = [block[i : i + MAX_FRAME] for i in range(0, len(block), MAX_FRAME)] or [b""]
        frames: list[Frame] = [HeadersFrame(sid, parts[0])]
        frames += [ContinuationFrame(sid, part) for part in parts[1:]]
        frames[-1].flags.add("END_HEADERS")
        if end_stream:
            frames[0].flags.add("END_STREAM")
        for frame in frames:
            self.send(frame)

    def send(self, frame: Frame) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame.serialize())

    async def flood(self, frame: bytes) -> None:
        """``frame`` over and over, reading nothing meanwhile, until the client goes away or
        the bound (:data:`FLOOD_BYTES`, :data:`FLOOD_SECONDS`)."""
        batch = frame * max(1, 65_536 // len(frame))
        sent, end = 0, time.monotonic() + FLOOD_SECONDS
        try:
            while sent < FLOOD_BYTES and time.monotonic() < end and not self.writer.is_closing():
                self.writer.write(batch)
                sent += len(batch)
                await self.writer.drain()
        except ConnectionError:
            pass  # the client ended it: what the flood is for
        finally:
            self.server._flood_ended(sent)


def _odd_status(value: bytes) -> Callable[[_Conn, int], Awaitable[bool]]:
    """A response whose :status is ``value``, otherwise whole."""

    async def answer(conn: _Conn, sid: int) -> bool:
        conn.respond(sid, [(b":status", value)])
        return True

    return answer


_BEHAVIOURS: dict[str, Callable[[_Conn, int], Awaitable[bool]]] = {
    "continuation_flood": _Conn.continuation_flood,
    "hpack_bomb": _Conn.hpack_bomb,
    "window_overflow": _Conn.window_overflow,
    "stream_window_overflow": _Conn.stream_window_overflow,
    "settings_flood": _Conn.settings_flood,
    "ping_flood": _Conn.ping_flood,
    "no_settings_ack": _Conn.no_settings_ack,
    "data_beyond_content_length": _Conn.data_beyond_content_length,
    "uppercase_field": _Conn.uppercase_field,
    "connection_specific_field": _Conn.connection_specific_field,
    "transfer_encoding_field": _Conn.transfer_encoding_field,
    "missing_status": _Conn.missing_status,
    "status_2000": _odd_status(b"2000"),
    "status_20": _odd_status(b"20"),
    "status_abc": _odd_status(b"abc"),
    "status_2x0": _odd_status(b"2x0"),
}
"""What the server does with a request for :data:`HOSTILE`; True: the connection goes on."""

BEHAVIOURS = tuple(_BEHAVIOURS)
