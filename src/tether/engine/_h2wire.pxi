# The compiled HTTP/2 client connection, included into _compiled.pyx (one extension module).
#
# H2Wire is the asyncio protocol of an HTTP/2 connection the pool made for a compiled send
# path (its pool-facing side is tether.engine.h2compiled.CompiledH2Connection). Unlike the
# HTTP/1.1 Wire it cannot hand its connection to a Python parser half-way (the HPACK
# state is the connection's), so it speaks the whole protocol itself: the preface and
# SETTINGS, HEADERS and CONTINUATION, DATA both ways with flow control, WINDOW_UPDATE,
# PING, RST_STREAM, GOAWAY; anything else a server sends is a protocol error with a
# sentence. Each stream is compiled (a Job of the send path, counted here when its
# response meets the job's expectation, the journey's next request sent at once on a new
# stream) or Python's (an h2common.Stream exchange, reported to its done callback, as the
# h2-library connection reports it). A compiled stream whose response needs more (its
# expectation not met, a reset, a timeout, a lost connection) is handed to the Python
# side through the send path's adopt, as HTTP/1.1's are, and goes on as a Python stream.
#
# h2load's habits: every frame a turn makes goes out in one write (the connection's own
# buffer, flushed after each read and each send from outside one); a read is parsed whole;
# the windows we receive in are opened wide at the start (2^30-1) so WINDOW_UPDATEs are
# rare; and the ledger's figures are counted in C fields and folded in once a read.

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.string cimport memmove
from libc.stdlib cimport malloc, realloc

from tether.engine.exchange import timed_out
from tether.engine.h2common import MOST_ACKS_OWED, code_name, flood_text, where
from tether.engine.interface import State
from tether.errors import (
    HeadersTooLarge,
    ProtocolError,
    StaleConnection,
    StreamRefused,
    StreamReset,
)
from tether.http.heads import Headers
from tether.ledger import CloseReason

_ACTIVE = State.ACTIVE
_BODY_STAGE = STAGES[BODY]
_SENT_STAGE = STAGES[SENT]
_DRAIN_PHASE = PHASES[DRAIN]
_GOAWAY = CloseReason.GOAWAY
_REQUEST_CLOSE = CloseReason.REQUEST_CLOSE
_PROTOCOL = CloseReason.PROTOCOL
cdef long long _MOST_ACKS_OWED = MOST_ACKS_OWED
cdef bytes _PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DEF FT_DATA = 0
DEF FT_HEADERS = 1
DEF FT_PRIORITY = 2
DEF FT_RST = 3
DEF FT_SETTINGS = 4
DEF FT_PUSH = 5
DEF FT_PING = 6
DEF FT_GOAWAY = 7
DEF FT_WINDOW = 8
DEF FT_CONTINUATION = 9
DEF FL_END_STREAM = 0x1
DEF FL_ACK = 0x1
DEF FL_END_HEADERS = 0x4
DEF FL_PADDED = 0x8
DEF FL_PRIORITY = 0x20
DEF E_NO_ERROR = 0
DEF E_PROTOCOL = 1
DEF E_INTERNAL = 2
DEF E_FLOW = 3
DEF E_FRAME_SIZE = 6
DEF E_REFUSED = 7
DEF E_CANCEL = 8
DEF E_COMPRESSION = 9
DEF E_CALM = 11
DEF MAX_WINDOW = 2147483647
DEF RECV_WINDOW = 1073741823  # 2^30-1, as h2load's -w 30 / -W 30
DEF DEFAULT_WINDOW = 65535
DEF OUR_MAX_FRAME = 16384  # the SETTINGS_MAX_FRAME_SIZE we keep (the default)
DEF MAX_SID = 2147483647
DEF MAX_CONTINUATIONS = 1024  # a header block in more frames than this is a flood
DEF UNLIMITED = 1 << 32
DEF READ_SIZE = 262144  # what a read may bring at least (uvloop asks for 256 KiB)


cdef inline unsigned int u32(const unsigned char *p) noexcept nogil:
    return (<unsigned int>p[0] << 24) | (<unsigned int>p[1] << 16) | (<unsigned int>p[2] << 8) | p[3]


cdef class H2Stream:
    """One stream on an :class:`H2Wire`: a compiled job's (``job`` and ``journey``) or a
    Python exchange's (``ex``)."""

    cdef unsigned int sid
    cdef bint open  # on the wire (in the wire's streams)
    cdef Job job
    cdef object journey
    cdef object ex
    cdef bint repeat, reused, headed, is_head
    cdef int status, phase
    cdef long long body_size, content_length  # -1: no content-length
    cdef int64_t started, latency_from, deadline, due  # compiled streams: ns
    cdef bytes body  # the request body, sent from body_at as the windows allow
    cdef Py_ssize_t body_at
    cdef int64_t send_window, recv_window, stalled_at
    cdef list fields  # a compiled response's fields when it has no content-length
    cdef bint over  # its body passed the drain limit: no more of it is read


cdef class H2Wire:
    """The asyncio protocol of a compiled HTTP/2 connection (see the file's comment).
    ``conn`` is its pool-facing side, told of what the pool must hear."""

    cdef object conn
    cdef Path path
    cdef object counts  # the ledger's Streams
    cdef HpackDecoder decoder
    cdef object transport
    cdef object _write
    cdef str scheme
    cdef dict streams
    cdef readonly Py_ssize_t nstreams
    cdef public long long carried  # streams that carried a request (conn.requests)
    cdef unsigned int next_sid
    cdef long long max_streams  # the server's SETTINGS_MAX_CONCURRENT_STREAMS (-1: unheard)
    cdef readonly bint ready  # the server's first SETTINGS are in
    cdef readonly bint settings_acked
    cdef public object draining  # the CloseReason to close for once the streams are done
    cdef bint closing, dead, in_read, idle
    cdef int64_t send_window, initial_send_window, recv_window
    cdef Py_ssize_t max_send_frame
    cdef bytearray inbuf  # where reads go: a frame that came in part, then the next read
    cdef Py_ssize_t inlen
    cdef unsigned int block_sid  # a header block waiting for its CONTINUATION
    cdef bint block_end_stream
    cdef bytearray block
    cdef int continuations
    cdef Py_ssize_t block_limit
    cdef char *out
    cdef Py_ssize_t olen, ocap
    cdef long long new_streams, peak
    cdef long long acks_owed  # SETTINGS and PINGs in a row, nothing for a stream between
    cdef bint paused  # the transport's buffer is full: the server is not reading
    cdef list headed
    cdef list sending
    cdef list overs  # streams whose body passed the drain limit in this read
    cdef bint windows_opened  # a WINDOW_UPDATE (or SETTINGS) in this read gave room
    cdef long long max_head, checked_limit
    cdef double header_timeout, drain_timeout, timeout
    cdef bint timed
    cdef H2Stream adopting
    cdef str why  # what makes the head in hand malformed

    def __cinit__(self):
        self.ocap = 65536
        self.out = <char *>malloc(self.ocap)
        if self.out == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.out)

    def __init__(self, conn, Path path, counts, str scheme, double timeout,
                 double header_timeout, double drain_timeout, long long max_head,
                 long long checked_limit):
        self.conn = conn
        self.path = path
        self.counts = counts
        self.scheme = scheme
        self.streams = {}
        self.inbuf = bytearray()
        self.next_sid = 1
        self.max_streams = -1
        self.draining = None
        self.idle = True
        self.send_window = DEFAULT_WINDOW
        self.initial_send_window = DEFAULT_WINDOW
        self.recv_window = DEFAULT_WINDOW
        self.max_send_frame = 16384
        self.headed = []
        self.sending = []
        self.overs = []
        self.max_head = max_head
        self.checked_limit = checked_limit
        self.timeout = timeout
        self.header_timeout = header_timeout
        self.drain_timeout = drain_timeout
        self.timed = bool(path.header_timeout_ns or path.drain_timeout_ns)
        # the whole block is held, compressed, until its last frame: bounded by the head limit
        self.block_limit = max_head if max_head > 0 else 1 << 24
        self.decoder = HpackDecoder(4096, max_head if max_head > 0 else 1 << 62)

    # -- the pool's side (through conn) ---------------------------------------------------

    @property
    def has_room(self):
        """Ready, open, not going away, and room for one more stream."""
        return self._can_open()

    cdef inline bint _can_open(self) noexcept:
        return (self.ready and self.draining is None and not self.closing
                and self.nstreams < self.max_streams and self.next_sid <= MAX_SID)

    def start(self, journey, Job job, bint repeat):
        """Open a compiled stream for ``job`` for ``journey`` (as :meth:`Wire.start`: with
        ``repeat``, the journey's next requests go out here while each is counted)."""
        cdef H2Stream st
        if not self._can_open():
            # Nothing was written: the Python side fails it as not sent, to be retried.
            self.conn.send(job.prep.request, job.prep.need, journey.deadline, journey.exchanged)
            return
        st = H2Stream()
        st.journey = journey
        st.repeat = repeat
        self._open_compiled(st, job, now_ns())
        st.latency_from = <int64_t>(journey.started * 1e9)
        self._turn_over()

    def send_python(self, ex, request):
        """Open a stream for ``request`` reported to the exchange ``ex`` (a
        :class:`~tether.engine.h2common.Stream`), as the h2-library connection sends."""
        cdef H2Stream st
        if not self._can_open():
            ex.fail(StaleConnection("connection closed before the request", written=False))
            return
        st = H2Stream()
        st.ex = ex
        st.is_head = request.method == "HEAD"
        body = request.body
        self._open(st, hpack_encode(request.h2_fields(self.scheme)), body)
        ex.stream_id = st.sid
        if body:
            self._send_body(st)
        if self.header_timeout:
            ex.reach(_SENT_STAGE, self.path.loop_time(), self.header_timeout, self.drain_timeout)
        if request.closes and self.draining is None:
            self.draining = _REQUEST_CLOSE
        self._turn_over()

    def adopted(self, ex):
        """The Python side's exchange for the compiled stream being handed over."""
        cdef H2Stream st = self.adopting
        st.ex = ex
        ex.stream_id = st.sid

    def check_deadlines(self, double now):
        """End the streams whose deadlines have passed (each reset, the others go on)."""
        cdef int64_t ns = now_ns()
        cdef H2Stream st
        for st in list(self.streams.values()):
            if not st.open:
                continue
            if st.job is not None:
                if st.due and ns >= st.due:
                    self._adopt(st, BODY if st.headed else SENT)
                    if st.ex.done is not None:
                        self._on_deadline(st)
                continue
            ex = st.ex
            if ex.done is not None and ex.due and now >= ex.due:
                self._on_deadline(st)
        self._turn_over()

    def goaway(self):
        """Say GOAWAY (NO_ERROR) now, with whatever frames are waiting: the connection is
        being closed, and the transport closes after what was written."""
        if self.ready and not self.closing and self.transport is not None:
            self._goaway_frame(E_NO_ERROR)
            self._flush(True)
        self.closing = True

    def closed_by_us(self):
        """The connection is being aborted: nothing more is written."""
        self.closing = True

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self._write = transport.write
        tls = transport.get_extra_info("ssl_object")
        if tls is not None and tls.selected_alpn_protocol() != "h2":
            self.closing = True
            self.conn.hand_over(transport)
            return
        self._put(PyBytes_AS_STRING(_PREFACE), PyBytes_GET_SIZE(_PREFACE))
        self._settings_frame()
        self._window_frame(0, RECV_WINDOW - DEFAULT_WINDOW)
        self.recv_window = RECV_WINDOW
        self._flush(False)
        self.conn.made(transport)

    def get_buffer(self, Py_ssize_t sizehint):
        """Where the next read goes (a buffered protocol: uvloop reads into it, TLS records
        decrypted in place, with no bytes object made per read): after the part of a frame
        the last read left."""
        cdef Py_ssize_t want = sizehint if sizehint > READ_SIZE else READ_SIZE
        if PyByteArray_GET_SIZE(self.inbuf) < self.inlen + want:
            self.inbuf.extend(bytes(self.inlen + want - PyByteArray_GET_SIZE(self.inbuf)))
        return memoryview(self.inbuf)[self.inlen:self.inlen + want]

    def buffer_updated(self, Py_ssize_t nbytes):
        self._read(self.inlen + nbytes)

    def data_received(self, bytes data):
        """A read as a plain protocol hears it (an event loop that does not fill buffers)."""
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        if PyByteArray_GET_SIZE(self.inbuf) < self.inlen + n:
            self.inbuf.extend(bytes(self.inlen + n - PyByteArray_GET_SIZE(self.inbuf)))
        memcpy(PyByteArray_AS_STRING(self.inbuf) + self.inlen, PyBytes_AS_STRING(data), n)
        self._read(self.inlen + n)

    cdef void _read(self, Py_ssize_t n) except *:
        """The frames of the ``n`` bytes in the read buffer, in order; a frame that came in
        part is moved to the front, for the next read to complete."""
        cdef unsigned char *p = <unsigned char *>PyByteArray_AS_STRING(self.inbuf)
        cdef Py_ssize_t pos = 0, length
        cdef unsigned int sid
        self.inlen = 0
        if self.dead:
            return
        self.in_read = True
        try:
            while not self.dead and n - pos >= 9:
                length = (<Py_ssize_t>p[pos] << 16) | (<Py_ssize_t>p[pos + 1] << 8) | p[pos + 2]
                if length > OUR_MAX_FRAME:
                    self._conn_error(E_FRAME_SIZE,
                                     f"a frame of {length:,} bytes, over the 16,384 we allow")
                    break
                if n - pos - 9 < length:
                    break
                sid = u32(p + pos + 5) & 0x7fffffff
                self._frame_in(p[pos + 3], p[pos + 4], sid, p + pos + 9, length)
                pos += 9 + length
            if not self.dead and pos < n:
                memmove(p, p + pos, n - pos)  # at most one frame's bytes
                self.inlen = n - pos
        except Exception as exc:
            # A bug of ours, not the server's doing: said in every stream's error rather
            # than left to the transport, which would close with the streams unanswered.
            self._conn_error(E_INTERNAL, f"tether failed to read it ({exc!r})")
        finally:
            self.in_read = False
        self._after_read()

    def eof_received(self):
        return False  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc):
        cdef H2Stream st
        self.closing = True
        self.dead = True
        streams = list(self.streams.values())
        self.streams.clear()
        self.sending.clear()
        self.nstreams = 0
        exchanges = []
        for st in streams:
            st.open = False
            if st.job is not None:
                self._adopt(st, BODY if st.headed else SENT)
            exchanges.append(st.ex)
        self._fold()
        self.conn.lost(exc, exchanges)

    def pause_writing(self):
        self.paused = True  # (frames still go to the transport's buffer: a flood's mark)

    def resume_writing(self):
        self.paused = False

    def end(self, unsigned int code, error):
        """End the connection for the server's fault: GOAWAY with ``code``, and every
        stream fails with ``error``."""
        self._end(code, error)

    # -- frames in ---------------------------------------------------------------------------

    cdef void _frame_in(self, int ftype, int flags, unsigned int sid, const unsigned char *p,
                        Py_ssize_t n) except *:
        if self.block_sid and ftype != FT_CONTINUATION:
            self._conn_error(E_PROTOCOL, "a frame came inside a header block (before its "
                             "CONTINUATION)")
        elif ftype == FT_DATA:
            self._data_in(flags, sid, p, n)
        elif ftype == FT_HEADERS:
            self._headers_in(flags, sid, p, n)
        elif ftype == FT_CONTINUATION:
            self._continuation_in(flags, sid, p, n)
        elif ftype == FT_SETTINGS:
            self._settings_in(flags, sid, p, n)
        elif ftype == FT_WINDOW:
            self._window_in(sid, p, n)
        elif ftype == FT_PING:
            self._ping_in(flags, sid, p, n)
        elif ftype == FT_RST:
            self._rst_in(sid, p, n)
        elif ftype == FT_GOAWAY:
            self._goaway_in(sid, p, n)
        elif ftype == FT_PUSH:
            self._conn_error(E_PROTOCOL, "PUSH_PROMISE, which we disabled (SETTINGS_ENABLE_PUSH 0)")
        elif ftype == FT_PRIORITY:
            if sid == 0:
                self._conn_error(E_PROTOCOL, "PRIORITY on stream 0")
            elif n != 5:
                self._conn_error(E_FRAME_SIZE, f"PRIORITY of {n} bytes, not 5")
        # any other type is an extension's: ignored (RFC 9113 4.1)

    cdef bint _known(self, unsigned int sid, str what) except -1:
        """Whether a frame of a stream may come now: on a stream we opened (a stream ours
        that has ended is ignored: its frames may cross our RST_STREAM), never on one
        we did not."""
        if sid == 0 or sid % 2 == 0 or sid >= self.next_sid:
            self._conn_error(E_PROTOCOL, f"{what} on stream {sid}, which we never opened")
            return False
        return True

    cdef void _headers_in(self, int flags, unsigned int sid, const unsigned char *p,
                          Py_ssize_t n) except *:
        cdef Py_ssize_t off = 0, pad = 0
        if not self.paused:
            self.acks_owed = 0  # a frame for a stream: no flood (see h2common.MOST_ACKS_OWED)
        if not self._known(sid, "HEADERS"):
            return
        if flags & FL_PADDED:
            if n < 1:
                self._conn_error(E_FRAME_SIZE, "a padded HEADERS frame of no bytes")
                return
            pad = p[0]
            off = 1
        if flags & FL_PRIORITY:
            off += 5
        if off + pad > n:
            self._conn_error(E_PROTOCOL, "HEADERS padding longer than its frame")
            return
        self.block_end_stream = flags & FL_END_STREAM
        if flags & FL_END_HEADERS:
            self._head_block(sid, p + off, n - off - pad)
            return
        self.block_sid = sid
        self.block = bytearray(p[off:n - pad])
        self.continuations = 0

    cdef void _continuation_in(self, int flags, unsigned int sid, const unsigned char *p,
                               Py_ssize_t n) except *:
        cdef bytes whole
        if not self.block_sid or sid != self.block_sid:
            self._conn_error(E_PROTOCOL, f"CONTINUATION on stream {sid} with no header block "
                             "before it")
            return
        self.continuations += 1
        if len(self.block) + n > self.block_limit or self.continuations > MAX_CONTINUATIONS:
            self._conn_error(E_CALM, f"a header block past {self.block_limit:,} bytes or "
                             f"{MAX_CONTINUATIONS:,} CONTINUATION frames (a CONTINUATION flood)")
            return
        self.block += p[:n]
        if flags & FL_END_HEADERS:
            whole = bytes(self.block)
            self.block = None
            self.block_sid = 0
            self._head_block(sid, <const unsigned char *>PyBytes_AS_STRING(whole),
                             PyBytes_GET_SIZE(whole))

    cdef void _head_block(self, unsigned int sid, const unsigned char *p,
                          Py_ssize_t n) except *:
        """A whole header block of stream ``sid``: decoded (always: the table must stay in
        step with the server's), then the response head, an interim one, or trailers."""
        cdef H2Stream st
        cdef int status
        cdef bint end_stream = self.block_end_stream
        if self.decoder.decode(p, n) < 0:
            self._conn_error(E_COMPRESSION, f"its header block cannot be decoded "
                             f"({self.decoder.error})")
            return
        st = self.streams.get(sid)
        if st is None:
            return  # a stream we ended: its block only kept the table in step
        if st.headed:
            if not end_stream:
                self._stream_error(st, E_PROTOCOL, "a second header block that does not "
                                   "end its stream")
            elif self._trailers_ok():
                self._whole(st)
            else:
                self._stream_error(st, E_PROTOCOL, self.why)
            return
        status = self._validate(st)
        if status < 0:
            self._stream_error(st, E_PROTOCOL, self.why)
            return
        if status < 200:
            if end_stream or status == 101:
                self._stream_error(st, E_PROTOCOL, f"an interim response ({status}) that "
                                   "ends its stream" if end_stream else "status 101")
            return  # interim: the final head is still to come
        if self.decoder.over or self._head_size() > self.max_head > 0:
            self._too_large(st)
            return
        st.headed = True
        st.status = status
        if st.is_head or status == 204 or status == 304:
            st.content_length = 0  # whatever it says, no body may follow
        if st.job is not None:
            if self._meets(st):
                if end_stream:
                    self._compiled_done(st)
                    return
                if st.content_length < 0:
                    st.fields = self._field_list()  # for a body that turns out too long
                if self.timed:
                    self.headed.append(st)
                return
            self._adopt(st, BODY)
        self._python_head(st, self._field_list())
        if end_stream:
            self._ended(st)
        else:
            self.headed.append(st)

    cdef int _validate(self, H2Stream st) except -2:
        """The status of a response head, or -1 with :attr:`why` saying how it is malformed
        (RFC 9113 8.1.1, 8.2, 8.3.2); its content-length is read into the stream."""
        cdef HpackDecoder d = self.decoder
        cdef Py_ssize_t i, k, nl, vl
        cdef const unsigned char *name
        cdef const unsigned char *v
        cdef int status = -1
        cdef bint regular = False
        cdef long long cl = -1, length
        for i in range(d.nfields):
            name = d.fields[i].name
            nl = d.fields[i].name_len
            v = d.fields[i].value
            vl = d.fields[i].value_len
            if nl == 0:
                return self._malformed("an empty field name")
            if name[0] == 58:  # ':'
                if regular:
                    return self._malformed("a pseudo-header field after the regular ones")
                if nl != 7 or memcmp(name, b":status", 7) != 0:
                    return self._malformed(f"pseudo-header field {self._text(name, nl)} in a "
                                           "response")
                if status >= 0:
                    return self._malformed("two :status fields")
                if vl != 3 or not (48 <= v[0] <= 57 and 48 <= v[1] <= 57 and 48 <= v[2] <= 57):
                    return self._malformed(f":status {self._text(v, vl)} is not three digits")
                status = (v[0] - 48) * 100 + (v[1] - 48) * 10 + (v[2] - 48)
                continue
            regular = True
            for k in range(nl):
                if 65 <= name[k] <= 90:
                    return self._malformed(f"upper-case field name {self._text(name, nl)}")
                if not TCHAR[name[k]]:
                    return self._malformed(f"field name {self._text(name, nl)} is not a token")
            if _connection_specific(name, nl, v, vl):
                return self._malformed(f"connection-specific field {self._text(name, nl)}")
            for k in range(vl):
                if v[k] == 0 or v[k] == 10 or v[k] == 13:
                    return self._malformed(f"CR, LF or NUL in the value of "
                                           f"{self._text(name, nl)}")
            if vl and (v[0] == 32 or v[0] == 9 or v[vl - 1] == 32 or v[vl - 1] == 9):
                return self._malformed(f"blanks around the value of {self._text(name, nl)}")
            if nl == 14 and memcmp(name, b"content-length", 14) == 0:
                length = _digits(v, vl)
                if length < 0 or (cl >= 0 and length != cl):
                    return self._malformed(f"content-length {self._text(v, vl)}")
                cl = length
        if status < 0:
            return self._malformed("no :status field")
        st.content_length = cl
        return status

    cdef bint _trailers_ok(self) except -1:
        """Trailers carry no pseudo-header field (RFC 9113 8.1)."""
        cdef Py_ssize_t i
        for i in range(self.decoder.nfields):
            if self.decoder.fields[i].name_len and self.decoder.fields[i].name[0] == 58:
                self.why = "a pseudo-header field in trailers"
                return False
        return True

    cdef int _malformed(self, str why) except -2:
        self.why = f"malformed response: {why}"
        return -1

    cdef str _text(self, const unsigned char *p, Py_ssize_t n):
        return repr(p[:n].decode("latin-1"))

    cdef long long _head_size(self) noexcept:
        """The size of the head the fields make, by the rule of
        :func:`tether.engine.h2common.response_fields` (as an HTTP/1.1 head of them)."""
        cdef HpackDecoder d = self.decoder
        cdef Py_ssize_t i
        cdef long long size = 17  # h2common.HEAD_FLOOR
        for i in range(d.nfields):
            if d.fields[i].name_len and d.fields[i].name[0] != 58:
                size += d.fields[i].name_len + d.fields[i].value_len + 4
        return size

    cdef bint _meets(self, H2Stream st) except -1:
        """Whether a compiled stream's head meets its job's expectation (as the HTTP/1.1
        Reader tests it: a status of the job's, each equal field exactly once with its
        value, no absent field; a redirect to follow is the Python path's)."""
        cdef Job job = st.job
        cdef HpackDecoder d = self.decoder
        cdef int matched[MAX_RULES]
        cdef bint ok_value[MAX_RULES]
        cdef Py_ssize_t i
        cdef int r
        cdef int status = st.status
        if status >= NSTATUS or not (job.any_status or job.statuses[status]):
            return False
        if self.path.follow and status in (301, 302, 303, 307, 308):
            return False
        if st.content_length > self.path.drain_limit:
            return False  # the Python path reads what it may and resets the stream
        if job.nrules == 0:
            return True
        for r in range(job.nrules):
            matched[r] = 0
            ok_value[r] = False
        for i in range(d.nfields):
            for r in range(job.nrules):
                if (d.fields[i].name_len == job.name_len[r]
                        and memcmp(d.fields[i].name, job.names[r], job.name_len[r]) == 0):
                    matched[r] += 1
                    ok_value[r] = (d.fields[i].value_len == job.value_len[r] and memcmp(
                        d.fields[i].value, job.values[r], job.value_len[r]) == 0)
        for r in range(job.nrules):
            if job.absent[r]:
                if matched[r]:
                    return False
            elif matched[r] != 1 or not ok_value[r]:
                return False
        return True

    cdef list _field_list(self):
        """The regular fields of the head in hand, as Python bytes pairs."""
        cdef HpackDecoder d = self.decoder
        cdef Py_ssize_t i
        fields = []
        for i in range(d.nfields):
            if d.fields[i].name_len and d.fields[i].name[0] != 58:
                fields.append((d.fields[i].name[:d.fields[i].name_len],
                               d.fields[i].value[:d.fields[i].value_len]))
        return fields

    cdef void _python_head(self, H2Stream st, list fields) except *:
        ex = st.ex
        ex.headers = Headers.of_fields(fields)
        ex.status = st.status
        ex.stage = _BODY_STAGE

    cdef void _too_large(self, H2Stream st) except *:
        cdef str text = f"response headers over {self.max_head:,} bytes"
        self._stream_fail(st, E_CANCEL, HeadersTooLarge(text))

    cdef void _data_in(self, int flags, unsigned int sid, const unsigned char *p,
                       Py_ssize_t n) except *:
        cdef Py_ssize_t off = 0, pad = 0, size
        cdef H2Stream st
        if not self.paused:
            self.acks_owed = 0  # as in _headers_in
        if not self._known(sid, "DATA"):
            return
        if flags & FL_PADDED:
            if n < 1:
                self._conn_error(E_FRAME_SIZE, "a padded DATA frame of no bytes")
                return
            pad = p[0]
            off = 1
            if off + pad > n:
                self._conn_error(E_PROTOCOL, "DATA padding longer than its frame")
                return
        size = n - off - pad
        self.recv_window -= n  # padding included: all of a frame is flow-controlled
        if self.recv_window < 0:
            self._conn_error(E_FLOW, "DATA past the connection's flow-control window")
            return
        if RECV_WINDOW - self.recv_window >= RECV_WINDOW // 2:
            self._window_frame(0, RECV_WINDOW - self.recv_window)
            self.recv_window = RECV_WINDOW
        st = self.streams.get(sid)
        if st is None:
            return  # a stream we ended: its bytes were given back to the connection
        if not st.headed:
            self._stream_error(st, E_PROTOCOL, "DATA before the response's headers")
            return
        st.recv_window -= n
        if st.recv_window < 0:
            self._stream_error(st, E_FLOW, "DATA past the stream's flow-control window")
            return
        if RECV_WINDOW - st.recv_window >= RECV_WINDOW // 2 and not flags & FL_END_STREAM:
            self._window_frame(sid, RECV_WINDOW - st.recv_window)
            st.recv_window = RECV_WINDOW
        if st.over:
            if flags & FL_END_STREAM:
                self._forget(st, True)
                st.ex.finish()
            return
        st.body_size += size
        if 0 <= st.content_length < st.body_size:
            self._stream_error(st, E_PROTOCOL, f"malformed response: DATA past its "
                               f"content-length ({st.content_length:,} bytes)")
            return
        if st.job is not None:
            if st.body_size > self.path.drain_limit:
                self._adopt(st, BODY)
                self._python_head(st, st.fields or [])
                st.ex.body_size = st.body_size
                self._over(st, flags & FL_END_STREAM)
            elif flags & FL_END_STREAM:
                self._compiled_done(st)
            return
        self._python_data(st, p + off, size, flags & FL_END_STREAM)
        if st.open and not st.over and flags & FL_END_STREAM:
            self._ended(st)

    cdef void _python_data(self, H2Stream st, const unsigned char *p, Py_ssize_t size,
                           bint end_stream) except *:
        """A piece of a Python stream's body, as the h2-library connection takes it: kept
        (or hashed) as the checks need, up to the drain limit, past which the response
        stands, undrained."""
        ex = st.ex
        cdef long long total = ex.body_size + size
        cdef long long limit = self.checked_limit if ex.keeps else self.path.drain_limit
        if total > limit:
            if ex.keeps:
                ex.keep(p[:max(limit - ex.body_size, 0)])
            ex.body_size = total
            self._over(st, end_stream)
            return
        ex.body_size = total
        if ex.keeps and size:
            ex.keep(p[:size])

    cdef void _settings_in(self, int flags, unsigned int sid, const unsigned char *p,
                           Py_ssize_t n) except *:
        cdef Py_ssize_t i
        cdef unsigned int ident, value
        cdef int64_t delta
        cdef H2Stream st
        if sid != 0:
            self._conn_error(E_PROTOCOL, f"SETTINGS on stream {sid}")
            return
        if flags & FL_ACK:
            if n:
                self._conn_error(E_FRAME_SIZE, "a SETTINGS acknowledgement with a payload")
                return
            if not self.settings_acked:
                self.settings_acked = True
                self.conn.settings_acked()
            return
        if n % 6:
            self._conn_error(E_FRAME_SIZE, f"SETTINGS of {n} bytes, not a multiple of 6")
            return
        for i in range(0, n, 6):
            ident = (<unsigned int>p[i] << 8) | p[i + 1]
            value = u32(p + i + 2)
            if ident == 2 and value > 1:
                self._conn_error(E_PROTOCOL, f"SETTINGS_ENABLE_PUSH {value}")
                return
            elif ident == 3:
                self.max_streams = value
            elif ident == 4:
                if value > MAX_WINDOW:
                    self._conn_error(E_FLOW, f"SETTINGS_INITIAL_WINDOW_SIZE {value:,}, past "
                                     "2^31-1")
                    return
                delta = <int64_t>value - self.initial_send_window
                self.initial_send_window = value
                for st in self.streams.values():
                    st.send_window += delta
                    if st.send_window > MAX_WINDOW:
                        self._conn_error(E_FLOW, "SETTINGS_INITIAL_WINDOW_SIZE took a stream's "
                                         "flow-control window past 2^31-1")
                        return
            elif ident == 5:
                if not 16384 <= value <= 16777215:
                    self._conn_error(E_PROTOCOL, f"SETTINGS_MAX_FRAME_SIZE {value:,}")
                    return
                self.max_send_frame = value
        if self._owe_ack("SETTINGS"):
            return
        self._frame(0, FT_SETTINGS, FL_ACK, 0)
        if self.max_streams < 0:
            self.max_streams = UNLIMITED  # not said: no limit (RFC 9113 6.5.2)
        if not self.ready:
            self.ready = True
            self.conn.settled_now()
        else:
            self.windows_opened = True
            self.conn._on_released(self.conn)  # a larger maximum may let a waiting request in

    cdef void _ping_in(self, int flags, unsigned int sid, const unsigned char *p,
                       Py_ssize_t n) except *:
        if sid != 0:
            self._conn_error(E_PROTOCOL, f"PING on stream {sid}")
        elif n != 8:
            self._conn_error(E_FRAME_SIZE, f"PING of {n} bytes, not 8")
        elif not flags & FL_ACK and not self._owe_ack("PING"):
            self._frame(8, FT_PING, FL_ACK, 0)
            self._put(<const char *>p, 8)

    cdef bint _owe_ack(self, str frame) except -1:
        """One more ack owed; True when that makes a flood, and the connection ends (see
        :data:`tether.engine.h2common.MOST_ACKS_OWED`)."""
        self.acks_owed += 1
        if self.acks_owed <= _MOST_ACKS_OWED:
            return False
        self.olen = 0  # this read's acks: not worth sending
        self._end(E_CALM, ProtocolError(flood_text(frame, self.acks_owed)))
        return True

    cdef void _window_in(self, unsigned int sid, const unsigned char *p, Py_ssize_t n) except *:
        cdef unsigned int inc
        cdef H2Stream st
        if n != 4:
            self._conn_error(E_FRAME_SIZE, f"WINDOW_UPDATE of {n} bytes, not 4")
            return
        inc = u32(p) & 0x7fffffff
        if sid == 0:
            if inc == 0:
                self._conn_error(E_PROTOCOL, "a WINDOW_UPDATE of 0 on the connection")
                return
            self.send_window += inc
            if self.send_window > MAX_WINDOW:
                self._conn_error(E_FLOW, "WINDOW_UPDATE took the connection's flow-control "
                                 "window past 2^31-1")
                return
            self.windows_opened = True
            return
        if not self._known(sid, "WINDOW_UPDATE"):
            return
        st = self.streams.get(sid)
        if st is None:
            return
        if inc == 0:
            self._stream_error(st, E_PROTOCOL, "a WINDOW_UPDATE of 0")
            return
        st.send_window += inc
        if st.send_window > MAX_WINDOW:
            self._stream_error(st, E_FLOW, "WINDOW_UPDATE took the stream's flow-control "
                               "window past 2^31-1")
            return
        self.windows_opened = True

    cdef void _rst_in(self, unsigned int sid, const unsigned char *p, Py_ssize_t n) except *:
        cdef unsigned int code
        cdef H2Stream st
        if n != 4:
            self._conn_error(E_FRAME_SIZE, f"RST_STREAM of {n} bytes, not 4")
            return
        if not self._known(sid, "RST_STREAM"):
            return
        code = u32(p)
        name = code_name(code)
        self.counts.reset_by_server[name] += 1
        st = self.streams.get(sid)
        if st is None:
            return
        if st.job is not None:
            self._adopt(st, BODY if st.headed else SENT)
        self._forget(st, True)
        ex = st.ex
        if ex.done is None:
            return
        if code == E_REFUSED:
            self._refused(ex, f"server refused the stream ({name})")
        else:
            ex.fail(StreamReset(f"server reset the stream ({name}) {where(ex)}"))

    cdef void _goaway_in(self, unsigned int sid, const unsigned char *p, Py_ssize_t n) except *:
        """The server goes away: no new stream here; the streams above its last stream id
        were never processed, and fail for the send path to retry (RFC 9113 6.8)."""
        cdef unsigned int last
        cdef H2Stream st
        if sid != 0:
            self._conn_error(E_PROTOCOL, f"GOAWAY on stream {sid}")
            return
        if n < 8:
            self._conn_error(E_FRAME_SIZE, f"GOAWAY of {n} bytes, under 8")
            return
        last = u32(p) & 0x7fffffff
        self.counts.goaway += 1
        self.draining = _GOAWAY
        for st in [st for st in self.streams.values() if st.sid > last]:
            if st.job is not None:
                self._adopt(st, SENT)
            self._forget(st, False)
            if st.ex.done is not None:
                self._refused(st.ex, f"server sent GOAWAY (last stream {last})")
        self._maybe_close()

    cdef void _refused(self, ex, str why) except *:
        """A stream the server never processed: it carried nothing (not counted among the
        requests this connection carried), and fails for the send path to retry."""
        self.carried -= 1
        ex.fail(StreamRefused(f"{why}: not processed"))

    # -- streams ---------------------------------------------------------------------------

    cdef void _open(self, H2Stream st, bytes block, bytes body) except *:
        """Put a new stream's HEADERS (and CONTINUATION) out, and list it."""
        cdef unsigned int sid = self.next_sid
        self.next_sid += 2
        st.sid = sid
        st.open = True
        st.reused = self.carried > 0
        self.carried += 1
        st.send_window = self.initial_send_window
        st.recv_window = RECV_WINDOW
        st.content_length = -1
        self._headers_frames(sid, block, not body)
        if body:
            st.body = body
            st.body_at = 0
        self.streams[sid] = st
        self.nstreams += 1
        self.new_streams += 1
        if self.nstreams > self.peak:
            self.peak = self.nstreams
        if self.idle:
            self.idle = False
            self.conn.state = _ACTIVE

    cdef void _open_compiled(self, H2Stream st, Job job, int64_t now) except *:
        cdef Path path = self.path
        cdef bytes block = job.h2block
        if block is None:
            block = job.h2block = hpack_encode(job.prep.request.h2_fields(self.scheme))
        st.job = job
        st.ex = None
        st.is_head = job.is_head
        st.headed = False
        st.status = 0
        st.body_size = 0
        st.fields = None
        st.over = False
        st.body = None
        st.stalled_at = 0
        st.started = now
        st.latency_from = now
        st.deadline = now + path.timeout_ns if path.timeout_ns else 0
        st.due = due_after_ns(SENT, now, st.deadline, path.header_timeout_ns,
                              path.drain_timeout_ns, &st.phase)
        body = job.prep.request.body
        self._open(st, block, body)
        if body:
            self._send_body(st)

    cdef void _compiled_done(self, H2Stream st) except *:
        """A compiled stream's response is whole and met its expectation: count it, then
        open the journey's next request here when the cycle has one for this connection;
        else the place is free, and the journey goes on on the Python side."""
        cdef Path path = self.path
        cdef Cycle cycle = path.cycle
        cdef Job job = st.job
        cdef object obj, token = None
        cdef int64_t now = now_ns()
        cdef Py_ssize_t i
        if self._short(st):
            return
        if st.body is not None and st.body_at < len(st.body):
            self._reset(st, E_CANCEL)  # answered before the whole body was sent: stop
        self._drop(st)
        if path.stopped:
            st.journey = None
            self._released()  # the sender has stopped: what is in flight is abandoned
            return
        path.counts.record(job.slot, st.status, st.reused, (now - st.latency_from) // 1000)
        if not st.repeat:
            path.counts.record_service((now - st.started) // 1000)
        if st.repeat and cycle is not None and self._can_open():
            i = cycle.take()
            if i >= 0:
                obj = cycle.jobs[i]
                if obj is not None and (<Job>obj).key is job.key:
                    self._open_compiled(st, <Job>obj, now)
                    return
                token = cycle.tokens[i]
        journey = st.journey
        st.journey = None
        self._released()
        try:
            journey.counted(token)
        except BaseException as exc:
            journey.failed(exc)

    cdef bint _short(self, H2Stream st) except -1:
        """A body that ended short of its content-length: the stream fails (RFC 9113 8.1.1)."""
        if st.content_length <= st.body_size or st.is_head:
            return False
        self._stream_error(st, E_PROTOCOL, f"malformed response: its body ended at "
                           f"{st.body_size:,} of its content-length's {st.content_length:,} bytes")
        return True

    cdef void _whole(self, H2Stream st) except *:
        """A stream's response is whole, whichever side it is."""
        if st.job is not None:
            self._compiled_done(st)
        else:
            self._ended(st)

    cdef void _ended(self, H2Stream st) except *:
        """A Python stream's response is whole (its END_STREAM)."""
        ex = st.ex
        if self._short(st):
            return
        if st.body is not None and st.body_at < len(st.body):
            self._reset(st, E_CANCEL)  # answered before the whole body was sent: stop
        self._forget(st, True)
        if ex.done is not None:
            ex.finish()

    cdef void _adopt(self, H2Stream st, int stage) except *:
        """Hand a compiled stream to the Python side, as it stands: from here it is a
        Python stream, reported to its journey through the exchange made for it."""
        cdef Job job = st.job
        cdef int64_t now = now_ns()
        cdef double loop_now = self.path.loop_time()
        cdef double deadline = loop_now + (st.deadline - now) / 1e9 if st.deadline else 0.0
        cdef double due = loop_now + (st.due - now) / 1e9 if st.due else 0.0
        handover = Handover(
            job.prep, 0, st.reused, st.latency_from / 1e9, st.started / 1e9, deadline, due,
            PHASES[st.phase], STAGES[stage], st.status if stage == BODY else 0, b"",
            st.body_size if stage == BODY else 0)
        journey = st.journey
        st.journey = None
        st.job = None
        self.adopting = st
        try:
            self.path.adopt(self.conn, journey, handover)
        finally:
            self.adopting = None

    cdef void _stream_error(self, H2Stream st, unsigned int code, str why) except *:
        self._stream_fail(st, code, ProtocolError(f"invalid HTTP/2 from the server: {why}"))

    cdef void _stream_fail(self, H2Stream st, unsigned int code, error) except *:
        """A stream that cannot go on: reset with ``code``, its request failed with
        ``error``; the connection carries the others on."""
        if st.job is not None:
            self._adopt(st, BODY if st.headed else SENT)
        self._reset(st, code)
        self._forget(st, True)
        ex = st.ex
        if ex.done is not None:
            ex.fail(error)

    cdef void _over(self, H2Stream st, bint end_stream) except *:
        """A body past the drain limit: the response stands, truncated, and no more of it
        is read. Its stream is reset once the read is done if it has not ended by then (as
        the h2-library connection decides, after a read's frames: no reset of a stream
        whose end came in the same read)."""
        st.ex.truncated = True
        st.over = True
        if end_stream:
            self._forget(st, True)
            st.ex.finish()
        else:
            self.overs.append(st)

    cdef void _undrained(self, H2Stream st) except *:
        """A body too big or too slow to read: the response stands, its stream is reset
        (the connection goes on carrying the others)."""
        ex = st.ex
        ex.truncated = True
        self._reset(st, E_CANCEL)
        self._forget(st, True)
        ex.finish()

    cdef void _on_deadline(self, H2Stream st) except *:
        ex = st.ex
        if ex.phase is _DRAIN_PHASE:
            self._undrained(st)
            return
        self._reset(st, E_CANCEL)
        self._forget(st, True)
        ex.fail(timed_out(ex.phase, self.header_timeout, self.timeout))

    cdef void _reset(self, H2Stream st, unsigned int code) except *:
        self._frame(4, FT_RST, 0, st.sid)
        self._put_u32(code)
        self.counts.reset_by_us[code_name(code)] += 1

    cdef void _drop(self, H2Stream st) except *:
        """A stream is over on the wire (no one told yet)."""
        if not st.open:
            return
        st.open = False
        del self.streams[st.sid]
        self.nstreams -= 1
        if st.stalled_at:
            self.counts.flow_stall_s += (now_ns() - st.stalled_at) / 1e9
            st.stalled_at = 0
            if st in self.sending:
                self.sending.remove(st)

    cdef void _forget(self, H2Stream st, bint release) except *:
        """A stream is over on the wire: its place is free (the pool is told first, so
        that whoever its report wakes finds the connection with room)."""
        self._drop(st)
        if release:
            self._released()
        elif self.nstreams == 0:
            self._now_idle()
            self._maybe_close()

    cdef void _released(self) except *:
        if self.nstreams == 0:
            self._now_idle()
        if self._maybe_close():
            return
        self.conn._on_released(self.conn)

    cdef void _now_idle(self) except *:
        if not self.idle and not self.closing:
            self.idle = True
            self.conn._now_idle()

    cdef bint _maybe_close(self) except -1:
        """Close a connection that is going away once its last stream is done."""
        if self.draining is not None and self.nstreams == 0 and not self.closing:
            self.conn.close(self.draining)
            return True
        return False

    cdef void _send_body(self, H2Stream st) except *:
        """As much of the request body as the flow-control windows (the stream's and the
        connection's) let go now; the rest waits for WINDOW_UPDATE, timed as a stall."""
        cdef Py_ssize_t total = len(st.body), k
        cdef int64_t room
        while st.body_at < total:
            room = min(st.send_window, self.send_window, <int64_t>self.max_send_frame)
            if room <= 0:
                if not st.stalled_at:
                    st.stalled_at = now_ns()
                    self.counts.flow_stalls += 1
                    self.sending.append(st)
                return
            if st.stalled_at:
                self.counts.flow_stall_s += (now_ns() - st.stalled_at) / 1e9
                st.stalled_at = 0
                if st in self.sending:
                    self.sending.remove(st)
            k = <Py_ssize_t>min(room, <int64_t>(total - st.body_at))
            self._frame(k, FT_DATA, FL_END_STREAM if st.body_at + k == total else 0, st.sid)
            self._put(PyBytes_AS_STRING(st.body) + st.body_at, k)
            st.body_at += k
            st.send_window -= k
            self.send_window -= k

    cdef void _resume_sending(self) except *:
        cdef H2Stream st
        for st in list(self.sending):
            if st.open:
                self._send_body(st)

    cdef void _conn_error(self, unsigned int code, str why) except *:
        """The server broke the protocol: GOAWAY with ``code``, every stream fails with a
        sentence saying what it did, and the connection is closed."""
        self._end(code, ProtocolError(f"invalid HTTP/2 from the server: {why}"))

    cdef void _end(self, unsigned int code, error) except *:
        cdef H2Stream st
        if self.dead:
            return
        self.dead = True
        if not self.closing and self.transport is not None:
            self._goaway_frame(code)
            self._flush(True)
        self.closing = True
        streams = list(self.streams.values())
        for st in streams:
            if st.job is not None:
                self._adopt(st, BODY if st.headed else SENT)
        self.streams.clear()
        self.sending.clear()
        self.nstreams = 0
        self.conn.abort(_PROTOCOL)
        for st in streams:
            st.open = False
            if st.ex.done is not None:
                st.ex.fail(error)

    cdef void _after_read(self) except *:
        """Once a read's frames are done: the Python streams whose head came in it and
        whose body goes on past it have the drain timeout from now on (set once a read,
        not per head: most bodies end in the read their head came in), the counts are
        folded in, and the frames made go out in one write."""
        cdef H2Stream st
        cdef int64_t ns = 0
        cdef double now = 0.0
        cdef Path path = self.path
        if self.overs:
            overs, self.overs = self.overs, []
            for st in overs:
                if st.open:
                    self._undrained(st)
        if self.windows_opened:
            self.windows_opened = False
            self._resume_sending()
        headed = self.headed
        if headed:
            for st in headed:
                if not st.open:
                    continue
                if st.job is not None:
                    if st.phase != DRAIN:
                        ns = ns or now_ns()
                        st.due = due_after_ns(BODY, ns, st.deadline, path.header_timeout_ns,
                                              path.drain_timeout_ns, &st.phase)
                    continue
                ex = st.ex
                if ex.done is None or ex.phase is _DRAIN_PHASE:
                    continue
                now = now or path.loop_time()
                ex.reach(_BODY_STAGE, now, self.header_timeout, self.drain_timeout)
            headed.clear()  # (kept: a list a read would cost the collector its counts)
        self._turn_over()

    cdef void _turn_over(self) except *:
        self._fold()
        self._flush(False)

    cdef void _fold(self) except *:
        """The ledger's stream counts, from the C fields."""
        counts = self.counts
        if self.new_streams:
            counts.streams += self.new_streams
            self.new_streams = 0
        if self.peak > counts.peak:
            counts.peak = self.peak

    # -- frames out --------------------------------------------------------------------------

    cdef int _room(self, Py_ssize_t n) except -1:
        cdef Py_ssize_t cap = self.ocap
        cdef char *grown
        if self.olen + n <= cap:
            return 0
        while self.olen + n > cap:
            cap *= 2
        grown = <char *>realloc(self.out, cap)
        if grown == NULL:
            raise MemoryError()
        self.out = grown
        self.ocap = cap
        return 0

    cdef void _put(self, const char *data, Py_ssize_t n) except *:
        self._room(n)
        memcpy(self.out + self.olen, data, n)
        self.olen += n

    cdef void _put_u32(self, unsigned int v) except *:
        cdef unsigned char b[4]
        b[0] = (v >> 24) & 0xff
        b[1] = (v >> 16) & 0xff
        b[2] = (v >> 8) & 0xff
        b[3] = v & 0xff
        self._put(<const char *>b, 4)

    cdef void _frame(self, Py_ssize_t length, int ftype, int flags, unsigned int sid) except *:
        cdef unsigned char *h
        self._room(9 + length)
        h = <unsigned char *>self.out + self.olen
        h[0] = (length >> 16) & 0xff
        h[1] = (length >> 8) & 0xff
        h[2] = length & 0xff
        h[3] = ftype
        h[4] = flags
        h[5] = (sid >> 24) & 0x7f
        h[6] = (sid >> 16) & 0xff
        h[7] = (sid >> 8) & 0xff
        h[8] = sid & 0xff
        self.olen += 9

    cdef void _headers_frames(self, unsigned int sid, bytes block, bint end_stream) except *:
        """A header block as HEADERS, and CONTINUATION for what passes the server's frame
        size."""
        cdef Py_ssize_t n = PyBytes_GET_SIZE(block), at, k
        cdef const char *p = PyBytes_AS_STRING(block)
        k = min(n, self.max_send_frame)
        self._frame(k, FT_HEADERS, (FL_END_HEADERS if k == n else 0)
                    | (FL_END_STREAM if end_stream else 0), sid)
        self._put(p, k)
        at = k
        while at < n:
            k = min(n - at, self.max_send_frame)
            self._frame(k, FT_CONTINUATION, FL_END_HEADERS if at + k == n else 0, sid)
            self._put(p + at, k)
            at += k

    cdef void _settings_frame(self) except *:
        """Ours: no push, the stream window opened wide, and the head limit (as the
        h2-library connection says them)."""
        cdef int count = 3 if self.max_head > 0 else 2
        self._frame(6 * count, FT_SETTINGS, 0, 0)
        self._setting(2, 0)
        self._setting(4, RECV_WINDOW)
        if self.max_head > 0:
            self._setting(6, <unsigned int>min(self.max_head, 0xffffffff))

    cdef void _setting(self, unsigned int ident, unsigned int value) except *:
        cdef unsigned char b[2]
        b[0] = (ident >> 8) & 0xff
        b[1] = ident & 0xff
        self._put(<const char *>b, 2)
        self._put_u32(value)

    cdef void _window_frame(self, unsigned int sid, unsigned int inc) except *:
        self._frame(4, FT_WINDOW, 0, sid)
        self._put_u32(inc)

    cdef void _goaway_frame(self, unsigned int code) except *:
        self._frame(8, FT_GOAWAY, 0, 0)
        self._put_u32(0)  # the last stream we took from the server: none (no push)
        self._put_u32(code)

    cdef void _flush(self, bint now) except *:
        """Write the frames made (after the read, unless ``now``: a GOAWAY goes at once)."""
        if self.olen == 0 or (self.in_read and not now):
            return
        if self.transport is None or (self.closing and not now):
            self.olen = 0
            return
        data = PyBytes_FromStringAndSize(self.out, self.olen)
        self.olen = 0
        self._write(data)


cdef inline long long _digits(const unsigned char *v, Py_ssize_t n) noexcept:
    """A content-length's value: 1 to 18 digits, else -1."""
    cdef long long value = 0
    cdef Py_ssize_t k
    if n == 0 or n > 18:
        return -1
    for k in range(n):
        if not 48 <= v[k] <= 57:
            return -1
        value = value * 10 + (v[k] - 48)
    return value


cdef inline bint _connection_specific(const unsigned char *name, Py_ssize_t nl,
                                      const unsigned char *v, Py_ssize_t vl) noexcept:
    """A field HTTP/2 forbids (RFC 9113 8.2.2): connection, keep-alive, proxy-connection,
    transfer-encoding, upgrade, and te other than ``trailers``."""
    if nl == 10:
        return memcmp(name, b"connection", 10) == 0 or memcmp(name, b"keep-alive", 10) == 0
    if nl == 16:
        return memcmp(name, b"proxy-connection", 16) == 0
    if nl == 17:
        return memcmp(name, b"transfer-encoding", 17) == 0
    if nl == 7:
        return memcmp(name, b"upgrade", 7) == 0
    if nl == 2 and memcmp(name, b"te", 2) == 0:
        return not (vl == 8 and memcmp(v, b"trailers", 8) == 0)
    return False
