# HPACK (RFC 7541) in compiled code: included into _compiled.pyx (one extension module).
#
# The decoder is on the hot path of every HTTP/2 response, so its C side (HpackDecoder.decode)
# makes no Python object and, once its buffers have grown to a connection's usual blocks, calls
# no malloc: strings are decoded into a buffer the decoder owns and reuses, the dynamic table
# is a ring of bytes allocated once, and Huffman codes are read 4 bits a step from a table
# built at module init. The encoder is for requests, whose blocks are made once and reused:
# it is stateless (no dynamic table), so a block is constant bytes.
#
# The C-level API used by _h2wire.pxi: HField, HpackDecoder (nfields, fields, list_size,
# over, error, decode) and hpack_encode. Its names and signatures are a contract.

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uintptr_t
from libc.stdlib cimport malloc


DEF HP_NSTATIC = 61  # entries in the static table (RFC 7541 Appendix A)
DEF HP_ENTRY_OVERHEAD = 32  # what an entry costs besides its bytes (RFC 7541 4.1)
DEF HP_INT_BITS = 32  # a larger integer is a compression error: nothing here is that big
DEF HP_MAX_SHIFT = 28  # continuation bytes past this shift cannot hold a 32-bit value
DEF HP_MAX_TABLE = 1 << 24  # the largest table a decoder allocates (advertised sizes are ours)
DEF HP_BUF_START = 4096  # the decoder's string buffer at first: a usual response block's
DEF HP_FIELDS_START = 32  # and its field list
DEF HP_BUF_SLACK = 4096  # doubling stops at max_list plus this (past it, only what is needed)

# hp_read_int's failures
DEF HP_TRUNCATED = -1
DEF HP_OVERLONG = -2

# hp_huffman_decode's failures (and HP_END's values)
DEF HP_EOS = -1
DEF HP_PAD_LONG = -2
DEF HP_PAD_BITS = -3


cdef extern from *:
    """
    /* RFC 7541 Appendix B: the Huffman code of each symbol (0-255, and 256: EOS), its bits
       right-aligned, and its length in bits. */
    typedef struct { unsigned int code; unsigned char bits; } hp_code;
    static const hp_code hp_huffman_codes[257] = {
    /*   0 */ {0x1ff8, 13}, {0x7fffd8, 23}, {0xfffffe2, 28}, {0xfffffe3, 28}, {0xfffffe4, 28},
    /*   5 */ {0xfffffe5, 28}, {0xfffffe6, 28}, {0xfffffe7, 28}, {0xfffffe8, 28}, {0xffffea, 24},
    /*  10 */ {0x3ffffffc, 30}, {0xfffffe9, 28}, {0xfffffea, 28}, {0x3ffffffd, 30}, {0xfffffeb, 28},
    /*  15 */ {0xfffffec, 28}, {0xfffffed, 28}, {0xfffffee, 28}, {0xfffffef, 28}, {0xffffff0, 28},
    /*  20 */ {0xffffff1, 28}, {0xffffff2, 28}, {0x3ffffffe, 30}, {0xffffff3, 28}, {0xffffff4, 28},
    /*  25 */ {0xffffff5, 28}, {0xffffff6, 28}, {0xffffff7, 28}, {0xffffff8, 28}, {0xffffff9, 28},
    /*  30 */ {0xffffffa, 28}, {0xffffffb, 28}, {0x14, 6}, {0x3f8, 10}, {0x3f9, 10},
    /*  35 */ {0xffa, 12}, {0x1ff9, 13}, {0x15, 6}, {0xf8, 8}, {0x7fa, 11},
    /*  40 */ {0x3fa, 10}, {0x3fb, 10}, {0xf9, 8}, {0x7fb, 11}, {0xfa, 8},
    /*  45 */ {0x16, 6}, {0x17, 6}, {0x18, 6}, {0x0, 5}, {0x1, 5},
    /*  50 */ {0x2, 5}, {0x19, 6}, {0x1a, 6}, {0x1b, 6}, {0x1c, 6},
    /*  55 */ {0x1d, 6}, {0x1e, 6}, {0x1f, 6}, {0x5c, 7}, {0xfb, 8},
    /*  60 */ {0x7ffc, 15}, {0x20, 6}, {0xffb, 12}, {0x3fc, 10}, {0x1ffa, 13},
    /*  65 */ {0x21, 6}, {0x5d, 7}, {0x5e, 7}, {0x5f, 7}, {0x60, 7},
    /*  70 */ {0x61, 7}, {0x62, 7}, {0x63, 7}, {0x64, 7}, {0x65, 7},
    /*  75 */ {0x66, 7}, {0x67, 7}, {0x68, 7}, {0x69, 7}, {0x6a, 7},
    /*  80 */ {0x6b, 7}, {0x6c, 7}, {0x6d, 7}, {0x6e, 7}, {0x6f, 7},
    /*  85 */ {0x70, 7}, {0x71, 7}, {0x72, 7}, {0xfc, 8}, {0x73, 7},
    /*  90 */ {0xfd, 8}, {0x1ffb, 13}, {0x7fff0, 19}, {0x1ffc, 13}, {0x3ffc, 14},
    /*  95 */ {0x22, 6}, {0x7ffd, 15}, {0x3, 5}, {0x23, 6}, {0x4, 5},
    /* 100 */ {0x24, 6}, {0x5, 5}, {0x25, 6}, {0x26, 6}, {0x27, 6},
    /* 105 */ {0x6, 5}, {0x74, 7}, {0x75, 7}, {0x28, 6}, {0x29, 6},
    /* 110 */ {0x2a, 6}, {0x7, 5}, {0x2b, 6}, {0x76, 7}, {0x2c, 6},
    /* 115 */ {0x8, 5}, {0x9, 5}, {0x2d, 6}, {0x77, 7}, {0x78, 7},
    /* 120 */ {0x79, 7}, {0x7a, 7}, {0x7b, 7}, {0x7ffe, 15}, {0x7fc, 11},
    /* 125 */ {0x3ffd, 14}, {0x1ffd, 13}, {0xffffffc, 28}, {0xfffe6, 20}, {0x3fffd2, 22},
    /* 130 */ {0xfffe7, 20}, {0xfffe8, 20}, {0x3fffd3, 22}, {0x3fffd4, 22}, {0x3fffd5, 22},
    /* 135 */ {0x7fffd9, 23}, {0x3fffd6, 22}, {0x7fffda, 23}, {0x7fffdb, 23}, {0x7fffdc, 23},
    /* 140 */ {0x7fffdd, 23}, {0x7fffde, 23}, {0xffffeb, 24}, {0x7fffdf, 23}, {0xffffec, 24},
    /* 145 */ {0xffffed, 24}, {0x3fffd7, 22}, {0x7fffe0, 23}, {0xffffee, 24}, {0x7fffe1, 23},
    /* 150 */ {0x7fffe2, 23}, {0x7fffe3, 23}, {0x7fffe4, 23}, {0x1fffdc, 21}, {0x3fffd8, 22},
    /* 155 */ {0x7fffe5, 23}, {0x3fffd9, 22}, {0x7fffe6, 23}, {0x7fffe7, 23}, {0xffffef, 24},
    /* 160 */ {0x3fffda, 22}, {0x1fffdd, 21}, {0xfffe9, 20}, {0x3fffdb, 22}, {0x3fffdc, 22},
    /* 165 */ {0x7fffe8, 23}, {0x7fffe9, 23}, {0x1fffde, 21}, {0x7fffea, 23}, {0x3fffdd, 22},
    /* 170 */ {0x3fffde, 22}, {0xfffff0, 24}, {0x1fffdf, 21}, {0x3fffdf, 22}, {0x7fffeb, 23},
    /* 175 */ {0x7fffec, 23}, {0x1fffe0, 21}, {0x1fffe1, 21}, {0x3fffe0, 22}, {0x1fffe2, 21},
    /* 180 */ {0x7fffed, 23}, {0x3fffe1, 22}, {0x7fffee, 23}, {0x7fffef, 23}, {0xfffea, 20},
    /* 185 */ {0x3fffe2, 22}, {0x3fffe3, 22}, {0x3fffe4, 22}, {0x7ffff0, 23}, {0x3fffe5, 22},
    /* 190 */ {0x3fffe6, 22}, {0x7ffff1, 23}, {0x3ffffe0, 26}, {0x3ffffe1, 26}, {0xfffeb, 20},
    /* 195 */ {0x7fff1, 19}, {0x3fffe7, 22}, {0x7ffff2, 23}, {0x3fffe8, 22}, {0x1ffffec, 25},
    /* 200 */ {0x3ffffe2, 26}, {0x3ffffe3, 26}, {0x3ffffe4, 26}, {0x7ffffde, 27}, {0x7ffffdf, 27},
    /* 205 */ {0x3ffffe5, 26}, {0xfffff1, 24}, {0x1ffffed, 25}, {0x7fff2, 19}, {0x1fffe3, 21},
    /* 210 */ {0x3ffffe6, 26}, {0x7ffffe0, 27}, {0x7ffffe1, 27}, {0x3ffffe7, 26}, {0x7ffffe2, 27},
    /* 215 */ {0xfffff2, 24}, {0x1fffe4, 21}, {0x1fffe5, 21}, {0x3ffffe8, 26}, {0x3ffffe9, 26},
    /* 220 */ {0xffffffd, 28}, {0x7ffffe3, 27}, {0x7ffffe4, 27}, {0x7ffffe5, 27}, {0xfffec, 20},
    /* 225 */ {0xfffff3, 24}, {0xfffed, 20}, {0x1fffe6, 21}, {0x3fffe9, 22}, {0x1fffe7, 21},
    /* 230 */ {0x1fffe8, 21}, {0x7ffff3, 23}, {0x3fffea, 22}, {0x3fffeb, 22}, {0x1ffffee, 25},
    /* 235 */ {0x1ffffef, 25}, {0xfffff4, 24}, {0xfffff5, 24}, {0x3ffffea, 26}, {0x7ffff4, 23},
    /* 240 */ {0x3ffffeb, 26}, {0x7ffffe6, 27}, {0x3ffffec, 26}, {0x3ffffed, 26}, {0x7ffffe7, 27},
    /* 245 */ {0x7ffffe8, 27}, {0x7ffffe9, 27}, {0x7ffffea, 27}, {0x7ffffeb, 27}, {0xffffffe, 28},
    /* 250 */ {0x7ffffec, 27}, {0x7ffffed, 27}, {0x7ffffee, 27}, {0x7ffffef, 27}, {0x7fffff0, 27},
    /* 255 */ {0x3ffffee, 26}, {0x3fffffff, 30},
    };

    /* RFC 7541 Appendix A: the static table, from index 1 (0 is no entry). */
    typedef struct {
        const char *name; Py_ssize_t name_len; const char *value; Py_ssize_t value_len;
    } hp_static_entry;
    #define HP_S(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}
    static const hp_static_entry hp_static_table[62] = {
        /*  0 */ HP_S("", ""),
    /*  1 */ HP_S(":authority", ""),
    /*  2 */ HP_S(":method", "GET"),
    /*  3 */ HP_S(":method", "POST"),
    /*  4 */ HP_S(":path", "/"),
    /*  5 */ HP_S(":path", "/index.html"),
    /*  6 */ HP_S(":scheme", "http"),
    /*  7 */ HP_S(":scheme", "https"),
    /*  8 */ HP_S(":status", "200"),
    /*  9 */ HP_S(":status", "204"),
    /* 10 */ HP_S(":status", "206"),
    /* 11 */ HP_S(":status", "304"),
    /* 12 */ HP_S(":status", "400"),
    /* 13 */ HP_S(":status", "404"),
    /* 14 */ HP_S(":status", "500"),
    /* 15 */ HP_S("accept-charset", ""),
    /* 16 */ HP_S("accept-encoding", "gzip, deflate"),
    /* 17 */ HP_S("accept-language", ""),
    /* 18 */ HP_S("accept-ranges", ""),
    /* 19 */ HP_S("accept", ""),
    /* 20 */ HP_S("access-control-allow-origin", ""),
    /* 21 */ HP_S("age", ""),
    /* 22 */ HP_S("allow", ""),
    /* 23 */ HP_S("authorization", ""),
    /* 24 */ HP_S("cache-control", ""),
    /* 25 */ HP_S("content-disposition", ""),
    /* 26 */ HP_S("content-encoding", ""),
    /* 27 */ HP_S("content-language", ""),
    /* 28 */ HP_S("content-length", ""),
    /* 29 */ HP_S("content-location", ""),
    /* 30 */ HP_S("content-range", ""),
    /* 31 */ HP_S("content-type", ""),
    /* 32 */ HP_S("cookie", ""),
    /* 33 */ HP_S("date", ""),
    /* 34 */ HP_S("etag", ""),
    /* 35 */ HP_S("expect", ""),
    /* 36 */ HP_S("expires", ""),
    /* 37 */ HP_S("from", ""),
    /* 38 */ HP_S("host", ""),
    /* 39 */ HP_S("if-match", ""),
    /* 40 */ HP_S("if-modified-since", ""),
    /* 41 */ HP_S("if-none-match", ""),
    /* 42 */ HP_S("if-range", ""),
    /* 43 */ HP_S("if-unmodified-since", ""),
    /* 44 */ HP_S("last-modified", ""),
    /* 45 */ HP_S("link", ""),
    /* 46 */ HP_S("location", ""),
    /* 47 */ HP_S("max-forwards", ""),
    /* 48 */ HP_S("proxy-authenticate", ""),
    /* 49 */ HP_S("proxy-authorization", ""),
    /* 50 */ HP_S("range", ""),
    /* 51 */ HP_S("referer", ""),
    /* 52 */ HP_S("refresh", ""),
    /* 53 */ HP_S("retry-after", ""),
    /* 54 */ HP_S("server", ""),
    /* 55 */ HP_S("set-cookie", ""),
    /* 56 */ HP_S("strict-transport-security", ""),
    /* 57 */ HP_S("transfer-encoding", ""),
    /* 58 */ HP_S("user-agent", ""),
    /* 59 */ HP_S("vary", ""),
    /* 60 */ HP_S("via", ""),
    /* 61 */ HP_S("www-authenticate", ""),
    };
    #undef HP_S
    """
    ctypedef struct hp_code:
        unsigned int code
        unsigned char bits
    ctypedef struct hp_static_entry:
        const char *name
        Py_ssize_t name_len
        const char *value
        Py_ssize_t value_len
    const hp_code hp_huffman_codes[257]
    const hp_static_entry hp_static_table[62]


# -- integers (RFC 7541 5.1) ------------------------------------------------------------------


cdef inline Py_ssize_t hp_read_int(const unsigned char *p, Py_ssize_t n, Py_ssize_t pos,
                                   int prefix, uint64_t *value) noexcept nogil:
    """The integer at ``p[pos]`` (which must be in the block) with a ``prefix``-bit prefix:
    where it ends, or HP_TRUNCATED / HP_OVERLONG. Bounded both in value and in length, so
    that a run of zero continuation bytes cannot shift past 64 bits."""
    cdef uint64_t mask = (<uint64_t>1 << prefix) - 1
    cdef uint64_t v = p[pos] & mask
    cdef int shift = 0
    cdef unsigned char b
    pos += 1
    if v < mask:
        value[0] = v
        return pos
    while True:
        if pos >= n:
            return HP_TRUNCATED
        b = p[pos]
        pos += 1
        v += <uint64_t>(b & 0x7f) << shift
        if v >> HP_INT_BITS:
            return HP_OVERLONG
        if not b & 0x80:
            value[0] = v
            return pos
        shift += 7
        if shift > HP_MAX_SHIFT:
            return HP_OVERLONG


cdef inline int hp_write_int(unsigned char *out, uint64_t value, int prefix,
                             unsigned char first) noexcept nogil:
    """``value`` with a ``prefix``-bit prefix into ``out`` (room for 11 bytes), the first
    byte's bits above the prefix from ``first``: the bytes written."""
    cdef uint64_t mask = (<uint64_t>1 << prefix) - 1
    cdef int k = 1
    first &= <unsigned char>~mask
    if value < mask:
        out[0] = first | <unsigned char>value
        return 1
    out[0] = first | <unsigned char>mask
    value -= mask
    while value >= 128:
        out[k] = <unsigned char>(value & 0x7f) | 0x80
        value >>= 7
        k += 1
    out[k] = <unsigned char>value
    return k + 1


cdef str hp_int_error(Py_ssize_t code):
    if code == HP_TRUNCATED:
        return "the block ends inside an integer (RFC 7541 5.1)"
    return ("an integer past 2^32 - 1, or with more continuation bytes than that needs "
            "(RFC 7541 5.1)")


# -- Huffman codes (RFC 7541 5.2, Appendix B) -------------------------------------------------


ctypedef struct HpStep:
    unsigned char next  # the state after these 4 bits: an inner node of the code's tree
    unsigned char emit  # 1 when a symbol ended within them (at most one can: codes are 5+ bits)
    unsigned char fail  # 1 when the EOS symbol ended within them
    unsigned char sym


# Decoding 4 bits a step: HP_STEPS[state][nibble]. The state is the inner node of the code's
# tree that the bits read since the last symbol lead to (0: the root); there are 256 of them.
cdef HpStep HP_STEPS[256][16]
# Per state, whether a string may end there (RFC 7541 5.2): 0 when the bits since the last
# symbol are at most 7 ones (a prefix of EOS), else HP_PAD_LONG or HP_PAD_BITS.
cdef signed char HP_END[256]


cdef int _hp_huffman_steps() except -1:
    """HP_STEPS and HP_END, from the code table: its tree first, then each state's walk of
    each nibble through it."""
    cdef int child[256][2]  # per inner node and bit: an inner node (> 0), ~symbol (< 0), 0: none
    cdef int depth[256]
    cdef bint ones[256]
    cdef int nodes = 1, sym, i, b, node, state, nib, c
    cdef unsigned int code
    memset(child, 0, sizeof(child))
    memset(HP_STEPS, 0, sizeof(HP_STEPS))
    depth[0] = 0
    ones[0] = True
    for sym in range(257):
        code = hp_huffman_codes[sym].code
        node = 0
        for i in range(hp_huffman_codes[sym].bits - 1, 0, -1):
            b = (code >> i) & 1
            if child[node][b] == 0:
                if nodes == 256:
                    raise RuntimeError("the Huffman code table is not a complete code")
                child[node][b] = nodes
                depth[nodes] = depth[node] + 1
                ones[nodes] = ones[node] and b
                nodes += 1
            node = child[node][b]
        child[node][code & 1] = ~sym
    if nodes != 256:
        raise RuntimeError("the Huffman code table is not a complete code")
    for state in range(256):
        if state == 0 or (ones[state] and depth[state] <= 7):
            HP_END[state] = 0
        else:
            HP_END[state] = HP_PAD_LONG if ones[state] else HP_PAD_BITS
        for nib in range(16):
            node = state
            for i in range(3, -1, -1):
                c = child[node][(nib >> i) & 1]
                if c >= 0:
                    node = c
                elif ~c == 256:
                    HP_STEPS[state][nib].fail = 1
                    node = 0
                    break
                else:
                    HP_STEPS[state][nib].emit = 1
                    HP_STEPS[state][nib].sym = <unsigned char>~c
                    node = 0
            HP_STEPS[state][nib].next = <unsigned char>node
    return 0


_hp_huffman_steps()


cdef inline Py_ssize_t hp_huffman_bound(Py_ssize_t n) noexcept nogil:
    """Room for the symbols of ``n`` Huffman-coded bytes: each is 5+ bits, and the decoder
    writes a step's symbol before it knows whether one ended (one byte more)."""
    return n * 8 // 5 + 1


cdef Py_ssize_t hp_huffman_decode(const unsigned char *s, Py_ssize_t n,
                                  unsigned char *out) noexcept nogil:
    """``n`` Huffman-coded bytes decoded into ``out`` (hp_huffman_bound(n) of room): the
    length, or HP_EOS, HP_PAD_LONG, HP_PAD_BITS. Branch-free per step: a failure is
    remembered and answered at the end (after EOS the walk restarts at the root, harmless)."""
    cdef const HpStep *step
    cdef unsigned int state = 0
    cdef unsigned char fail = 0, b
    cdef Py_ssize_t i, k = 0
    for i in range(n):
        b = s[i]
        step = &HP_STEPS[state][b >> 4]
        out[k] = step.sym
        k += step.emit
        fail |= step.fail
        step = &HP_STEPS[step.next][b & 15]
        out[k] = step.sym
        k += step.emit
        fail |= step.fail
        state = step.next
    if fail:
        return HP_EOS
    if HP_END[state]:
        return HP_END[state]
    return k


cdef str hp_huffman_error(Py_ssize_t code):
    if code == HP_EOS:
        return "a Huffman-coded string holds the EOS symbol (RFC 7541 5.2)"
    if code == HP_PAD_LONG:
        return "a Huffman-coded string ends in more than 7 bits of padding (RFC 7541 5.2)"
    return "a Huffman-coded string ends in padding that is not all ones (RFC 7541 5.2)"


cdef Py_ssize_t hp_huffman_len(const unsigned char *s, Py_ssize_t n) noexcept nogil:
    """The length of ``n`` bytes Huffman-coded."""
    cdef Py_ssize_t i, bits = 0
    for i in range(n):
        bits += hp_huffman_codes[s[i]].bits
    return (bits + 7) >> 3


cdef void hp_huffman_encode(const unsigned char *s, Py_ssize_t n,
                            unsigned char *out) noexcept nogil:
    """``n`` bytes Huffman-coded into ``out`` (hp_huffman_len(s, n) of room), the last byte
    padded with ones (the start of EOS). Bits above the ones not yet written may be left in
    ``acc``: only its low ``pending`` + 8 bits are ever read, and codes are at most 30."""
    cdef uint64_t acc = 0
    cdef int pending = 0
    cdef Py_ssize_t i
    cdef const hp_code *c
    for i in range(n):
        c = &hp_huffman_codes[s[i]]
        acc = (acc << c.bits) | c.code
        pending += c.bits
        while pending >= 8:
            pending -= 8
            out[0] = <unsigned char>(acc >> pending)
            out += 1
    if pending:
        out[0] = <unsigned char>((acc << (8 - pending)) | (0xff >> pending))


# -- the decoder ------------------------------------------------------------------------------


ctypedef struct HField:
    const unsigned char *name
    Py_ssize_t name_len
    const unsigned char *value
    Py_ssize_t value_len


ctypedef struct HpEntry:
    Py_ssize_t at  # where its bytes start in the ring: the name's, then the value's
    Py_ssize_t name_len
    Py_ssize_t value_len


@cython.final
cdef class HpackDecoder:
    """One connection's HPACK decoder: its dynamic table and the fields of the last block.

    ``HpackDecoder(max_table, max_list)``: ``max_table`` is the SETTINGS_HEADER_TABLE_SIZE
    advertised (a size update above it is a compression error, and the table starts at it);
    fields are kept only while the block's header list size (RFC 9113: 32 + name + value
    per field) stays within ``max_list``, and decoding goes on past it for the table's sake.

    A kept field's strings are in ``buf`` (or, for a static table entry, the static table):
    the fields of one block are all in the buffer at once, past max_list only the field
    being decoded, so the buffer is bounded by max_list plus one field. The dynamic table
    is a ring of ``max_table`` bytes: with every entry counted at 32 bytes more than its
    bytes, what it holds always fits, and entries leave it oldest first, as they came."""

    cdef Py_ssize_t nfields
    cdef HField *fields
    cdef readonly Py_ssize_t list_size
    cdef readonly bint over
    cdef str error

    cdef Py_ssize_t fields_cap
    cdef unsigned char *buf
    cdef Py_ssize_t buf_cap, buf_len  # buf_len: the bytes of the fields kept so far
    cdef Py_ssize_t max_list, max_table
    cdef Py_ssize_t limit  # the dynamic table's size limit: max_table until a size update
    cdef Py_ssize_t dyn_size  # its size (RFC 7541 4.1)
    cdef Py_ssize_t count  # its entries
    cdef unsigned char *ring
    cdef Py_ssize_t ring_at  # where the next entry's bytes go
    cdef HpEntry *entries  # a ring too: the newest at next_entry - 1
    cdef Py_ssize_t entries_cap, next_entry

    def __cinit__(self, Py_ssize_t max_table=4096, Py_ssize_t max_list=1 << 62):
        if not 0 <= max_table <= HP_MAX_TABLE:
            raise ValueError(f"max_table {max_table} is not within 0..{HP_MAX_TABLE}")
        if max_list < 0:
            raise ValueError(f"max_list {max_list} is negative")
        self.max_table = self.limit = max_table
        self.max_list = max_list
        self.entries_cap = max_table // HP_ENTRY_OVERHEAD + 1  # more than can fit
        self.ring = <unsigned char *>malloc(max_table or 1)
        self.entries = <HpEntry *>malloc(self.entries_cap * sizeof(HpEntry))
        self.buf = <unsigned char *>malloc(HP_BUF_START)
        self.fields = <HField *>malloc(HP_FIELDS_START * sizeof(HField))
        if not (self.ring and self.entries and self.buf and self.fields):
            raise MemoryError()
        self.buf_cap = HP_BUF_START
        self.fields_cap = HP_FIELDS_START

    def __dealloc__(self):
        free(self.ring)
        free(self.entries)
        free(self.buf)
        free(self.fields)

    cdef int decode(self, const unsigned char *p, Py_ssize_t n) except -2:
        """Decode one complete header block. 0: ok. -1: a compression error (the connection
        must end with COMPRESSION_ERROR); self.error says why. The dynamic table is updated
        even for fields that are not kept (it must stay in step with the server's)."""
        cdef Py_ssize_t pos = 0
        cdef unsigned char b
        self.nfields = 0
        self.list_size = 0
        self.over = False
        self.buf_len = 0
        self.error = None
        while pos < n and (p[pos] & 0xe0) == 0x20:  # size updates: only here (RFC 7541 4.2)
            pos = self._size_update(p, n, pos)
            if pos < 0:
                return -1
        while pos < n:
            b = p[pos]
            if b & 0x80:
                pos = self._indexed(p, n, pos)
            elif b & 0x40:
                pos = self._literal(p, n, pos, 6, True)
            elif b & 0x20:
                return <int>self._fail("a dynamic table size update after a header field "
                                       "(RFC 7541 4.2)")
            else:  # without indexing (0000) or never indexed (0001): alike to a client
                pos = self._literal(p, n, pos, 4, False)
            if pos < 0:
                return -1
        return 0

    # -- the representations (RFC 7541 6) -----------------------------------------------------

    cdef Py_ssize_t _size_update(self, const unsigned char *p, Py_ssize_t n,
                                 Py_ssize_t pos) except -2:
        cdef uint64_t size
        pos = hp_read_int(p, n, pos, 5, &size)
        if pos < 0:
            return self._fail(hp_int_error(pos))
        if size > <uint64_t>self.max_table:
            return self._fail(f"a dynamic table size update to {size}, above the "
                              f"{self.max_table} advertised (RFC 7541 6.3)")
        self.limit = <Py_ssize_t>size
        self._evict_to(self.limit)
        return pos

    cdef Py_ssize_t _indexed(self, const unsigned char *p, Py_ssize_t n,
                             Py_ssize_t pos) except -2:
        """An indexed field (RFC 7541 6.1). A dynamic entry is copied, as a later field may
        evict it; a static one is pointed at."""
        cdef uint64_t index
        cdef const hp_static_entry *s
        cdef HpEntry e
        cdef unsigned char *w
        pos = hp_read_int(p, n, pos, 7, &index)
        if pos < 0:
            return self._fail(hp_int_error(pos))
        if index == 0:
            return self._fail("an indexed field of index 0 (RFC 7541 6.1)")
        if index <= HP_NSTATIC:
            s = &hp_static_table[index]
            if self._counts(s.name_len + s.value_len):
                self._keep(<const unsigned char *>s.name, s.name_len,
                           <const unsigned char *>s.value, s.value_len)
            return pos
        if not self._has(index):
            return self._bad_index(index)
        e = self.entries[self._slot(index)]
        if self._counts(e.name_len + e.value_len):
            self._reserve(e.name_len + e.value_len)
            w = self.buf + self.buf_len
            self._ring_read(e.at, e.name_len + e.value_len, w)  # the value follows the name
            self.buf_len += e.name_len + e.value_len
            self._keep(w, e.name_len, w + e.name_len, e.value_len)
        return pos

    cdef Py_ssize_t _literal(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t pos,
                             int prefix, bint index) except -2:
        """A literal field (RFC 7541 6.2), added to the table with ``index``. Both strings'
        lengths are read first, so that the buffer is grown once, before any pointer into
        it is taken; a dynamic table name is copied only when it is needed (kept, or
        indexed: the insert may evict the entry it names)."""
        cdef uint64_t name_index
        cdef const unsigned char *name = NULL
        cdef unsigned char *w
        cdef const hp_static_entry *s
        cdef Py_ssize_t name_at = 0, name_len = 0, value_at, value_len, room = 0
        cdef Py_ssize_t entry_at = 0  # a dynamic table name's bytes in the ring
        cdef bint name_huff = False, value_huff = False, kept
        pos = hp_read_int(p, n, pos, prefix, &name_index)
        if pos < 0:
            return self._fail(hp_int_error(pos))
        if name_index == 0:
            name_at = self._string(p, n, pos, &name_huff, &name_len)
            if name_at < 0:
                return -1
            pos = name_at + name_len
            room = hp_huffman_bound(name_len) if name_huff else name_len
        elif name_index <= HP_NSTATIC:
            s = &hp_static_table[name_index]
            name = <const unsigned char *>s.name
            name_len = s.name_len
        elif self._has(name_index):
            entry_at = self.entries[self._slot(name_index)].at
            name_len = room = self.entries[self._slot(name_index)].name_len
        else:
            return self._bad_index(name_index)
        value_at = self._string(p, n, pos, &value_huff, &value_len)
        if value_at < 0:
            return -1
        pos = value_at + value_len
        self._reserve(room + (hp_huffman_bound(value_len) if value_huff else value_len))
        w = self.buf + self.buf_len
        if name_index == 0:
            name = w
            name_len = self._put(p + name_at, name_len, name_huff, w)
            if name_len < 0:
                return -1
            w += name_len
        elif name_index > HP_NSTATIC:
            name = w  # its bytes are copied below, when needed
            w += name_len
        value_len = self._put(p + value_at, value_len, value_huff, w)
        if value_len < 0:
            return -1
        kept = self._counts(name_len + value_len)
        if name_index > HP_NSTATIC and (kept or index):
            self._ring_read(entry_at, name_len, <unsigned char *>name)
        if index:
            self._insert(name, name_len, w, value_len)
        if kept:
            self.buf_len = (w + value_len) - self.buf
            self._keep(name, name_len, w, value_len)
        return pos

    cdef Py_ssize_t _string(self, const unsigned char *p, Py_ssize_t n, Py_ssize_t pos,
                            bint *huff, Py_ssize_t *length) except -2:
        """A string literal's header at ``pos`` (RFC 7541 5.2): where its bytes start, with
        whether they are Huffman-coded and how many there are (all within the block)."""
        cdef uint64_t size
        if pos >= n:
            return self._fail("the block ends before a string literal (RFC 7541 5.2)")
        huff[0] = p[pos] >> 7
        pos = hp_read_int(p, n, pos, 7, &size)
        if pos < 0:
            return self._fail(hp_int_error(pos))
        if size > <uint64_t>(n - pos):
            return self._fail(f"a string literal of {size} bytes, with {n - pos} left in the "
                              "block (RFC 7541 5.2)")
        length[0] = <Py_ssize_t>size
        return pos

    cdef Py_ssize_t _put(self, const unsigned char *s, Py_ssize_t n, bint huff,
                         unsigned char *out) except -2:
        """A string's bytes, decoded, into ``out``: their length."""
        cdef Py_ssize_t k
        if not huff:
            memcpy(out, s, n)
            return n
        k = hp_huffman_decode(s, n, out)
        if k < 0:
            return self._fail(hp_huffman_error(k))
        return k

    cdef Py_ssize_t _fail(self, str why) except -2:
        self.error = why
        self.nfields = 0
        return -1

    cdef Py_ssize_t _bad_index(self, uint64_t index) except -2:
        return self._fail(f"index {index} is past the tables ({HP_NSTATIC} static entries, "
                          f"{self.count} dynamic) (RFC 7541 2.3.3)")

    # -- the block's fields -------------------------------------------------------------------

    cdef inline bint _counts(self, Py_ssize_t strings) noexcept:
        """A field of ``strings`` bytes counted into the list size: whether it is kept."""
        self.list_size += HP_ENTRY_OVERHEAD + strings
        if self.over:
            return False
        if self.list_size > self.max_list:
            self.over = True
            return False
        return True

    cdef inline int _keep(self, const unsigned char *name, Py_ssize_t name_len,
                          const unsigned char *value, Py_ssize_t value_len) except -1:
        cdef HField *f
        if self.nfields == self.fields_cap:
            self._more_fields()
        f = &self.fields[self.nfields]
        f.name = name
        f.name_len = name_len
        f.value = value
        f.value_len = value_len
        self.nfields += 1
        return 0

    cdef int _more_fields(self) except -1:
        cdef HField *more = <HField *>malloc(2 * self.fields_cap * sizeof(HField))
        if not more:
            raise MemoryError()
        memcpy(more, self.fields, self.nfields * sizeof(HField))
        free(self.fields)
        self.fields = more
        self.fields_cap *= 2
        return 0

    cdef inline int _reserve(self, Py_ssize_t room) except -1:
        """Room for ``room`` bytes past the kept fields' in the buffer."""
        if self.buf_len + room > self.buf_cap:
            self._grow(self.buf_len + room)
        return 0

    cdef int _grow(self, Py_ssize_t need) except -1:
        """A larger buffer, the kept fields' pointers into it moved along: doubling, but not
        past max_list plus some slack, past which only what is needed (the kept fields are
        within max_list; what is decoded beyond them is one field at a time)."""
        cdef Py_ssize_t cap = 2 * self.buf_cap, i
        cdef unsigned char *old = self.buf
        cdef unsigned char *more
        cdef uintptr_t lo = <uintptr_t>old, hi = lo + <uintptr_t>self.buf_cap
        cdef HField *f
        if self.max_list < cap and cap > self.max_list + HP_BUF_SLACK:
            cap = self.max_list + HP_BUF_SLACK
        if cap < need:
            cap = need
        more = <unsigned char *>malloc(cap)
        if not more:
            raise MemoryError()
        memcpy(more, old, self.buf_len)
        for i in range(self.nfields):
            f = &self.fields[i]
            if lo <= <uintptr_t>f.name <= hi:  # not a static table string
                f.name = more + (f.name - old)
            if lo <= <uintptr_t>f.value <= hi:
                f.value = more + (f.value - old)
        free(old)
        self.buf = more
        self.buf_cap = cap
        return 0

    # -- the dynamic table (RFC 7541 2.3.2, 4) ------------------------------------------------

    cdef inline bint _has(self, uint64_t index) noexcept:
        return index - HP_NSTATIC <= <uint64_t>self.count

    cdef inline Py_ssize_t _slot(self, uint64_t index) noexcept:
        """The entry at ``index`` (past the static table; see _has), newest first."""
        cdef Py_ssize_t slot = self.next_entry - <Py_ssize_t>(index - HP_NSTATIC)
        return slot + self.entries_cap if slot < 0 else slot

    cdef void _insert(self, const unsigned char *name, Py_ssize_t name_len,
                      const unsigned char *value, Py_ssize_t value_len) noexcept:
        """An entry added (RFC 7541 4.4): older ones evicted to make room; one larger than
        the table empties it. The strings must not be in the ring (they are copied in)."""
        cdef Py_ssize_t size = HP_ENTRY_OVERHEAD + name_len + value_len
        cdef HpEntry *e
        if size > self.limit:
            self._evict_to(0)
            return
        self._evict_to(self.limit - size)
        e = &self.entries[self.next_entry]
        e.at = self.ring_at
        e.name_len = name_len
        e.value_len = value_len
        self._ring_write(name, name_len)
        self._ring_write(value, value_len)
        self.next_entry = self.next_entry + 1 if self.next_entry + 1 < self.entries_cap else 0
        self.count += 1
        self.dyn_size += size

    cdef void _evict_to(self, Py_ssize_t size) noexcept:
        """The oldest entries evicted until the table's size is within ``size``."""
        cdef const HpEntry *e
        cdef Py_ssize_t slot
        while self.dyn_size > size:
            slot = self.next_entry - self.count
            e = &self.entries[slot + self.entries_cap if slot < 0 else slot]
            self.dyn_size -= HP_ENTRY_OVERHEAD + e.name_len + e.value_len
            self.count -= 1
        if self.count == 0:
            self.ring_at = 0  # nothing left to wrap around

    cdef inline void _ring_write(self, const unsigned char *s, Py_ssize_t n) noexcept:
        cdef Py_ssize_t first = self.max_table - self.ring_at
        if n < first:
            memcpy(self.ring + self.ring_at, s, n)
            self.ring_at += n
        else:
            memcpy(self.ring + self.ring_at, s, first)
            memcpy(self.ring, s + first, n - first)
            self.ring_at = n - first

    cdef inline void _ring_read(self, Py_ssize_t at, Py_ssize_t n,
                                unsigned char *out) noexcept:
        cdef Py_ssize_t first = self.max_table - at
        if n <= first:
            memcpy(out, self.ring + at, n)
        else:
            memcpy(out, self.ring + at, first)
            memcpy(out + first, self.ring, n - first)

    # -- from Python --------------------------------------------------------------------------

    def decode_block(self, bytes block not None):
        """The fields of a header block, (name, value) bytes; ValueError for a compression
        error. When ``over``, those kept (within max_list)."""
        cdef Py_ssize_t i
        cdef HField *f
        if self.decode(<const unsigned char *>PyBytes_AS_STRING(block),
                       PyBytes_GET_SIZE(block)) < 0:
            raise ValueError(self.error)
        fields = []
        for i in range(self.nfields):
            f = &self.fields[i]
            fields.append((PyBytes_FromStringAndSize(<const char *>f.name, f.name_len),
                           PyBytes_FromStringAndSize(<const char *>f.value, f.value_len)))
        return fields

    def bench_decode(self, bytes block not None, long long times):
        """Decode ``block`` ``times`` times from C, for timing what a response costs."""
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(block)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(block)
        cdef long long i
        for i in range(times):
            if self.decode(p, n) < 0:
                raise ValueError(self.error)

    @property
    def table(self):
        """The dynamic table, newest first: (name, value) bytes."""
        cdef Py_ssize_t i, slot
        cdef HpEntry e
        cdef bytes both
        entries = []
        for i in range(self.count):
            slot = self.next_entry - 1 - i
            e = self.entries[slot + self.entries_cap if slot < 0 else slot]
            both = PyBytes_FromStringAndSize(NULL, e.name_len + e.value_len)
            self._ring_read(e.at, e.name_len + e.value_len,
                            <unsigned char *>PyBytes_AS_STRING(both))
            entries.append((both[:e.name_len], both[e.name_len:]))
        return entries

    @property
    def table_size(self):
        """The dynamic table's size (RFC 7541 4.1: 32 + name + value per entry)."""
        return self.dyn_size

    @property
    def buffer_capacity(self):
        """The bytes the string buffer holds room for (bounded by max_list plus a field)."""
        return self.buf_cap


# -- the encoder ------------------------------------------------------------------------------


cdef bytes hpack_encode(object fields):
    """A header block of ``fields``, (bytes name, bytes value) with names lower-case, for a
    decoder in any state: each field indexed when the static table has it whole, else a
    literal without indexing (named by the static table's index when it has the name), each
    string Huffman-coded when that is shorter. No dynamic table, so no size update ever."""
    cdef bytearray out = bytearray()
    for name, value in fields:
        _hp_encode_field(out, name, value)
    return bytes(out)


cdef int _hp_encode_field(bytearray out, bytes name, bytes value) except -1:
    cdef const unsigned char *np
    cdef const unsigned char *vp
    cdef Py_ssize_t nl, vl, i, name_index = 0
    cdef const hp_static_entry *s
    if name is None or value is None:
        raise TypeError("a header field is two bytes objects")
    np = <const unsigned char *>PyBytes_AS_STRING(name)
    vp = <const unsigned char *>PyBytes_AS_STRING(value)
    nl = PyBytes_GET_SIZE(name)
    vl = PyBytes_GET_SIZE(value)
    for i in range(nl):
        if 65 <= np[i] <= 90:
            raise ValueError(f"header name {name!r} is not lower-case (RFC 9113 8.2.1)")
    for i in range(1, HP_NSTATIC + 1):  # a name's entries are together, lowest index first
        s = &hp_static_table[i]
        if s.name_len == nl and memcmp(s.name, np, nl) == 0:
            if s.value_len == vl and memcmp(s.value, vp, vl) == 0:
                _hp_int(out, i, 7, 0x80)  # indexed (RFC 7541 6.1)
                return 0
            if not name_index:
                name_index = i
    _hp_int(out, name_index, 4, 0x00)  # without indexing (6.2.2); 0: a literal name follows
    if not name_index:
        _hp_string(out, np, nl)
    _hp_string(out, vp, vl)
    return 0


cdef int _hp_int(bytearray out, uint64_t value, int prefix, unsigned char first) except -1:
    cdef unsigned char tmp[11]
    cdef int k = hp_write_int(tmp, value, prefix, first)
    out += (<char *>tmp)[:k]
    return 0


cdef int _hp_string(bytearray out, const unsigned char *s, Py_ssize_t n) except -1:
    """A string literal (RFC 7541 5.2): Huffman-coded when that is strictly shorter."""
    cdef Py_ssize_t coded = hp_huffman_len(s, n)
    cdef bytes huff
    if coded < n:
        _hp_int(out, coded, 7, 0x80)
        huff = PyBytes_FromStringAndSize(NULL, coded)
        hp_huffman_encode(s, n, <unsigned char *>PyBytes_AS_STRING(huff))
        out += huff
    else:
        _hp_int(out, n, 7, 0x00)
        out += (<const char *>s)[:n]
    return 0


# -- from Python: the codec's parts, for tests ------------------------------------------------


def encode_block(fields):
    """:func:`hpack_encode`: a request's header block, (name, value) bytes pairs."""
    return hpack_encode(fields)


def huffman_encode(bytes data not None):
    """``data`` Huffman-coded (RFC 7541 5.2), padded with ones."""
    cdef const unsigned char *s = <const unsigned char *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, hp_huffman_len(s, n))
    hp_huffman_encode(s, n, <unsigned char *>PyBytes_AS_STRING(out))
    return out


def huffman_decode(bytes data not None):
    """Huffman-coded ``data`` decoded; ValueError for EOS in it or bad padding."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, hp_huffman_bound(n))
    cdef Py_ssize_t k = hp_huffman_decode(<const unsigned char *>PyBytes_AS_STRING(data), n,
                                          <unsigned char *>PyBytes_AS_STRING(out))
    if k < 0:
        raise ValueError(hp_huffman_error(k))
    return out[:k]


def hpack_int(uint64_t value, int prefix_bits, int first_byte=0):
    """``value`` as an integer with a ``prefix_bits``-bit prefix (RFC 7541 5.1), the first
    byte's bits above the prefix from ``first_byte``."""
    cdef unsigned char tmp[11]
    if not 1 <= prefix_bits <= 8 or not 0 <= first_byte <= 255:
        raise ValueError("prefix_bits is 1..8 and first_byte 0..255")
    return (<char *>tmp)[:hp_write_int(tmp, value, prefix_bits, <unsigned char>first_byte)]


def hpack_read_int(bytes data not None, int prefix_bits):
    """The integer at the start of ``data`` with a ``prefix_bits``-bit prefix: (value, bytes
    used); ValueError when it is truncated or past 2^32 - 1."""
    cdef uint64_t value
    cdef Py_ssize_t end
    if not 1 <= prefix_bits <= 8:
        raise ValueError("prefix_bits is 1..8")
    if not PyBytes_GET_SIZE(data):
        raise ValueError(hp_int_error(HP_TRUNCATED))
    end = hp_read_int(<const unsigned char *>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                      0, prefix_bits, &value)
    if end < 0:
        raise ValueError(hp_int_error(end))
    return value, end
