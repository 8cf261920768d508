"""The compiled response reader (:class:`tether.engine._compiled.Reader`) against llhttp.

The reader vouches for plain responses only and hands the rest to llhttp (httptools), the
reference. Through ``_compiled.read_response`` every answer it gives is held to what llhttp
makes of the same bytes, read as tether's Python path reads them (:class:`Llhttp`):

- "done": llhttp ends the message without error at the same offset, with the same status,
  keep-alive verdict and body length (nothing it accepts is refused by llhttp);
- "failed" (which the reader no longer answers: it hands what is invalid to llhttp, so that
  errors are llhttp's own words): llhttp refuses the bytes too;
- "handover": llhttp on ``prefix + joined[rest_offset:]`` says what it says on the whole
  response, the ``body_size`` bytes the reader took included (handing over loses nothing);
- "more": llhttp has not ended the message either;

and none of that depends on how the bytes are split into reads. Responses come from a
grammar of plausible and odd ones and from byte-level mutations of valid ones.
"""

from __future__ import annotations

import itertools
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httptools
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tether.engine import compiled


def _reader_module() -> ModuleType | None:
    # TETHER_PURE_PYTHON only stops tether from using the extension: it is tested all the same.
    if compiled.native is not None:
        return compiled.native
    try:
        from tether.engine import _compiled
    except ImportError:  # not built: skipped (which, under CI, fails the run)
        return None
    return _compiled


native = _reader_module()
pytestmark = pytest.mark.skipif(native is None, reason="the compiled extension is not built")

Result = tuple[Any, ...]
DEFAULT_LIMIT = 1 << 62
NO_BODY_STATUSES = (204, 304)

# -- the reference: llhttp, as tether's Python path drives it -----------------------------------


@dataclass(frozen=True)
class Llhttp:
    """What llhttp makes of some bytes, read as tether's Python path reads them: interim (1xx)
    messages skipped; a HEAD's, 204's or 304's message ended at headers-complete (tether
    starts a fresh parser there); keep-alive asked inside the callback that ends it.

    ``error``: llhttp's complaint (``"upgrade"`` for httptools' HttpParserUpgrade), None if
    none before the end; ``end``: the offset just past the message, None if it has not ended;
    ``body``: body bytes of the final response up to its end (or up to the error)."""

    error: str | None
    status: int | None
    keep_alive: bool | None
    body: int
    end: int | None


class _Probe:
    def __init__(self, is_head: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.is_head = is_head
        self.status: int | None = None
        self.keep_alive: bool | None = None
        self.body = 0
        self.ended = False

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200 or self.ended:
            return  # interim: its message-complete follows and is skipped too
        self.status = status
        if self.is_head or status in NO_BODY_STATUSES:
            self.keep_alive = self.parser.should_keep_alive()
            self.ended = True

    def on_body(self, body: bytes) -> None:
        if self.status is not None and not self.ended:
            self.body += len(body)

    def on_message_complete(self) -> None:
        if self.status is not None and not self.ended:
            self.keep_alive = self.parser.should_keep_alive()
            self.ended = True


def llhttp(data: bytes, is_head: bool = False) -> Llhttp:
    """llhttp fed ``data`` a byte at a time (so that the offset it ends at is known), up to
    the end of the first final response."""
    probe = _Probe(is_head)
    error: str | None = None
    end: int | None = None
    for i in range(len(data)):
        try:
            probe.parser.feed_data(data[i : i + 1])
        except httptools.HttpParserError as exc:
            error = str(exc) or type(exc).__name__
        except httptools.HttpParserUpgrade:
            error = "upgrade"
        if probe.ended:
            end = i + 1
            break
        if error is not None:
            break
    return Llhttp(error, probe.status, probe.keep_alive, probe.body, end)


# -- the reader, kept apart where it might crash ---------------------------------------------

# A chunk size of 16 significant hex digits or more passes a signed 64-bit integer: such an
# input is read in a child process, so that a crash fails one test instead of the run.
_RISKY = re.compile(rb"(?:^|\n)0*[1-9A-Fa-f][0-9A-Fa-f]{15}")
_CHILD = (
    "import pickle, sys\n"
    "from tether.engine import _compiled\n"
    "cases = pickle.load(sys.stdin.buffer)\n"
    "pickle.dump([_compiled.read_response(*c) for c in cases], sys.stdout.buffer)\n"
)

Case = tuple[list[bytes], bool, int]  # (reads, is_head, drain_limit)


def read_all(cases: list[Case]) -> list[Result]:
    """``read_response`` on each case: here, or in one child process when a case might
    crash the reader."""
    assert native is not None
    if not any(_RISKY.search(b"".join(reads)) for reads, _, _ in cases):
        return [native.read_response(reads, is_head, limit) for reads, is_head, limit in cases]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=pickle.dumps(cases),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"the reader crashed (exit {proc.returncode}) on {b''.join(cases[0][0])!r}: "
        f"{proc.stderr.decode(errors='replace')[-500:]}"
    )
    results: list[Result] = pickle.loads(proc.stdout)
    return results


def read(reads: list[bytes], is_head: bool = False, limit: int = DEFAULT_LIMIT) -> Result:
    return read_all([(reads, is_head, limit)])[0]


# -- the properties --------------------------------------------------------------------------


def check(data: bytes, is_head: bool, limit: int, result: Result) -> None:
    """The reader's ``result`` on ``data`` agrees with llhttp (see the module docstring)."""
    kind = result[0]
    whole = llhttp(data, is_head)
    said = f"reader {result!r}, llhttp {whole!r}, on {data!r} (is_head={is_head})"
    if kind == "done":
        _, status, keep_alive, body_size, end = result
        assert whole.error is None, f"the reader accepts what llhttp refuses: {said}"
        assert whole.end == end, f"the message ends elsewhere: {said}"
        assert (whole.status, whole.keep_alive, whole.body) == (status, keep_alive, body_size), (
            f"a different response: {said}"
        )
        assert body_size <= limit, f"a body past the drain limit {limit}: {said}"
    elif kind == "failed":
        assert whole.error is not None and whole.end is None, (
            f"the reader refuses what llhttp accepts: {said}"
        )
    elif kind == "handover":
        _, prefix, rest, body_size = result
        assert 0 <= rest <= len(data) and body_size >= 0, f"an impossible handover: {said}"
        stream = prefix + data[rest:]
        taken = llhttp(stream, is_head)
        said += f"; llhttp on the handover {taken!r}, fed {stream!r}"
        if stream == data:
            assert body_size == 0, f"the body counted twice: {said}"
        else:  # mid-body: the head again, then a chunk-size line
            head = data[: data.find(b"\r\n\r\n") + 4]
            assert b"\r\n\r\n" in data and prefix.startswith(head) and len(prefix) > len(head), (
                f"a handover neither from the first byte nor from the head: {said}"
            )
        # Offsets in the handed-over stream, as offsets in the response.
        shift = rest - len(prefix)
        assert (taken.error, taken.status, taken.keep_alive) == (
            whole.error,
            whole.status,
            whole.keep_alive,
        ), f"the handover changes the response: {said}"
        assert body_size + taken.body == whole.body, f"the handover loses body bytes: {said}"
        assert (None if taken.end is None else taken.end + shift) == whole.end, (
            f"the handover ends the message elsewhere: {said}"
        )
    else:
        assert result == ("more",), f"an unknown result: {said}"
        assert whole.end is None, f"the reader waits for a message llhttp has ended: {said}"


def normal(data: bytes, result: Result) -> Result:
    """``result`` as it must be whatever the reads were: a handover as the bytes llhttp is
    fed (where the reads end decides where its prefix stops)."""
    if result[0] == "handover":
        _, prefix, rest, body_size = result
        return ("handover", prefix + data[rest:], body_size)
    return result


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    at = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(at)]


def check_splits(data: bytes, is_head: bool, limit: int, cuts: list[int]) -> Result:
    """Whole, cut at every single byte boundary, and in the pieces ``cuts`` makes, the reader
    says the same; its answer on the whole."""
    splits = [[data]] + [[data[:i], data[i:]] for i in range(1, len(data))]
    splits.append(pieces(data, cuts))
    results = read_all([(reads, is_head, limit) for reads in splits])
    one = normal(data, results[0])
    for reads, result in zip(splits, results, strict=True):
        assert normal(data, result) == one, (
            f"split as {reads!r} the reader says {result!r}, in one piece {results[0]!r}"
        )
    return results[0]


# -- responses: a grammar ------------------------------------------------------------------

CRLF = b"\r\n"


def pool(*groups: list[bytes]) -> list[bytes]:
    return [item for group in groups for item in group]


# Each choice of the grammar: what a plain response has, and what an odd one may have instead.
EOL = ([CRLF], [b"\n", b"\r", b"\r\r\n", b"\n\r", b" \r\n", b"\t\r\n"])
VERSION = ([b"HTTP/1.1"], [b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"http/1.1", b"HTTP/11", b""])
GAP = ([b" "], [b"", b"  ", b"\t", b" \t", b"\x00"])
CODE = (
    [b"200", b"201", b"204", b"206", b"299", b"301", b"304", b"404", b"418", b"500", b"599"],
    pool(
        [b"100", b"101", b"102", b"103", b"199", b"600", b"999", b"000", b"099", b"20"],
        [b"2000", b"2x0", b"020", b"+20", b"-20", b" 200", b"\xb2\xb0\xb0"],
    ),
)
REASON = (
    [b"OK", b"Not Found", b"No Content", b"a b"],
    pool(
        [b"", b"ok\tfine", b"caf\xe9", b"x\x01", b"x\x7f", b"O\rK", b"O\nK", b"\x00", b"\xff"],
        [b"HTTP/1.1 200 OK", b" ", b"\t", b"OK ", b"a:b"],
    ),
)
FRAMED = (["cl", "te"], ["", "cl", "te", "proxy", "upgrade", "odd"])  # "": none
OTHER_KIND = (["conn", "other", "other"], ["cl", "te", "proxy", "upgrade", "odd"])
NAME: dict[str, tuple[list[bytes], list[bytes]]] = {
    "cl": ([b"Content-Length", b"content-length", b"CONTENT-LENGTH"], [b"Content-Lengths"]),
    "te": ([b"Transfer-Encoding", b"transfer-encoding", b"TRANSFER-ENCODING"], [b"TE"]),
    "conn": ([b"Connection", b"connection", b"CONNECTION"], [b"Connection2"]),
    "proxy": ([b"Proxy-Connection", b"proxy-connection"], []),
    "upgrade": ([b"Upgrade", b"upgrade"], []),
    "other": (
        [b"X-A", b"Server", b"Date", b"Keep-Alive", b"Content-Type", b"x!#$%&'*+-.^_`|~9"],
        [b"X A", b"X@A", b"X\x00", b"X\x80", b"", b"X-A ", b" X-A", b"\tX", b'X"', b"(X)"],
    ),
    "odd": (
        [b"Content-Length ", b"Transfer-Encoding\t", b"Content-Length\x00", b"Connection "],
        [b"X/Y", b"X\x7f", b"X{", b"X\\"],
    ),
}
VALUE: dict[str, tuple[list[bytes], list[bytes]]] = {
    "cl": (
        [b"0", b"1", b"5", b"12", b"30"],
        pool(
            [b"007", b"00", b"+5", b"-1", b"5 ", b" 5", b"5\t", b"\t5", b"5, 5", b"5,6", b"1 2"],
            [b"", b"99999999999999999999", b"999999999999999", b"0x5", b"9999999999999999"],
            [b"4611686018427387904", b"abc", b"5\x00", b"5 \t", b"\xb5", b"5\x0b", b"\x005"],
        ),
    ),
    "te": (
        [b"chunked", b"Chunked", b"CHUNKED"],
        pool(
            [b"gzip, chunked", b"gzip,chunked", b"gzip", b"chunked, gzip", b"identity"],
            [b"chunked ", b"chunked\t", b" chunked", b"\tchunked", b"chunk", b"", b"chunked,"],
            [b", chunked", b"chunked;q=1", b"chunked \t", b"chunked\x00", b"chunked\x0b"],
        ),
    ),
    "conn": (
        [b"close", b"Close", b"keep-alive", b"Keep-Alive", b"KEEP-ALIVE"],
        pool(
            [b"upgrade", b"close, foo", b"foo, close", b"keep-alive, close", b"close,keep-alive"],
            [b"close\t", b"close ", b" close", b"\tclose", b"", b"closed", b"te", b"keep-alive\t"],
            [b"clo se", b"keep-alive \t", b"close\x00", b"cl\xf6se", b"close\x0b", b"keep-alive,"],
        ),
    ),
    "proxy": ([b"close", b"keep-alive"], []),
    "upgrade": ([b"websocket", b"h2c", b""], []),
    "other": (
        [b"", b"text/plain", b"a\tb", b"a b", b"timeout=5", b"v", b"close"],
        [b"\x80\xff", b"caf\xe9", b"x\x00y", b"x\x01", b"x\x7f", b"a\rb", b"  padded  ", b"\t"],
    ),
}
VALUE["odd"] = VALUE["other"]
COLON = ([b": ", b":"], [b":\t", b":  ", b" :", b": \t", b"\t:", b"::", b": \x00"])
HUGE_SIZES = [b"8000000000000000", b"ffffffffffffffff", b"10000000000000005", b"4000000000000000"]
HUGE_SIZES += [
    b"3fffffffffffffff",
    b"fffffffffffffff",
    b"FFFFFFFFFFFFFFFFFFFF",
    b"7fffffffffffffff",
]
AFTER_DATA = ([CRLF], [b"\n", b"", b"X", b"\r", b"\rX", b"\n\r", b"\r\r\n", b" \r\n"])
EXTENSION = ([b""], [b";a=b", b";a", b"; a=b", b" ;a", b";", b' ;a="q"', b" ", b"\t", b"\x00"])
LAST = ([b"0"], [b"00", b"000", b"0;ext", b"0 ", b"0" * 23, b"0\t", b"O", b"", b"0\x00"])
END = ([CRLF], [b"\n", b"", b"X\r\n", b"\r", b" \r\n"])
NEXT = (
    [b""],
    [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"junk", b"\r\n", b"0\r\n\r\n", b"\x00"],
)


class Maker:
    """Draws a response's pieces: each plain, or odd at this example's rate (in percent)."""

    def __init__(self, draw: st.DrawFn, rate: int) -> None:
        self.draw = draw
        self.rate = rate

    def odd(self) -> bool:
        return self.draw(st.integers(0, 99)) < self.rate

    def pick(self, choice: tuple[list[Any], list[Any]]) -> Any:
        plain, odd = choice
        return self.draw(st.sampled_from(odd if odd and self.odd() else plain))

    def field(self, kind: str) -> bytes:
        """A header field line, its line end included (and, oddly, a folded line)."""
        value = self.pick(VALUE[kind])
        if self.odd() and self.odd():
            value = self.draw(st.binary(max_size=4))
        line = self.pick(NAME[kind]) + self.pick(COLON) + value + self.pick(EOL)
        if self.odd() and self.odd():
            line += self.draw(st.sampled_from([b" ", b"\t"])) + value + self.pick(EOL)
        return line

    def head(self) -> bytes:
        """Status line, fields (one that frames the body, among others), blank line."""
        reason = self.pick(REASON)
        if self.odd() and self.odd():
            reason = self.draw(st.binary(max_size=6))
        status = self.pick(VERSION) + self.pick(GAP) + self.pick(CODE) + self.pick(GAP) + reason
        fields = [self.field(self.pick(OTHER_KIND)) for _ in range(self.draw(st.integers(0, 3)))]
        framed = self.pick(FRAMED)
        if framed:
            fields.insert(self.draw(st.integers(0, len(fields))), self.field(framed))
        return status + self.pick(EOL) + b"".join(fields) + self.pick(EOL)

    def chunk(self) -> bytes:
        if self.odd() and self.draw(st.integers(0, 9)) == 0:
            digits = self.draw(st.sampled_from(HUGE_SIZES))
            size = self.draw(st.integers(0, 4))
        else:
            size = self.draw(st.integers(1, 40))
            digits = self.draw(st.sampled_from([b"%x", b"%X"])) % size
            if self.odd():
                digits = b"0" * self.draw(st.sampled_from([1, 2, 8, 14, 20, 21, 22])) + digits
        line = digits + self.pick(EXTENSION) + self.pick(EOL)
        if self.odd():
            size = max(0, size + self.draw(st.sampled_from([-1, 1])))
        data = self.draw(st.one_of(st.just(b"w" * size), st.binary(min_size=size, max_size=size)))
        return line + data + self.pick(AFTER_DATA)

    def chunked(self) -> bytes:
        body = b"".join(self.chunk() for _ in range(self.draw(st.integers(0, 3))))
        body += self.pick(LAST) + self.pick(EXTENSION) + self.pick(EOL)
        if self.odd():
            trailers = self.draw(st.integers(1, 2))
            body += b"".join(self.field(self.pick(OTHER_KIND)) for _ in range(trailers))
        return body + self.pick(END)

    def body(self, head: bytes) -> bytes:
        mode, length = framing(head)
        if self.odd():
            mode = self.draw(st.sampled_from(["chunked", "length", "none"]))
        if mode == "chunked":
            return self.chunked()
        if mode == "length":
            n = min(length, 64)
            if self.odd():
                n = max(0, n + self.draw(st.sampled_from([-1, 1])))
            return self.draw(st.one_of(st.just(b"y" * n), st.binary(min_size=n, max_size=n)))
        return self.draw(st.binary(max_size=12))


def framing(head: bytes) -> tuple[str, int]:
    """How the head (roughly as llhttp or the reader would) frames its body: ("chunked", 0),
    ("length", n) or ("none", 0)."""
    lines = head.replace(b"\r", b"").split(b"\n")
    te = [ln.split(b":", 1)[1] for ln in lines if ln.lower().startswith(b"transfer-encoding:")]
    if te and te[-1].strip(b" \t").lower().endswith(b"chunked"):
        return "chunked", 0
    for ln in lines:
        if ln.lower().startswith(b"content-length:"):
            value = ln.split(b":", 1)[1].strip()
            if value.isdigit():
                return "length", int(value)
    return "none", 0


@st.composite
def grammar_responses(draw: st.DrawFn) -> bytes:
    """A response from the grammar: status line, fields, blank line, a body framed as the
    head says (or, oddly, not), and maybe bytes of what comes next. How odd it is, its rate,
    is drawn first: shrinking it makes a failing response as plain as it can be."""
    make = Maker(draw, draw(st.sampled_from([0, 1, 2, 4, 8, 15, 30])))
    head = make.head()
    return head + make.body(head) + make.pick(NEXT)


# -- responses: mutations of valid ones ----------------------------------------------------


@st.composite
def valid_responses(draw: st.DrawFn) -> bytes:
    status = draw(st.sampled_from([200, 201, 204, 206, 301, 304, 404, 500, 599]))
    reason = draw(st.sampled_from([b"OK", b"Whatever", b"x"]))
    fields = [b"X-A: v", b"Server: s", b"Connection: close", b"connection: Keep-Alive"]
    names = draw(st.lists(st.sampled_from(fields), max_size=3))
    head = b"HTTP/1.1 %d %s\r\n" % (status, reason) + b"".join(n + CRLF for n in names)
    if draw(st.booleans()):
        sizes = draw(st.lists(st.integers(1, 30), max_size=3))
        form = draw(st.sampled_from([b"%x", b"%X", b"0%x"]))
        body = b"".join(form % s + b"\r\n" + b"z" * s + CRLF for s in sizes) + b"0\r\n\r\n"
        head += b"Transfer-Encoding: chunked\r\n"
    else:
        body = b"y" * draw(st.integers(0, 30))
        head += b"Content-Length: %d\r\n" % len(body)
    return head + CRLF + body


INSERTED = st.one_of(
    st.sampled_from([b"\r", b"\n", b" ", b"\t", b":", b"0", b"f", b";", b"\x00", b"\x80"]),
    st.binary(min_size=1, max_size=3),
)


@st.composite
def mutated_responses(draw: st.DrawFn) -> bytes:
    """A valid response with a few bytes flipped, inserted or deleted."""
    data = bytearray(draw(valid_responses()))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "set"]))
        if op == "insert" or at == len(data):
            data[at:at] = draw(INSERTED)
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 3))]
        elif op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        else:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


IS_HEAD = st.sampled_from([False, False, False, True])
LIMITS = st.sampled_from([DEFAULT_LIMIT] * 6 + [0, 1, 5, 20])
CUTS = st.lists(st.integers(0, 1 << 16), max_size=8)
FEW = settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])


# -- the property tests ----------------------------------------------------------------------


@FEW
@given(data=grammar_responses(), is_head=IS_HEAD, limit=LIMITS, cuts=CUTS)
def test_grammar_responses_read_as_llhttp_reads_them(
    data: bytes, is_head: bool, limit: int, cuts: list[int]
) -> None:
    reads = pieces(data, cuts)
    check(data, is_head, limit, read(reads, is_head, limit))


@FEW
@given(data=mutated_responses(), is_head=IS_HEAD, limit=LIMITS, cuts=CUTS)
def test_mutated_responses_read_as_llhttp_reads_them(
    data: bytes, is_head: bool, limit: int, cuts: list[int]
) -> None:
    reads = pieces(data, cuts)
    check(data, is_head, limit, read(reads, is_head, limit))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(grammar_responses(), mutated_responses(), valid_responses()),
    is_head=IS_HEAD,
    limit=LIMITS,
    cuts=CUTS,
)
@example(data=b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", is_head=False, limit=0, cuts=[])
def test_where_the_reads_split_does_not_matter(
    data: bytes, is_head: bool, limit: int, cuts: list[int]
) -> None:
    check(data, is_head, limit, check_splits(data, is_head, limit, cuts))


# -- the edges, one by one -----------------------------------------------------------------

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
LENGTH_0 = b"Content-Length: 0\r\n\r\n"


def edge(name: str, data: bytes, expected: Result, is_head: bool = False) -> Any:
    """A response, and the reader's answer to it in one piece: ``("done", status,
    keep_alive, body_size, end)`` (end None: the whole), ``("handover", body_size)``,
    ``("refused",)`` (failed, or handed over for llhttp to refuse), ``("more",)`` or
    ``("agrees",)`` (whatever it is, as llhttp)."""
    return pytest.param(data, is_head, expected, id=name)


EDGES = [
    edge(
        "length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", ("done", 200, True, 5, None)
    ),
    edge(
        "close",
        b"HTTP/1.1 404 NF\r\nConnection: close\r\n" + LENGTH_0,
        ("done", 404, False, 0, None),
    ),
    edge(
        "chunked",
        CHUNKED_HEAD + b"5\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n",
        ("done", 200, True, 15, None),
    ),
    edge(
        "chunk-size-upper-and-zeros",
        CHUNKED_HEAD + b"000Ab\r\n" + b"x" * 171 + b"\r\n0\r\n\r\n",
        ("done", 200, True, 171, None),
    ),
    edge(
        "head-with-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        ("done", 200, True, 0, None),
        is_head=True,
    ),
    edge("head-with-chunked", CHUNKED_HEAD, ("done", 200, True, 0, None), is_head=True),
    edge(
        "204-with-length",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        ("done", 204, True, 0, None),
    ),
    edge(
        "304-with-length",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
        ("done", 304, True, 0, None),
    ),
    edge(
        "next-response-after",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
        ("done", 200, True, 1, 39),
    ),
    edge("empty-reason", b"HTTP/1.1 200 \r\n" + LENGTH_0, ("done", 200, True, 0, None)),
    edge("chunk-extension", CHUNKED_HEAD + b"5;a=b\r\nhello\r\n0\r\n\r\n", ("handover", 0)),
    edge(
        "extension-mid-body",
        CHUNKED_HEAD + b"5\r\nhello\r\n3;x\r\nabc\r\n0\r\n\r\n",
        ("handover", 5),
    ),
    edge("trailers", CHUNKED_HEAD + b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", ("handover", 5)),
    edge("last-chunk-extension", CHUNKED_HEAD + b"5\r\nhello\r\n0;x\r\n\r\n", ("handover", 5)),
    edge(
        "long-chunk-size-line",
        CHUNKED_HEAD + b"0" * 30 + b"5\r\nhello\r\n0\r\n\r\n",
        ("handover", 0),
    ),
    edge("bare-lf-in-head", b"HTTP/1.1 200 OK\n" + LENGTH_0, ("handover", 0)),
    edge("bare-lf-blank-line", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", ("handover", 0)),
    edge("cr-in-status-line", b"HTTP/1.1 200 O\rK\r\n" + LENGTH_0, ("handover", 0)),
    edge("no-reason", b"HTTP/1.1 200\r\n" + LENGTH_0, ("handover", 0)),
    edge("obs-text-in-value", b"HTTP/1.1 200 OK\r\nX-A: caf\xe9\r\n" + LENGTH_0, ("handover", 0)),
    edge("http-1.0", b"HTTP/1.0 200 OK\r\n" + LENGTH_0, ("handover", 0)),
    edge(
        "interim", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n" + LENGTH_0, ("handover", 0)
    ),
    edge("blank-before-colon", b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", ("handover", 0)),
    edge("folded", b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n" + LENGTH_0, ("handover", 0)),
    edge(
        "both-framings", CHUNKED_HEAD[:-2] + b"Content-Length: 5\r\n\r\n0\r\n\r\n", ("handover", 0)
    ),
    edge("signed-length", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", ("handover", 0)),
    edge(
        "duplicate-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        ("handover", 0),
    ),
    edge("close-delimited", b"HTTP/1.1 200 OK\r\n\r\nuntil the close", ("handover", 0)),
    edge(
        "connection-upgrade",
        b"HTTP/1.1 200 OK\r\nConnection: upgrade\r\n" + LENGTH_0,
        ("handover", 0),
    ),
    edge(
        "proxy-connection",
        b"HTTP/1.1 200 OK\r\nProxy-Connection: close\r\n" + LENGTH_0,
        ("handover", 0),
    ),
    edge("head-incomplete", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", ("more",)),
    edge("body-incomplete", CHUNKED_HEAD + b"5\r\nhel", ("more",)),
    # llhttp refuses a chunk's data not followed by CRLF: the reader refuses it too, or hands
    # it over for llhttp to refuse in its own words.
    edge("no-crlf-after-data", CHUNKED_HEAD + b"5\r\nhelloX\r\n0\r\n\r\n", ("refused",)),
    edge("lf-only-after-data", CHUNKED_HEAD + b"5\r\nhello\n0\r\n\r\n", ("refused",)),
    edge("cr-only-after-data", CHUNKED_HEAD + b"5\r\nhello\rX0\r\n\r\n", ("refused",)),
    # Where the reader and llhttp disagreed when this test was written (llhttp is the
    # reference: the reader is the one to change).
    edge("head-without-framing", b"HTTP/1.1 200 OK\r\n\r\n", ("agrees",), is_head=True),
    edge("tab-after-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\t\r\n\r\nhello", ("agrees",)),
    edge(
        "tab-after-chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n",
        ("agrees",),
    ),
    edge(
        "chunk-size-past-64-bits",
        CHUNKED_HEAD + b"10000000000000005\r\nhello\r\n0\r\n\r\n",
        ("agrees",),
    ),
    edge(
        "chunk-size-past-63-bits",
        CHUNKED_HEAD + b"8000000000000000\r\nhello\r\n0\r\n\r\n",
        ("agrees",),
    ),
    edge(
        "chunk-size-all-ones", CHUNKED_HEAD + b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n", ("agrees",)
    ),
]


@pytest.mark.parametrize(("data", "is_head", "expected"), EDGES)
def test_edges(data: bytes, is_head: bool, expected: Result) -> None:
    result = check_splits(data, is_head, DEFAULT_LIMIT, [])
    check(data, is_head, DEFAULT_LIMIT, result)
    kind = expected[0]
    if kind == "done":
        end = len(data) if expected[4] is None else expected[4]
        assert result == (*expected[:4], end)
    elif kind == "handover":
        assert (result[0], result[3]) == expected
    elif kind == "refused":
        assert result[0] in ("failed", "handover")
        assert llhttp(data, is_head).error is not None
    elif kind == "more":
        assert result == expected


def test_a_long_head_is_read_alike_in_any_reads() -> None:
    # Longer than the 16 KiB of head the reader keeps while it waits for the rest.
    data = b"HTTP/1.1 200 OK\r\n" + b"X-A: v\r\n" * 2500 + LENGTH_0
    results = read_all(
        pool(
            [([data], False, DEFAULT_LIMIT)],
            [
                ([data[:i], data[i:]], False, DEFAULT_LIMIT)
                for i in (100, 16385, 17000, len(data) - 1)
            ],
        )
    )
    for result in results:
        check(data, False, DEFAULT_LIMIT, result)
    assert {normal(data, r) for r in results} == {normal(data, results[0])}, results


def test_a_disagreement_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # The checks themselves can fail: fed answers llhttp would not give, each one does.
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    right = read([data])
    assert right == ("done", 200, True, 5, len(data))
    wrong: list[Result] = [
        ("done", 200, False, 5, len(data)),  # keep-alive
        ("done", 201, True, 5, len(data)),  # status
        ("done", 200, True, 4, len(data)),  # body
        ("done", 200, True, 5, len(data) - 1),  # end
        ("failed", "no"),  # refuses what llhttp accepts
        ("more",),  # waits for what llhttp ended
        ("handover", data[:10], 12, 0),  # drops bytes
        ("handover", data, len(data), 1),  # counts a byte twice
    ]
    for result in wrong:
        with pytest.raises(AssertionError):
            check(data, False, DEFAULT_LIMIT, result)
    bad = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"
    with pytest.raises(AssertionError, match="accepts what llhttp refuses"):
        check(bad, False, DEFAULT_LIMIT, ("done", 200, True, 5, len(bad)))

    # ... and so can the split check, with a reader whose answer depends on the reads.
    def fickle(cases: list[Case]) -> list[Result]:
        return [("more",) if len(reads) > 1 else right for reads, _, _ in cases]

    monkeypatch.setattr(sys.modules[__name__], "read_all", fickle)
    with pytest.raises(AssertionError, match="split as"):
        check_splits(data, False, DEFAULT_LIMIT, [])
