# TEMPORARY stand-in for the compiled HPACK codec (the hpack library behind the contract).
import hpack as _hpack_lib

ctypedef struct HField:
    const unsigned char *name
    Py_ssize_t name_len
    const unsigned char *value
    Py_ssize_t value_len


cdef class HpackDecoder:
    cdef Py_ssize_t nfields
    cdef HField *fields
    cdef Py_ssize_t list_size
    cdef bint over
    cdef str error
    cdef object _dec
    cdef list _keep
    cdef Py_ssize_t _cap
    cdef Py_ssize_t max_list

    def __init__(self, Py_ssize_t max_table=4096, Py_ssize_t max_list=1 << 62):
        self._dec = _hpack_lib.Decoder(max_table)
        self._dec.max_header_list_size = 1 << 62
        self.max_list = max_list
        self._cap = 0

    def __dealloc__(self):
        free(self.fields)

    cdef int decode(self, const unsigned char *p, Py_ssize_t n) except -2:
        cdef Py_ssize_t i
        try:
            got = self._dec.decode(p[:n], raw=True)
        except Exception as exc:
            self.error = str(exc)
            return -1
        if len(got) > self._cap:
            free(self.fields)
            self._cap = len(got) + 16
            self.fields = <HField *>calloc(self._cap, sizeof(HField))
        self._keep = []
        self.list_size = 0
        self.over = False
        self.nfields = 0
        for name, value in got:
            name = bytes(name); value = bytes(value)
            self.list_size += 32 + len(name) + len(value)
            if self.list_size > self.max_list:
                self.over = True
                continue
            self._keep.append(name); self._keep.append(value)
            i = self.nfields
            self.fields[i].name = <const unsigned char *>PyBytes_AS_STRING(name)
            self.fields[i].name_len = len(name)
            self.fields[i].value = <const unsigned char *>PyBytes_AS_STRING(value)
            self.fields[i].value_len = len(value)
            self.nfields += 1
        return 0


_ENC = _hpack_lib.Encoder()

cdef bytes hpack_encode(object fields):
    enc = _hpack_lib.Encoder()
    return enc.encode([_hpack_lib.NeverIndexedHeaderTuple(n, v) for n, v in fields], huffman=True)
