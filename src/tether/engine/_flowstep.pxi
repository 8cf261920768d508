# A flow's steps on the compiled path (included in _compiled.pyx): where a virtual user is
# (Cursor), what its run may still start (Budget), and what a step's response gives, taken
# here when compiled code can be sure of every value: a top-level JSON member, a header
# field, the status, and cookies of the plain kind (host-only, path "/", no expiry). Whatever
# it cannot be sure of is its sender's to take (tether.flow.captures, tether.flow.cookies:
# the rules; the differential tests in tests/test_flowstep.py hold this to them).

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE

DEF J_DEPTH = 64  # nesting read here; deeper documents are the sender's
DEF J_DIGITS = 4000  # longer integers are refused by int() (sys.int_info's limit): the sender's
DEF JAR_MOST = 16  # cookies a user's jar holds here; more are the sender's jar's
DEF COOKIE_MOST = 4096  # as tether.flow.cookies: a longer name and value is refused

# what a take reads (the first item of each of Job.quick_takes): a capture source's index in
TAKES = ("json", "header", "status", "cookie")
DEF T_JSON = 0
DEF T_HEADER = 1
DEF T_STATUS = 2
DEF T_COOKIE = 3
# where a value goes (tether.engine.splice.Where): percent-encoded in a target, or a header's
DEF W_TARGET = 0
DEF W_HEADER = 1

cdef unsigned char OCTET[256]  # RFC 6265 cookie-octet


cdef void _cookie_table() noexcept:
    cdef int c
    for c in range(256):
        OCTET[c] = c == 0x21 or 0x23 <= c <= 0x2B or 0x2D <= c <= 0x3A or (
            0x3C <= c <= 0x5B) or 0x5D <= c <= 0x7E


_cookie_table()


# -- JSON, as json.loads reads it ------------------------------------------------------------
# Each returns the index after what it read, or -1: not JSON, or not what is read here
# (anything outside ASCII, NaN and Infinity, very deep or very long): the sender's either way.

cdef inline int _at(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    return p[i] if i < n else -1


cdef inline Py_ssize_t _ws(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and (p[i] == 32 or p[i] == 9 or p[i] == 10 or p[i] == 13):
        i += 1
    return i


cdef Py_ssize_t _jstring(const unsigned char *p, Py_ssize_t i, Py_ssize_t n,
                         bint *escaped) noexcept:
    cdef unsigned char c
    cdef int k
    i += 1  # the opening quote
    while i < n:
        c = p[i]
        if c == 34:
            return i + 1
        if c < 32 or c >= 128:
            return -1  # a control character (json.loads is strict) or not ASCII
        if c == 92:
            escaped[0] = True
            if i + 1 >= n:
                return -1
            c = p[i + 1]
            if c == 117:  # \uXXXX
                if i + 5 >= n:
                    return -1
                for k in range(2, 6):
                    if not HEX[p[i + k]]:
                        return -1
                i += 6
                continue
            if c not in b'"\\/bfnrt':
                return -1
            i += 2
            continue
        i += 1
    return -1


cdef Py_ssize_t _jdigits(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and 48 <= p[i] <= 57:
        i += 1
    return i


cdef Py_ssize_t _jnumber(const unsigned char *p, Py_ssize_t i, Py_ssize_t n,
                         bint *integer) noexcept:
    cdef Py_ssize_t start, end
    if _at(p, i, n) == 45:  # -
        i += 1
    start = i
    if _at(p, i, n) == 48:  # 0
        i += 1
    elif 49 <= _at(p, i, n) <= 57:
        i = _jdigits(p, i, n)
        if i - start > J_DIGITS:
            return -1
    else:
        return -1
    integer[0] = True
    if _at(p, i, n) == 46:  # .
        end = _jdigits(p, i + 1, n)
        if end == i + 1:
            return -1
        i = end
        integer[0] = False
    if _at(p, i, n) == 101 or _at(p, i, n) == 69:  # e E
        i += 1
        if _at(p, i, n) == 43 or _at(p, i, n) == 45:
            i += 1
        end = _jdigits(p, i, n)
        if end == i:
            return -1
        i = end
        integer[0] = False
    return i


cdef Py_ssize_t _jword(const unsigned char *p, Py_ssize_t i, Py_ssize_t n,
                       const char *word, Py_ssize_t size) noexcept:
    if i + size > n or memcmp(p + i, word, size) != 0:
        return -1
    return i + size


cdef Py_ssize_t _jvalue(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, int depth) noexcept:
    cdef bint flag = False
    cdef int c = _at(p, i, n)
    if c == 34:
        return _jstring(p, i, n, &flag)
    if c == 123 or c == 91:
        return _jcontainer(p, i, n, depth + 1)
    if c == 116:
        return _jword(p, i, n, b"true", 4)
    if c == 102:
        return _jword(p, i, n, b"false", 5)
    if c == 110:
        return _jword(p, i, n, b"null", 4)
    return _jnumber(p, i, n, &flag)


cdef Py_ssize_t _jcontainer(const unsigned char *p, Py_ssize_t i, Py_ssize_t n,
                            int depth) noexcept:
    cdef bint flag = False
    cdef bint is_object = p[i] == 123
    cdef int close = 125 if is_object else 93
    if depth > J_DEPTH:
        return -1
    i = _ws(p, i + 1, n)
    if _at(p, i, n) == close:
        return i + 1
    while True:
        if is_object:
            if _at(p, i, n) != 34:
                return -1
            i = _ws(p, _jstring(p, i, n, &flag), n)
            if i < 0 or _at(p, i, n) != 58:  # :
                return -1
            i = _ws(p, i + 1, n)
        i = _jvalue(p, i, n, depth)
        if i < 0:
            return -1
        i = _ws(p, i, n)
        if _at(p, i, n) == 44:  # ,
            i = _ws(p, i + 1, n)
        elif _at(p, i, n) == close:
            return i + 1
        else:
            return -1


cdef bint _json_member(const unsigned char *p, Py_ssize_t n, const unsigned char *key,
                       Py_ssize_t klen, Py_ssize_t *vs, Py_ssize_t *ve) noexcept:
    """Whether ``p`` is a JSON document whose top-level object's last member named ``key``
    is what ``$.key`` captures as its own text (tether.flow.captures.json_value): a string
    without escapes (its content at vs..ve), an integer or true or false. False is not a
    miss: the sender judges whatever is not found here."""
    cdef Py_ssize_t i = _ws(p, 0, n), ks, start
    cdef bint escaped, integer, good
    cdef int found = 0  # 1: the last one named ``key`` is taken here; -1: it is the sender's
    cdef bint odd_key = False
    cdef int c
    if _at(p, i, n) != 123:
        return False
    i = _ws(p, i + 1, n)
    if _at(p, i, n) == 125:
        return False  # {}: nothing to take
    while True:
        if _at(p, i, n) != 34:
            return False
        ks = i + 1
        escaped = False
        i = _jstring(p, i, n, &escaped)
        if i < 0:
            return False
        odd_key = odd_key or escaped  # a name with escapes may be ``key`` decoded
        mine = not escaped and i - 1 - ks == klen and memcmp(p + ks, key, klen) == 0
        i = _ws(p, i, n)
        if _at(p, i, n) != 58:
            return False
        i = _ws(p, i + 1, n)
        start = i
        c = _at(p, i, n)
        good = False
        if c == 34:
            escaped = False
            i = _jstring(p, i, n, &escaped)
            good = not escaped
            if mine and good:
                vs[0], ve[0] = start + 1, i - 1
        else:
            if c == 116 or c == 102:
                i = _jvalue(p, i, n, 1)
                good = True
            elif c == 45 or 48 <= c <= 57:
                integer = False
                i = _jnumber(p, i, n, &integer)
                # -0 is 0 once read (json.dumps writes "0")
                good = integer and not (i - start == 2 and p[start] == 45)
            else:
                i = _jvalue(p, i, n, 1)
            if mine and good:
                vs[0], ve[0] = start, i
        if i < 0:
            return False
        if mine:
            found = 1 if good else -1
        i = _ws(p, i, n)
        c = _at(p, i, n)
        if c == 44:
            i = _ws(p, i + 1, n)
        elif c == 125:
            break
        else:
            return False
    return _ws(p, i + 1, n) == n and found == 1 and not odd_key


def json_member(bytes body, bytes key):
    """The value ``$.<key>`` captures from ``body`` as compiled code takes it, or None when
    it leaves the body to the sender (for tests: see :func:`_json_member`)."""
    cdef Py_ssize_t vs = 0, ve = 0
    if not _json_member(<const unsigned char *>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body),
                        <const unsigned char *>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key),
                        &vs, &ve):
        return None
    return body[vs:ve]


cdef object _json_take(bytearray body, bytes key):
    cdef Py_ssize_t vs = 0, ve = 0
    cdef const unsigned char *p = <const unsigned char *>PyByteArray_AS_STRING(body)
    if not _json_member(p, PyByteArray_GET_SIZE(body),
                        <const unsigned char *>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key),
                        &vs, &ve):
        return None
    return PyBytes_FromStringAndSize(<const char *>p + vs, ve - vs)


# -- cookies ---------------------------------------------------------------------------------

def simple_cookie(bytes text, bint root_path):
    """For tests: see :func:`_simple_cookie`."""
    return _simple_cookie(text, root_path)


cdef object _simple_cookie(bytes text, bint root_path):
    """(name, value) of a Set-Cookie value that sets a plain cookie: ``name=value`` of
    token and cookie-octets, with no attributes but ``Path=/``, ``HttpOnly``, ``SameSite``
    (no Path: only for a request whose default path is "/", ``root_path``). Such a cookie is
    host-only, of path "/", a session's and not Secure, so every request to its host carries
    it. None for any other: the sender's jar reads it."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(text)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(text), i = 0, name_end, vs, ve, a, ae, g
    cdef bint has_path = False
    while i < n and TCHAR[p[i]]:
        i += 1
    if i == 0 or _at(p, i, n) != 61:  # =
        return None
    name_end = i
    vs = i = i + 1
    while i < n and OCTET[p[i]]:
        i += 1
    ve = i
    if name_end + ve - vs > COOKIE_MOST:
        return None
    while i < n:
        if p[i] != 59:  # ;
            return None
        i = a = _ws(p, i + 1, n)
        while i < n and p[i] != 59 and p[i] != 61:
            i += 1
        ae = i
        while ae > a and (p[ae - 1] == 32 or p[ae - 1] == 9):
            ae -= 1
        g = i
        if _at(p, i, n) == 61:
            g = i = _ws(p, i + 1, n)
            while i < n and p[i] != 59:
                i += 1
        if _attribute(p + a, ae - a, p + g, i - g, &has_path) < 0:
            return None
    if not (has_path or root_path):
        return None
    return text[:name_end], text[vs:ve]


cdef int _attribute(const unsigned char *name, Py_ssize_t nl, const unsigned char *arg,
                    Py_ssize_t al, bint *has_path) noexcept:
    """0 for an attribute a plain cookie may have (an empty one is ignored, as RFC 6265
    5.2 ignores unknown ones); -1 for any other."""
    while al > 0 and (arg[al - 1] == 32 or arg[al - 1] == 9):
        al -= 1
    if nl == 0 or same_name(name, nl, b"httponly", 8) or same_name(name, nl, b"samesite", 8):
        return 0
    if same_name(name, nl, b"path", 4) and al == 1 and arg[0] == 47:
        has_path[0] = True
        return 0
    return -1


# -- where values go ------------------------------------------------------------------------

cdef object _placed(bytes value, int where):
    """``value`` as a hole at ``where`` takes it (tether.run.flows._encoded): percent-encoded
    outside visible ASCII in a target; in a header, None when it holds a control character."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(value)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value), i
    cdef bytearray out
    cdef unsigned char c
    if where == W_HEADER:
        for i in range(n):
            c = p[i]
            if (c < 32 and c != 9) or c == 127:
                return None
        return value
    for i in range(n):
        if not 0x21 <= p[i] <= 0x7E:
            break
    else:
        return value
    out = bytearray()
    for i in range(n):
        c = p[i]
        if 0x21 <= c <= 0x7E:
            out.append(c)
        else:
            out += b"%%%02X" % c
    return bytes(out)


def placed(bytes value, int where):
    """For tests: see :func:`_placed` (``where``: 0 a target, 1 a header)."""
    return _placed(value, where)


# -- a user and its run ---------------------------------------------------------------------

cdef class Budget:
    """What a flow run may still start, shared by its users' cursors (and the Python side's
    FlowRun): requests to reserve and iterations to start (-1: no count), iterations
    started (numbered ``first + started * every``), whether it stopped, and the iterations
    the cursors began again themselves, ``completed`` or ``failed``, for the sender to count."""

    cdef public long long requests, iterations, started, first, every, completed, failed
    cdef public bint stopped

    def __init__(self, long long requests, long long iterations, long long first,
                 long long every):
        self.requests, self.iterations = requests, iterations
        self.first, self.every = first, every
        self.started = self.completed = self.failed = 0
        self.stopped = False


cdef class Cursor:
    """Where a flow's virtual user is, as the compiled path sees it: its steps' jobs (None
    for one only its sender sends), the step in flight (``pos``), how many of them the
    iteration may send (``reserved``), and its ``slots``: bytes its jobs' :attr:`Job.parts`
    name (None: a value that cannot be sent). A step's response is followed by the next step
    here, filled from the slots, when the step's captures and cookies can be taken here
    (``took``); else the sender hears ``following``.

    The values taken here wait in ``taken`` (by the run's variable index) and the cookies in
    ``jar`` ((name, value), in creation order, while ``jar_on``; their Cookie line goes to
    every slot of ``cookie_slots``) until the sender takes them in. With a ``budget``, the
    cursor begins the next iteration itself at the flow's end: the slots as ``start`` has
    them, ``generation`` and ``iteration`` moved on; ``broken`` says a step failed."""

    cdef public list jobs
    cdef public list slots
    cdef public Py_ssize_t pos
    cdef public Py_ssize_t reserved
    cdef public list taken
    cdef public list jar
    cdef public bint jar_on, jar_allowed, took, broken
    cdef public list cookie_slots
    cdef public Budget budget
    cdef public list start
    cdef public long long generation, iteration

    def __init__(self):
        self.jobs = []
        self.slots = []
        self.pos = 0
        self.reserved = 0
        self.taken = []
        self.jar = []
        self.jar_on = self.jar_allowed = self.took = self.broken = False
        self.cookie_slots = []
        self.budget = None
        self.start = None
        self.generation = self.iteration = 0

    cdef Job next_here(self, Job done):
        """The next step, filled, when the path may send it itself right after ``done``
        (on the same connection); None otherwise."""
        cdef Py_ssize_t at = self.pos + 1
        cdef Py_ssize_t steps = len(self.jobs)
        cdef Job job
        if at >= self.reserved or at >= steps:
            if self.budget is not None and at == self.reserved == steps:
                return self._again(done)
            return None
        job = self._filled(at, done, self.slots)
        if job is not None:
            self.pos = at
        return job

    cdef Job _filled(self, Py_ssize_t at, Job done, list slots):
        cdef object obj = self.jobs[at]
        cdef Job job
        cdef bytes head
        if obj is None:
            return None
        job = <Job>obj
        if job.parts is None or job.key is not done.key:
            return None
        head = _filled(job.parts, slots)
        if head is None:
            return None
        job.head = head
        return job

    cdef Job _again(self, Job done):
        """The flow's first step of a new iteration, when the budget lets one start here."""
        cdef Budget budget = self.budget
        cdef Py_ssize_t steps = len(self.jobs)
        cdef Job job
        if self.start is None or budget.stopped or budget.iterations == 0 or (
                0 <= budget.requests < steps):
            return None  # (a short reservation is the sender's: it gives back what is unsent)
        job = self._filled(0, done, self.start)
        if job is None:
            return None
        if budget.requests > 0:
            budget.requests -= steps
        if budget.iterations > 0:
            budget.iterations -= 1
        if self.broken:
            budget.failed += 1
        else:
            budget.completed += 1
        self.iteration = budget.first + budget.started * budget.every
        budget.started += 1
        self.generation += 1
        self.slots = list(self.start)
        self.taken = [None] * len(self.taken)
        self.jar = []
        self.jar_on = self.jar_allowed
        self.broken = False
        self.pos = 0
        self.reserved = steps
        return job

    cdef bint take(self, Job job, Reader reader) except -1:
        """Take ``job``'s captures from the response ``reader`` read, and its cookies into
        the jar, when every one can be taken here; True then (``took``). Nothing is taken
        otherwise: its sender takes them all."""
        cdef list program = job.quick_takes
        cdef list cookies = []
        cdef list found = []
        cdef list puts
        cdef object value, placed
        cdef int kind, field, var, where, slot
        if program is None:
            return False
        if reader.captured is not None:
            for field, value in reader.captured:
                if field == job.cookie_field:
                    pair = _simple_cookie(value, job.root_path)
                    if pair is None:
                        return False
                    cookies.append(pair)
        if cookies and job.stores and (
                not self.jar_on or len(self.jar) + len(cookies) > JAR_MOST):
            return False  # the sender holds the jar now, or holds more cookies
        for kind, key, field, var, outs in program:
            value = _taken(kind, key, field, reader, cookies)
            if value is None:
                return False
            puts = []
            for slot, where in outs:
                placed = _placed(value, where)
                if placed is None:
                    return False
                puts.append((slot, placed))
            found.append((var, value, puts))
        for var, value, puts in found:
            self.taken[var] = value
            for slot, placed in puts:
                self.slots[slot] = placed
        if cookies and job.stores:
            self._store(cookies)
        self.took = True
        return True

    cdef int _store(self, list cookies) except -1:
        """Cookies into the jar (one of a name already held keeps its place: its creation
        time), and the jar's Cookie line into every cookie slot."""
        cdef list jar = self.jar
        cdef list line = []
        for name, value in cookies:
            for i in range(len(jar)):
                if jar[i][0] == name:
                    jar[i] = (name, value)
                    break
            else:
                jar.append((name, value))
        for name, value in jar:
            line.append(name + b"=" + value)
        cookie = b"Cookie: " + b"; ".join(line) + b"\r\n"
        for slot in self.cookie_slots:
            self.slots[slot] = cookie
        return 0


cdef object _taken(int kind, bytes key, int field, Reader reader, list cookies):
    """The value one take reads from the response, or None: the sender's to judge."""
    cdef object value = None
    if kind == T_STATUS:
        return b"%d" % reader.status
    if kind == T_JSON:
        return None if reader.body is None else _json_take(reader.body, key)
    if kind == T_COOKIE:
        for name, got in cookies:
            if name == key:
                value = got
        return value
    if reader.captured is None:
        return None
    for index, got in reader.captured:  # T_HEADER: one field (repeated ones are joined)
        if index == field:
            if value is not None:
                return None
            value = got
    return value
