# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The send path's common case, compiled: a connection that parses each response, tests the
compiled expectation, counts it in C fields and writes the next request, with no Python
object made per response.

:class:`Wire` is the asyncio protocol of a connection the pool made for a compiled send
path. It drives its :class:`~tether.engine.connection.Connection` (state, ledger events, the
reference parser) and takes over only the requests it can vouch for from end to end: a plain
head (see :meth:`Reader.head`), a body framed by Content-Length or chunked, an expectation of
statuses and header equals / absent that the response meets. Anything else is handed to the
connection, the Python path, at a point where llhttp can take it up exactly: the response from
its first byte, or (mid chunked body) the head again and the rest from a chunk-size line.
A request the Python path answers is counted there, in full.

Counting is plain data: :class:`Counts` holds counters and log-linear histograms (the layout
of :mod:`tether.metrics.histogram`) per counter slot, drained into the run's tally once a
second. The engine knows nothing of checks or metrics; what crosses is bytes and ints.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memchr, memcmp, memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from tether.engine.exchange import PHASES, STAGES, Handover


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


# The histogram layout of tether.metrics.histogram (a test holds the two equal).
DEF SUB_BUCKETS = 2048
DEF LOG_SUB = 11
cdef long long MAX_VALUE_US = 3600000000


cdef Py_ssize_t _bucket_count():
    cdef int shift = 64 - __builtin_clzll(<uint64_t>MAX_VALUE_US) - LOG_SUB
    return (shift << 10) + (MAX_VALUE_US >> shift) + 1


cdef Py_ssize_t NBUCKETS = _bucket_count()

DEF NSTATUS = 600
DEF MAX_RULES = 8
DEF MAX_CAPTURES = 8  # header names a flow's step reads values of
DEF KEEP_MOST = 65536  # a body kept for a flow's capture, at most (a longer one: Python's)
DEF MAX_HEAD = 16384  # a longer head is the Python path's (which holds heads to their limit)
DEF LINE_CAP = 24  # a chunk-size line vouched for: up to 15 hex digits and CRLF (and "0\r\n\r\n")

# Reader states
DEF R_HEAD = 0
DEF R_LENGTH = 1
DEF R_SIZE = 2
DEF R_DATA = 3
DEF R_DATA_CR = 4
DEF R_DATA_LF = 5

# Reader events
DEF MORE = 0
DEF DONE = 1
DEF HANDOVER = 2

# Phases and stages, as tether.engine.exchange's Phase and Stage (indexes into PHASES, STAGES)
DEF WHOLE = 0
DEF HEADERS = 1
DEF DRAIN = 2
DEF SENT = 0
DEF HEAD = 1
DEF BODY = 2


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)  # time.perf_counter's clock on Linux
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t due_after_ns(int stage, int64_t now, int64_t deadline, int64_t header_ns,
                                 int64_t drain_ns, int *phase) noexcept nogil:
    """tether.engine.exchange.due_after, in nanoseconds: the one deadline rule, mirrored
    (:func:`due_after` below lets a test hold the two to each other)."""
    cdef int64_t step = 0
    phase[0] = WHOLE
    if stage == SENT:
        step = header_ns
    elif stage == BODY:
        step = drain_ns
    if step > 0 and (not deadline or now + step < deadline):
        phase[0] = HEADERS if stage == SENT else DRAIN
        return now + step
    phase[0] = WHOLE
    return deadline


def due_after(int stage, int64_t now, int64_t deadline, int64_t header_ns, int64_t drain_ns):
    """:func:`due_after_ns` from Python, for the test that holds it to the Python rule:
    (due, phase index)."""
    cdef int phase = WHOLE
    cdef int64_t due = due_after_ns(stage, now, deadline, header_ns, drain_ns, &phase)
    return due, phase


cdef inline unsigned char lower(unsigned char c) noexcept nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef unsigned char TCHAR[256]
cdef unsigned char VALUE[256]
cdef unsigned char HEX[256]


cdef void _tables() noexcept:
    cdef int c
    for c in range(256):
        TCHAR[c] = (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or (
            c in b"!#$%&'*+-.^_`|~")
        VALUE[c] = c == 9 or 32 <= c <= 126  # obs-text (0x80-0xff) is llhttp's to judge
        if 48 <= c <= 57:
            HEX[c] = c - 48 + 1
        elif 97 <= c <= 102:
            HEX[c] = c - 87 + 1
        elif 65 <= c <= 70:
            HEX[c] = c - 55 + 1
        else:
            HEX[c] = 0


_tables()


cdef inline bint same_name(const unsigned char *p, Py_ssize_t n, const char *lname,
                           Py_ssize_t ln) noexcept nogil:
    """A header name, any case, against a lower-case one."""
    cdef Py_ssize_t i
    if n != ln:
        return False
    for i in range(n):
        if lower(p[i]) != <unsigned char>lname[i]:
            return False
    return True


def layout():
    """The histogram layout compiled in: (sub-buckets, max value in us, bucket count)."""
    return SUB_BUCKETS, MAX_VALUE_US, NBUCKETS


# -- what is counted --------------------------------------------------------------------------


cdef inline void _count(long long *hist, int64_t us, long long *count, long long *total,
                        long long *low, long long *high, long long *clamped) noexcept:
    """One value into a histogram of tether.metrics.histogram's layout, and its stats."""
    cdef int64_t v = us
    cdef int shift
    if v < SUB_BUCKETS:
        if v < 0:
            v = 0
        hist[v] += 1
    else:
        if v > MAX_VALUE_US:
            v = MAX_VALUE_US
            clamped[0] += 1
        shift = 64 - __builtin_clzll(<uint64_t>v) - LOG_SUB
        hist[(shift << 10) + (v >> shift)] += 1
    count[0] += 1
    total[0] += v
    if v < low[0]:
        low[0] = v
    if v > high[0]:
        high[0] = v


cdef dict _parts(long long *hist, long long count, long long total, long long clamped,
                 long long low, long long high):
    """A histogram's counts as tether.metrics.histogram.Histogram.to_dict shapes them."""
    cdef Py_ssize_t b
    return {
        "count": count,
        "total": total,
        "clamped": clamped,
        "min": low,
        "max": high,
        "buckets": [[b, hist[b]] for b in range(NBUCKETS) if hist[b]],
    }


cdef class Counts:
    """What the compiled path counted since the last :meth:`drain`: responses, reused
    connections, statuses, and per counter slot a count and a latency histogram."""

    cdef long long requests, reused
    cdef long long status[NSTATUS]
    cdef int nslots
    cdef long long *slot_count
    cdef long long *slot_total
    cdef long long *slot_min
    cdef long long *slot_max
    cdef long long *slot_clamped
    cdef long long **slot_hist
    cdef long long service_count, service_total, service_min, service_max, service_clamped
    cdef long long *service_hist  # time from the actual send (open model), all slots

    def __cinit__(self, int nslots):
        self.nslots = nslots
        self.slot_count = <long long *>calloc(nslots, sizeof(long long))
        self.slot_total = <long long *>calloc(nslots, sizeof(long long))
        self.slot_min = <long long *>calloc(nslots, sizeof(long long))
        self.slot_max = <long long *>calloc(nslots, sizeof(long long))
        self.slot_clamped = <long long *>calloc(nslots, sizeof(long long))
        self.slot_hist = <long long **>calloc(nslots, sizeof(long long *))
        self.service_hist = <long long *>calloc(NBUCKETS, sizeof(long long))
        if not (self.service_hist and self.slot_count and self.slot_total and self.slot_min and self.slot_max
                and self.slot_clamped and self.slot_hist):
            raise MemoryError()
        self._reset()

    def __dealloc__(self):
        cdef int i
        if self.slot_hist:
            for i in range(self.nslots):
                free(self.slot_hist[i])
        free(self.slot_hist)
        free(self.service_hist)
        free(self.slot_count)
        free(self.slot_total)
        free(self.slot_min)
        free(self.slot_max)
        free(self.slot_clamped)

    cdef void _reset(self) noexcept:
        cdef int i
        self.requests = 0
        self.reused = 0
        memset(self.status, 0, sizeof(self.status))
        self.service_count = self.service_total = self.service_clamped = 0
        self.service_min = MAX_VALUE_US + 1
        self.service_max = -1
        memset(self.service_hist, 0, NBUCKETS * sizeof(long long))
        for i in range(self.nslots):
            self.slot_count[i] = 0
            self.slot_total[i] = 0
            self.slot_min[i] = MAX_VALUE_US + 1
            self.slot_max[i] = -1
            self.slot_clamped[i] = 0
            if self.slot_hist[i]:
                memset(self.slot_hist[i], 0, NBUCKETS * sizeof(long long))

    cdef int ready(self, int slot) except -1:
        """Allocate ``slot``'s histogram now, so that counting never has to."""
        if not 0 <= slot < self.nslots:
            raise ValueError(f"counter slot {slot} out of range 0..{self.nslots - 1}")
        if not self.slot_hist[slot]:
            self.slot_hist[slot] = <long long *>calloc(NBUCKETS, sizeof(long long))
            if not self.slot_hist[slot]:
                raise MemoryError()
        return 0

    cdef inline void record(self, int slot, int status, bint reused, int64_t us) noexcept:
        self.requests += 1
        self.reused += reused
        self.status[status] += 1  # a vouched status is 200..599
        _count(self.slot_hist[slot], us, &self.slot_count[slot], &self.slot_total[slot],
               &self.slot_min[slot], &self.slot_max[slot], &self.slot_clamped[slot])

    cdef inline void record_service(self, int64_t us) noexcept:
        _count(self.service_hist, us, &self.service_count, &self.service_total,
               &self.service_min, &self.service_max, &self.service_clamped)

    @property
    def pending(self):
        """Responses counted since the last drain."""
        return self.requests

    def drain(self, names):
        """What was counted since the last drain, as plain data (see
        :class:`tether.model.Counted`: slot ``i``'s latencies under ``names[i]``), and the
        counters back to zero."""
        cdef int i
        slots = {}
        for i in range(self.nslots):
            if self.slot_count[i]:
                slots[names[i]] = _parts(self.slot_hist[i], self.slot_count[i], self.slot_total[i],
                                  self.slot_clamped[i], self.slot_min[i], self.slot_max[i])
        counted = {
            "requests": self.requests,
            "reused": self.reused,
            "status": {code: self.status[code] for code in range(NSTATUS) if self.status[code]},
            "slots": slots,
            "service": None if not self.service_count else _parts(
                self.service_hist, self.service_count, self.service_total,
                self.service_clamped, self.service_min, self.service_max),
        }
        self._reset()
        return counted


# -- what is sent -----------------------------------------------------------------------------


cdef class Job:
    """One prepared request, compiled: its bytes, the pool key it goes to, its counter slot,
    and its expectation (statuses, headers equal to a value or absent). ``prep`` is the
    :class:`~tether.engine.request.Prepared` it was made of."""

    cdef readonly object prep
    cdef bytes head
    cdef object key
    cdef str method
    cdef bint is_head
    cdef int slot
    cdef bint any_status
    cdef unsigned char statuses[NSTATUS]
    cdef int nrules
    cdef list keep  # the bytes the pointers below point into
    cdef const char *names[MAX_RULES]
    cdef Py_ssize_t name_len[MAX_RULES]
    cdef const char *values[MAX_RULES]
    cdef Py_ssize_t value_len[MAX_RULES]
    cdef bint absent[MAX_RULES]
    cdef bytes h2block  # its HPACK header block, made on its first HTTP/2 send
    # A flow's step (see Path.step): its sender fills ``head`` before each send, hears of
    # each response through ``following`` and makes its Prepared only when asked.
    cdef readonly bint step
    cdef int ncaptures
    cdef const char *capture_names[MAX_CAPTURES]
    cdef Py_ssize_t capture_len[MAX_CAPTURES]
    cdef bint keep_body
    cdef bint takes  # its response has values for its sender to take
    # What compiled code takes from its responses itself (see Cursor.take): (what, key, field
    # index, variable index, ((slot, where), ...)) each, or None when only the sender can;
    # the index of Set-Cookie in its captures, whether its run keeps cookies, and whether
    # its request's default cookie path is "/".
    cdef public list quick_takes
    cdef public int cookie_field
    cdef public bint stores, root_path
    # Its bytes as constant parts and the indexes of slots (a user's values, encoded for
    # where each goes, and its Cookie line), for the path to fill itself; None: its sender's.
    cdef public list parts

    def fill(self, bytes head):
        """The bytes the next send writes (a flow's step, its variables filled)."""
        self.head = head

    def fill_from(self, list slots):
        """Fill :attr:`parts` from ``slots`` (see :class:`Cursor`); False, and the head
        unchanged, when a slot it needs is None (a value that cannot be sent)."""
        cdef bytes head = _filled(self.parts, slots)
        if head is None:
            return False
        self.head = head
        return True


cdef bytes _filled(list parts, list slots):
    """``parts`` joined, each int the bytes of that slot; None when one of those is None."""
    cdef Py_ssize_t total = 0, at = 0, n
    cdef object part, piece
    cdef bytes out
    cdef char *dst
    for part in parts:
        if type(part) is bytes:
            total += PyBytes_GET_SIZE(<bytes>part)
        else:
            piece = slots[<Py_ssize_t>part]
            if piece is None:
                return None
            total += PyBytes_GET_SIZE(<bytes>piece)
    out = PyBytes_FromStringAndSize(NULL, total)
    dst = PyBytes_AS_STRING(out)
    for part in parts:
        piece = part if type(part) is bytes else slots[<Py_ssize_t>part]
        n = PyBytes_GET_SIZE(<bytes>piece)
        memcpy(dst + at, PyBytes_AS_STRING(<bytes>piece), n)
        at += n
    return out


cdef class Cycle:
    """Prepared requests handed out in order, over and over, until ``remaining`` runs out or
    it is stopped (as :class:`tether.engine.cycle.Cycle`). ``jobs[i]`` is ``tokens[i]``
    compiled, or None when only the Python path can send it."""

    cdef list tokens
    cdef list jobs
    cdef Py_ssize_t pos, n
    cdef public long long remaining
    cdef public bint stopped

    def __init__(self, list tokens, list jobs, long long remaining):
        if len(tokens) != len(jobs):
            raise ValueError("one compiled job (or None) per token")
        self.tokens = tokens
        self.jobs = jobs
        self.n = len(tokens)
        self.pos = 0
        self.remaining = remaining
        self.stopped = False

    cdef inline Py_ssize_t take(self) noexcept:
        cdef Py_ssize_t i = self.pos
        if self.stopped or self.remaining <= 0 or self.n == 0:
            return -1
        self.pos = i + 1 if i + 1 < self.n else 0
        self.remaining -= 1
        return i

    def next(self):
        """The next token, or None when the cycle is over."""
        cdef Py_ssize_t i = self.take()
        return None if i < 0 else self.tokens[i]


cdef class Path:
    """What the compiled connections of one send path share: its counts, its cycle of
    requests (once the sender has one), its timeouts and limits, whether it stopped, and
    ``adopt``: what takes a request handed to the Python path, called as
    ``adopt(conn, journey, handover)`` (the send path's
    :meth:`~tether.engine.dispatch.Dispatch.adopt`)."""

    cdef readonly Counts counts
    cdef public Cycle cycle
    cdef public bint stopped
    cdef public object adopt
    cdef int64_t timeout_ns, header_timeout_ns, drain_timeout_ns
    cdef long long drain_limit, max_head
    cdef bint follow
    cdef object loop_time
    cdef dict keys

    def __init__(self, double timeout, double header_timeout, double drain_timeout,
                 long long drain_limit, bint follow, int slots, loop_time,
                 long long max_head_bytes=0):
        self.counts = Counts(slots)
        self.cycle = None
        self.stopped = False
        self.adopt = None
        self.timeout_ns = <int64_t>(timeout * 1e9)
        self.header_timeout_ns = <int64_t>(header_timeout * 1e9)
        self.drain_timeout_ns = <int64_t>(drain_timeout * 1e9)
        self.drain_limit = drain_limit
        # A head is vouched for here up to MAX_HEAD and the head size limit (0: none):
        # past either the Python path reads it, and past the limit fails the request.
        self.max_head = MAX_HEAD if not 0 < max_head_bytes < MAX_HEAD else max_head_bytes
        self.follow = follow
        self.loop_time = loop_time
        self.keys = {}

    def job(self, prep, int slot, statuses, equals, absent):
        """``prep`` (a :class:`~tether.engine.request.Prepared`) compiled with its counter
        slot and expectation: ``statuses`` (empty: any), ``equals`` ((lower-case name,
        value) bytes pairs) and ``absent`` (lower-case names). None when it has more rules
        than compiled code holds, or a status it cannot vouch for."""
        cdef Job job = Job()
        cdef int code
        if len(equals) + len(absent) > MAX_RULES:
            return None
        self.counts.ready(slot)
        job.prep = prep
        job.head = prep.request.http11
        job.key = self.keys.setdefault(prep.key, prep.key)  # one object per key: `is` compares
        job.method = prep.request.method
        job.is_head = job.method == "HEAD"
        job.slot = slot
        job.any_status = not statuses
        for code in statuses:
            if not 200 <= code < NSTATUS:
                return None  # interim and odd statuses are the Python path's
            job.statuses[code] = 1
        job.keep = []
        job.cookie_field = -1
        for name, value in equals:
            self._rule(job, name, value, False)
        for name in absent:
            self._rule(job, name, b"", True)
        return job

    cdef void _rule(self, Job job, bytes name, bytes value, bint absent) except *:
        cdef int i = job.nrules
        job.keep.append(name)
        job.keep.append(value)
        job.names[i] = PyBytes_AS_STRING(name)
        job.name_len[i] = PyBytes_GET_SIZE(name)
        job.values[i] = PyBytes_AS_STRING(value)
        job.value_len[i] = PyBytes_GET_SIZE(value)
        job.absent[i] = absent
        job.nrules = i + 1

    def step(self, Job job, captures, bint keep_body, bint takes=True):
        """Make ``job`` a flow's step: the values of the header fields named in
        ``captures`` (lower-case bytes) are read from each response, and its body kept (up to
        64 KiB, framed by its Content-Length) when ``keep_body``. Its sender's journey then
        hears of each response it vouches for as
        ``following(status, captured, body, latency_us, reused)`` (``captured``: (index into
        ``captures``, value) for each such field, in order, or None), before it is counted,
        and answers with the next step's Job to send on the same connection, None (send
        nothing here), or False: it counted the response itself (as a failure), so the
        path must not. A step's Prepared, when the Python path takes one over, is the
        journey's ``prepared_now()``. False when it has more captures than compiled code holds."""
        if len(captures) > MAX_CAPTURES:
            return False
        job.step = True
        job.keep_body = keep_body
        job.takes = takes or keep_body
        job.ncaptures = 0
        for name in captures:
            job.keep.append(name)
            job.capture_names[job.ncaptures] = PyBytes_AS_STRING(name)
            job.capture_len[job.ncaptures] = PyBytes_GET_SIZE(name)
            job.ncaptures += 1
        return True

    def stop(self):
        """The sender has stopped: responses still to come are not counted."""
        self.stopped = True


# -- reading a response -----------------------------------------------------------------------


cdef class Reader:
    """One response read off the wire, as far as compiled code vouches for it.

    :meth:`feed` takes each read and says MORE (all of it taken, the response goes on),
    DONE (the response ended at ``pos``) or HANDOVER (llhttp must read it: ``prefix`` then
    the read from ``pos``). Nothing is refused here: whatever is not vouched for, invalid
    included, is llhttp's to judge, so that errors are its own, word for word."""

    cdef int state
    cdef readonly int status
    cdef readonly bint keep_alive
    cdef readonly bint met  # the head met the job's expectation
    cdef readonly long long body_size
    cdef readonly Py_ssize_t pos
    cdef readonly bytes prefix
    cdef bint is_head, follow
    cdef long long remaining, drain_limit, max_head
    cdef Job job
    cdef bytearray headbuf  # a head that came in more than one read
    cdef object src  # the bytes the head is in, from head_at, head_len long
    cdef Py_ssize_t head_at, head_len
    cdef unsigned char line[LINE_CAP]
    cdef int linelen
    cdef readonly list captured  # a step's: (capture index, value) of each field read
    cdef readonly bytearray body  # a step's body, when it keeps it

    def __init__(self, long long drain_limit=1 << 62, bint follow=False,
                 long long max_head=MAX_HEAD):
        self.drain_limit = drain_limit
        self.follow = follow
        self.max_head = max_head  # at most MAX_HEAD

    cdef void start(self, Job job) noexcept:
        self.job = job
        self.is_head = job.is_head
        self.state = R_HEAD
        self.headbuf = None
        self.src = None
        self.body_size = 0
        self.linelen = 0
        self.status = 0
        self.captured = None
        self.body = bytearray() if job.keep_body else None

    @property
    def started(self):
        """Whether any byte of the response is in."""
        return self.state != R_HEAD or self.headbuf is not None

    @property
    def in_body(self):
        """Whether the head is complete and the body is being read."""
        return self.state != R_HEAD

    cdef bytes head_bytes(self):
        """The head (through its blank line), once complete; else what came of it."""
        if self.state == R_HEAD:
            return b"" if self.headbuf is None else bytes(self.headbuf)
        if self.head_at == 0 and self.head_len == PyBytes_GET_SIZE(self.src):
            return self.src
        return self.src[self.head_at:self.head_at + self.head_len]

    cdef int feed(self, bytes data, Py_ssize_t pos) except -1:
        """Read ``data`` from ``pos``; the event (see the class), with ``self.pos`` where it
        leaves off in ``data``."""
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef Py_ssize_t base = 0  # the caller's offset of our byte 0 (a joined head moves it)
        cdef Py_ssize_t r
        cdef int event
        if self.state == R_HEAD:
            if self.headbuf is not None:
                base = pos - len(self.headbuf)
                self.headbuf += data[pos:]
                data = bytes(self.headbuf)
                p = <const unsigned char *>PyBytes_AS_STRING(data)
                n = PyBytes_GET_SIZE(data)
                pos = 0
            r = self.head(p + pos, n - pos)
            if r == 0:
                if n - pos > self.max_head:
                    return self._hand_over(data, pos, n, base)
                if self.headbuf is None:
                    self.headbuf = bytearray(data[pos:])
                self.pos = n + base
                return MORE
            if r < 0:
                return self._hand_over(data, pos, n, base)
            self.headbuf = None
            self.src = data
            self.head_at = pos
            self.head_len = r
            pos += r
            if not self.met:
                return self._hand_over(data, self.head_at, n, base)
            if self.state == R_HEAD:  # no body
                self.pos = pos + base
                return DONE
        if self.state == R_LENGTH:
            if n - pos >= self.remaining:
                if self.body is not None:
                    self.body += data[pos:pos + self.remaining]
                self.pos = pos + self.remaining + base
                self.body_size += self.remaining
                self.remaining = 0
                return DONE
            if self.body is not None:
                self.body += data[pos:]
            self.remaining -= n - pos
            self.body_size += n - pos
            self.pos = n + base
            return MORE
        event = self.chunks(p, n, pos)
        self.pos += base
        if event == HANDOVER:
            self.prefix = self.head_bytes() + self.line[:self.linelen]
        return event

    cdef int _hand_over(self, bytes data, Py_ssize_t at, Py_ssize_t n,
                        Py_ssize_t base) except -1:
        """The response from its first byte (``at``) is llhttp's, all of this read with it."""
        if at == 0 and n == PyBytes_GET_SIZE(data):
            self.prefix = data
        else:
            self.prefix = data[at:n]
        self.pos = n + base
        self.state = R_HEAD
        self.headbuf = None
        return HANDOVER

    cdef Py_ssize_t head(self, const unsigned char *p, Py_ssize_t n) except? -2:
        """The length of a complete, plain head at ``p`` (its blank line included), with
        status, framing and keep-alive read and the job's expectation tested; 0 while it is
        not all in; -1 for a head compiled code does not vouch for (llhttp's to read).

        Plain here: at most 16 KiB, and no more than the head size limit; ``HTTP/1.1 DDD
        reason`` with a final status (200-599); every line ends CRLF; names are tokens with
        the colon right after; values are visible ASCII, SP and HTAB; one Content-Length of
        digits or ``Transfer-Encoding: chunked`` (not both; a HEAD's response has one of
        them too), or a 204 or 304; ``Connection`` only ``close`` or ``keep-alive``; no
        blank after those three values; no ``Proxy-Connection`` or ``Upgrade``. The
        differential tests against llhttp (tests/test_compiled_reader.py) hold it to
        agreeing with llhttp on all of these."""
        cdef const unsigned char *end
        cdef Py_ssize_t i, lend, colon, vs, ve, k, hlen
        cdef long long length = -1
        cdef bint chunked = False, seen_te = False
        cdef int r
        cdef int matched[MAX_RULES]
        cdef bint ok_value[MAX_RULES]
        cdef Job job = self.job
        # the blank line first: nothing is judged until the whole head is in
        i = 0
        while True:
            end = <const unsigned char *>memchr(p + i, 10, n - i)
            if end == NULL:
                return 0
            lend = end - p
            if lend == 0 or p[lend - 1] != 13:
                return -1  # a bare LF
            if lend >= 3 and p[lend - 2] == 10 and p[lend - 3] == 13:
                hlen = lend + 1
                break
            i = lend + 1
        if hlen > self.max_head:
            return -1  # however it arrived: the verdict must not depend on the reads
        # the status line
        if hlen < 17 or memcmp(p, b"HTTP/1.1 ", 9) != 0 or p[12] != 32:
            return -1
        if not (50 <= p[9] <= 53 and 48 <= p[10] <= 57 and 48 <= p[11] <= 57):
            return -1  # 200-599 only: interim and odd statuses are llhttp's
        self.status = (p[9] - 48) * 100 + (p[10] - 48) * 10 + (p[11] - 48)
        i = 13
        while p[i] != 13:
            if not VALUE[p[i]]:
                return -1
            i += 1
        if p[i + 1] != 10:
            return -1  # a CR inside the line
        i += 2
        self.keep_alive = True
        for r in range(job.nrules):
            matched[r] = 0
            ok_value[r] = False
        # the fields
        while i < hlen - 2:
            end = <const unsigned char *>memchr(p + i, 10, hlen - i)
            lend = end - p  # its LF; the CR before it is checked above
            colon = i
            while TCHAR[p[colon]]:
                colon += 1
            if colon == i or p[colon] != 58:
                return -1  # not a token, a blank before the colon, or a folded line
            vs = colon + 1
            while p[vs] == 32 or p[vs] == 9:
                vs += 1
            ve = lend - 1
            while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
                ve -= 1
            for k in range(vs, ve):
                if not VALUE[p[k]]:
                    return -1
            if self._framing(p + i, colon - i, p + vs, ve - vs, ve != lend - 1, &length,
                             &chunked, &seen_te) < 0:
                return -1
            for r in range(job.nrules):
                if same_name(p + i, colon - i, job.names[r], job.name_len[r]):
                    matched[r] += 1
                    ok_value[r] = (ve - vs == job.value_len[r]
                                   and memcmp(p + vs, job.values[r], ve - vs) == 0)
            for r in range(job.ncaptures):
                if same_name(p + i, colon - i, job.capture_names[r], job.capture_len[r]):
                    if self.captured is None:
                        self.captured = []
                    self.captured.append(
                        (r, PyBytes_FromStringAndSize(<const char *>p + vs, ve - vs)))
            i = lend + 1
        if seen_te and length >= 0:
            return -1  # both framings: llhttp's to refuse
        self.met = job.any_status or job.statuses[self.status]
        if self.follow and self.status in (301, 302, 303, 307, 308):
            self.met = False  # a redirect to follow is the Python path's
        for r in range(job.nrules):
            if job.absent[r]:
                self.met = self.met and matched[r] == 0
            else:
                self.met = self.met and matched[r] == 1 and ok_value[r]
        if self.status == 204 or self.status == 304 or (
                self.is_head and (chunked or length >= 0)):
            self.state = R_HEAD  # the message ends with its head
        elif self.is_head:
            return -1  # no framing: llhttp would wait for the close, and keep-alive is its
        elif chunked:
            if job.keep_body:
                return -1  # a body kept is one framed by its length: the Python path's
            self.state = R_SIZE
            self.linelen = 0
        elif length >= 0:
            if length > self.drain_limit or (job.keep_body and length > KEEP_MOST):
                return -1  # the Python path reads what it may and closes it undrained
            self.state = R_LENGTH
            self.remaining = length
        else:
            return -1  # delimited by the close: the Python path's
        return hlen

    cdef int _framing(self, const unsigned char *name, Py_ssize_t nl, const unsigned char *v,
                      Py_ssize_t vl, bint trailing_blank, long long *length, bint *chunked,
                      bint *seen_te) noexcept:
        """Read a field that frames the message or decides keep-alive; -1: not vouched (a
        blank after such a value is too: llhttp reads some of them as part of it)."""
        cdef Py_ssize_t k
        cdef long long cl = 0
        if trailing_blank and (
                same_name(name, nl, b"content-length", 14)
                or same_name(name, nl, b"transfer-encoding", 17)
                or same_name(name, nl, b"connection", 10)):
            return -1
        if same_name(name, nl, b"content-length", 14):
            if length[0] >= 0 or vl == 0 or vl > 15:
                return -1
            for k in range(vl):
                if not 48 <= v[k] <= 57:
                    return -1
                cl = cl * 10 + (v[k] - 48)
            length[0] = cl
        elif same_name(name, nl, b"transfer-encoding", 17):
            if seen_te[0] or not same_name(v, vl, b"chunked", 7):
                return -1
            seen_te[0] = True
            chunked[0] = True
        elif same_name(name, nl, b"connection", 10):
            if same_name(v, vl, b"close", 5):
                self.keep_alive = False
            elif not same_name(v, vl, b"keep-alive", 10):
                return -1
        elif same_name(name, nl, b"proxy-connection", 16) or same_name(name, nl, b"upgrade", 7):
            return -1
        return 0

    cdef int chunks(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t pos) noexcept:
        """Read a chunked body from ``pos``. A chunk-size line vouched for is 1-15 hex digits
        and CRLF, and the end exactly ``0`` CRLF CRLF; any other line (extensions, trailers) is
        handed over from its first byte, as is a chunk that would pass the drain limit."""
        cdef Py_ssize_t take
        cdef unsigned char c
        cdef long long size
        cdef int k
        while pos < n:
            if self.state == R_DATA:
                take = n - pos
                if take >= self.remaining:
                    pos += self.remaining
                    self.body_size += self.remaining
                    self.remaining = 0
                    self.state = R_DATA_CR
                else:
                    self.remaining -= take
                    self.body_size += take
                    pos = n
            elif self.state == R_DATA_CR:
                if p[pos] != 13:
                    return self._after_data(pos, b"1\r\nx")
                pos += 1
                self.state = R_DATA_LF
            elif self.state == R_DATA_LF:
                if p[pos] != 10:
                    return self._after_data(pos, b"1\r\nx\r")
                pos += 1
                self.state = R_SIZE
                self.linelen = 0
            else:  # R_SIZE: gather the line
                c = p[pos]
                if self.linelen == LINE_CAP:
                    self.pos = pos
                    return HANDOVER
                self.line[self.linelen] = c
                self.linelen += 1
                pos += 1
                if c != 10:
                    continue
                if self.linelen == 5 and memcmp(self.line, b"0\r\n\r\n", 5) == 0:
                    self.pos = pos
                    self.state = R_HEAD
                    return DONE
                if self.linelen == 3 and memcmp(self.line, b"0\r\n", 3) == 0:
                    continue  # the last chunk: its CRLF (no trailers) must follow
                size = 0
                if self.linelen < 3 or self.line[self.linelen - 2] != 13:
                    return self._line_over(pos)
                if self.linelen > 17:
                    return self._line_over(pos)  # past 15 hex digits: llhttp judges overflow
                for k in range(self.linelen - 2):
                    if not HEX[self.line[k]]:
                        return self._line_over(pos)
                    size = size * 16 + HEX[self.line[k]] - 1
                if size == 0 or self.body_size + size > self.drain_limit:
                    return self._line_over(pos)
                self.remaining = size
                self.state = R_DATA
                self.linelen = 0
        self.pos = pos
        return MORE

    cdef int _line_over(self, Py_ssize_t pos) noexcept:
        """Hand over from the start of the chunk-size line in ``line``: the read goes on at
        ``pos``, after it."""
        self.pos = pos
        return HANDOVER

    cdef int _after_data(self, Py_ssize_t pos, const char *replay) noexcept:
        """A chunk's data not followed by CRLF: llhttp is to say what is wrong, in its own
        words, so it is handed the head, a one-byte chunk standing for the data read (and the
        CR, if that came) and the read from the byte in question."""
        cdef int k = 0
        while replay[k]:
            self.line[k] = replay[k]
            k += 1
        self.linelen = k
        self.body_size -= 1  # the stand-in byte, which llhttp counts again
        self.pos = pos
        return HANDOVER


def read_response(list reads, bint is_head=False, long long drain_limit=1 << 62):
    """Feed ``reads`` (the pieces a response arrives in) to a :class:`Reader` and say how it
    went: ``("done", status, keep_alive, body_size, end)`` with ``end`` the offset just past
    the response in the reads joined; ``("handover", prefix, rest_offset, body_size)``:
    llhttp reads ``prefix`` then the joined reads from ``rest_offset``, ``body_size`` bytes
    of body already read; ``("more",)``. For the differential tests against llhttp."""
    cdef Reader reader = Reader(drain_limit)
    cdef Job job = Job()
    cdef Py_ssize_t offset = 0
    cdef int event
    job.any_status = True
    job.is_head = is_head
    reader.start(job)
    for data in reads:
        event = reader.feed(data, 0)
        if event == DONE:
            return ("done", reader.status, reader.keep_alive, reader.body_size,
                    offset + reader.pos)
        if event == HANDOVER:
            return ("handover", reader.prefix, offset + reader.pos, reader.body_size)
        offset += len(data)
    return ("more",)


# -- the connection ---------------------------------------------------------------------------


cdef class Wire:
    """The asyncio protocol of a connection on a compiled send path (see the module's
    docstring). ``conn`` is the connection's own Python side: every event it does not take
    over goes there unchanged."""

    cdef object conn
    cdef Path path
    cdef Reader reader
    cdef object transport
    cdef object _write
    cdef object journey
    cdef Job job
    cdef bint inflight
    cdef bint reused
    cdef long long carried  # requests this connection carried (conn.requests once synced)
    cdef long long unsynced  # of which the Python side has not heard
    cdef int64_t started, deadline, due
    cdef int64_t latency_from  # what latency is measured from: the send, or when it was due
    cdef bint repeat  # send the cycle's next request when one is done (closed model)
    cdef int phase
    cdef Cursor cursor  # a flow's user's, when the journey is one

    def __init__(self, conn, Path path):
        self.conn = conn
        self.path = path
        self.reader = Reader(path.drain_limit, path.follow, path.max_head)
        self.inflight = False

    # -- asyncio.Protocol: forwarded, unless a request of ours is in flight ------------------

    def connection_made(self, transport):
        self.transport = transport
        self._write = transport.write
        self.conn.connection_made(transport)

    def data_received(self, bytes data):
        if self.inflight:
            self._read(data)
        else:
            self.conn.data_received(data)

    def eof_received(self):
        return self.conn.eof_received()

    def connection_lost(self, exc):
        if self.inflight:
            self._adopt()
        self.conn.connection_lost(exc)

    def pause_writing(self):
        self.conn.pause_writing()

    def resume_writing(self):
        self.conn.resume_writing()

    # -- the send path's side -------------------------------------------------------------

    def start(self, journey, Job job, bint repeat):
        """Send ``job`` for ``journey`` on this idle connection; its latency is measured from
        ``journey.started`` (perf_counter seconds). With ``repeat``, go on sending the path's
        cycle from here while each response is vouched for, each latency from its send;
        without, the time from this send is counted as the service time. The journey hears
        of a response counted here through ``counted`` (see :class:`Journey`)."""
        cdef int64_t now = now_ns()
        cdef object cursor = journey.cursor
        self.conn.wire_started()
        self.journey = journey
        self.cursor = cursor if isinstance(cursor, Cursor) else None
        self.carried = self.conn.requests
        self.repeat = repeat
        self._send(job, now)
        self.latency_from = <int64_t>(journey.started * 1e9)

    def expire(self):
        """End the request in flight (handed to the Python path) if its deadline passed."""
        if self.inflight and self.due and now_ns() >= self.due:
            self._adopt()
            self.conn.wire_expired()

    cdef void _send(self, Job job, int64_t now) except *:
        cdef Path path = self.path
        self.job = job
        self.inflight = True
        self.reused = self.carried > 0
        self.carried += 1
        self.unsynced += 1
        self.started = now
        self.latency_from = now
        self.deadline = now + path.timeout_ns if path.timeout_ns else 0
        self.due = due_after_ns(SENT, now, self.deadline, path.header_timeout_ns,
                                path.drain_timeout_ns, &self.phase)
        self.reader.start(job)
        self._write(job.head)

    cdef void _read(self, bytes data) except *:
        cdef Reader reader = self.reader
        cdef Py_ssize_t pos = 0, n = PyBytes_GET_SIZE(data)
        cdef int event
        while True:
            event = reader.feed(data, pos)
            pos = reader.pos
            if event == MORE:
                break
            if event == HANDOVER:
                self._hand_over(reader.prefix, data, pos)
                return
            # DONE
            if not self._done(data, pos):
                return
            if pos == n:
                return
        if reader.in_body and self.phase != DRAIN:
            self._body_goes_on()

    cdef void _body_goes_on(self) except *:
        """As the Python path does: a body that runs on past the read its head came in has
        the drain timeout from now on, and the header timeout no longer applies."""
        cdef Path path = self.path
        cdef int64_t now = now_ns() if path.drain_timeout_ns else 0
        self.due = due_after_ns(BODY, now, self.deadline, path.header_timeout_ns,
                                path.drain_timeout_ns, &self.phase)

    cdef bint _done(self, bytes data, Py_ssize_t pos) except *:
        """The response is whole: count it, then send the next request here when the cycle
        has one for this connection; else give the connection back (or close it) and let
        the journey go on. True while this wire has a request in flight again."""
        cdef Path path = self.path
        cdef Cycle cycle = path.cycle
        cdef Job job = self.job
        cdef object obj
        cdef int64_t now = now_ns()
        cdef Py_ssize_t i = -1
        cdef object following = None
        self.inflight = False
        if path.stopped:
            self._release()  # the sender has stopped: what is in flight is abandoned
            return False
        if job.step:
            following = self._step_here(job)
            if following is None:
                following = self._following(now)
        if following is not False:
            path.counts.record(job.slot, self.reader.status, self.reused,
                               (now - self.latency_from) // 1000)
            if not self.repeat:
                path.counts.record_service((now - self.started) // 1000)
        if job.step:
            return self._step_on(following, data, pos, now)
        if not self.reader.keep_alive:
            self.conn.wire_closing(self.unsynced)
            self.unsynced = 0
            self._carry_on(None, data, pos)
            return self.inflight
        if cycle is not None and self.repeat:
            i = cycle.take()
            if i >= 0:
                obj = cycle.jobs[i]
                if obj is not None and (<Job>obj).key is job.key:
                    self._send(<Job>obj, now)
                    return True
        self._release()
        self._carry_on(cycle.tokens[i] if i >= 0 else None, data, pos)
        return self.inflight

    cdef object _step_here(self, Job job):
        """The next step of a flow's user, when the path follows this one itself (see
        Cursor): its response's captures taken here (or none to take), on a connection that
        stays open."""
        cdef Cursor cursor = self.cursor
        if cursor is None or not self.reader.keep_alive:
            return None
        cursor.took = False
        if job.takes or self.reader.captured is not None:
            if not cursor.take(job, self.reader):
                return None
        return cursor.next_here(job)

    cdef object _following(self, int64_t now):
        """A step's sender hears of its response (see Path.step); an exception there is
        its own failure, and nothing more is sent here."""
        cdef Reader reader = self.reader
        try:
            return self.journey.following(
                reader.status, reader.captured,
                None if reader.body is None else bytes(reader.body),
                (now - self.latency_from) // 1000, self.reused)
        except BaseException as exc:
            self.journey.failed(exc)
            return False

    cdef bint _step_on(self, following, bytes data, Py_ssize_t pos, int64_t now) except *:
        """After a step: send the next one here when the sender gave one for this
        connection, else give the connection back and let the journey go on."""
        if not self.reader.keep_alive:
            self.conn.wire_closing(self.unsynced)
            self.unsynced = 0
        elif (isinstance(following, Job) and (<Job>following).key is self.job.key
              and not self.path.stopped):
            self._send(<Job>following, now)
            return True
        else:
            self._release()
        self._carry_on(None, data, pos)
        return self.inflight

    cdef void _release(self) except *:
        self.conn.wire_released(self.unsynced)
        self.unsynced = 0

    cdef void _carry_on(self, token, bytes data, Py_ssize_t pos) except *:
        """The journey goes on on the Python side (which may start this wire again); bytes
        left in the read are then whoever's is reading them."""
        try:
            self.journey.counted(token)
        except BaseException as exc:
            self.journey.failed(exc)
        if not self.inflight and pos < PyBytes_GET_SIZE(data):
            self.conn.data_received(data[pos:])

    cdef void _hand_over(self, bytes prefix, bytes data, Py_ssize_t pos) except *:
        """llhttp reads the response from here: ``prefix`` (the response from its first
        byte, or its head and a chunk-size line) and the read from ``pos``."""
        cdef long long body_size = self.reader.body_size
        self._adopt(SENT, body_size)
        self.conn.data_received(prefix + data[pos:] if pos < PyBytes_GET_SIZE(data) else prefix)

    cdef void _adopt(self, int stage=-1, long long body_size=-1) except *:
        """Hand the request in flight to the Python side, as it stands (or, with ``stage``,
        as a request with nothing read yet)."""
        cdef Reader reader = self.reader
        cdef Job job = self.job
        cdef int64_t now = now_ns()
        cdef double loop_now = self.path.loop_time()
        cdef double deadline = loop_now + (self.deadline - now) / 1e9 if self.deadline else 0.0
        cdef double due = loop_now + (self.due - now) / 1e9 if self.due else 0.0
        self.inflight = False
        if stage < 0:
            stage = BODY if reader.in_body else (HEAD if reader.started else SENT)
            body_size = reader.body_size
        # A flow's step was sent as its bytes: its Prepared is made now, as it was filled.
        prep = self.journey.prepared_now() if job.step else job.prep
        handover = Handover(
            prep, self.unsynced, self.reused, self.latency_from / 1e9, self.started / 1e9,
            deadline, due,
            PHASES[self.phase], STAGES[stage], reader.status if stage == BODY else 0,
            reader.head_bytes() if stage != SENT else b"", body_size)
        self.path.adopt(self.conn, self.journey, handover)
        self.unsynced = 0


include "_flowstep.pxi"
include "_hpack.pxi"
include "_h2wire.pxi"
