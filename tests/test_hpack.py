"""HPACK (RFC 7541) in the compiled extension (``_hpack.pxi`` in tether.engine._compiled).

Held to the RFC's own examples (Appendix C) byte for byte, to the ``hpack`` library (python-
hyper) both ways on random header lists, and to each compression error the decoder must
find. The HPACK bomb test holds the decoder's memory to its header list limit.
"""

from __future__ import annotations

from collections.abc import Sequence

import hpack
import pytest
from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("tether.engine._compiled", reason="the compiled extension is not built")

from tether.engine._compiled import (
    HpackDecoder,
    encode_block,
    hpack_int,
    hpack_read_int,
    huffman_decode,
    huffman_encode,
)

Fields = list[tuple[bytes, bytes]]
EXAMPLES = settings(max_examples=200)


def entry_size(fields: Sequence[tuple[bytes, bytes]]) -> int:
    """RFC 7541 4.1 (and RFC 9113's header list size): 32 + name + value per field."""
    return sum(32 + len(name) + len(value) for name, value in fields)


# -- integers (RFC 7541 5.1, C.1) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "prefix", "encoded"),
    [(10, 5, "0a"), (1337, 5, "1f9a0a"), (42, 8, "2a")],
    ids=["C.1.1", "C.1.2", "C.1.3"],
)
def test_integer_examples(value: int, prefix: int, encoded: str) -> None:
    data = bytes.fromhex(encoded)
    assert hpack_int(value, prefix) == data
    assert hpack_read_int(data, prefix) == (value, len(data))
    assert hpack_read_int(data + b"\xff", prefix) == (value, len(data))  # what follows: not read


def test_integer_keeps_the_bits_above_its_prefix() -> None:
    assert hpack_int(10, 5, 0xE0) == b"\xea"
    assert hpack_int(1337, 5, 0x20) == bytes.fromhex("3f9a0a")
    assert hpack_read_int(b"\xea", 5) == (10, 1)


@EXAMPLES
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_integers_round_trip(value: int, prefix: int) -> None:
    data = hpack_int(value, prefix)
    assert hpack_read_int(data, prefix) == (value, len(data))
    assert bytes(encode_integer(value, prefix)) == data


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "ends inside an integer"),
        (b"\x1f", "ends inside an integer"),
        (b"\x1f\x9a", "ends inside an integer"),
        (b"\x1f\xff\xff\xff\xff\x0f", "past 2\\^32"),  # 2^32 + 30: too large
        (b"\x1f" + b"\x80" * 5 + b"\x00", "continuation bytes"),  # small, but too long
    ],
)
def test_integer_errors(data: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        hpack_read_int(data, 5)


# -- Huffman codes (RFC 7541 5.2, Appendix B) ------------------------------------------------

# The strings Huffman-coded in RFC 7541 C.4 and C.6.
HUFFMAN_EXAMPLES = [
    (b"www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
    (b"no-cache", "a8eb10649cbf"),
    (b"custom-key", "25a849e95ba97d7f"),
    (b"custom-value", "25a849e95bb8e8b4bf"),
    (b"302", "6402"),
    (b"307", "640eff"),
    (b"private", "aec3771a4b"),
    (b"Mon, 21 Oct 2013 20:13:21 GMT", "d07abe941054d444a8200595040b8166e082a62d1bff"),
    (b"Mon, 21 Oct 2013 20:13:22 GMT", "d07abe941054d444a8200595040b8166e084a62d1bff"),
    (b"https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"),
    (b"gzip", "9bd9ab"),
    (
        b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    ),
]


@pytest.mark.parametrize(("text", "coded"), HUFFMAN_EXAMPLES)
def test_huffman_examples(text: bytes, coded: str) -> None:
    assert huffman_encode(text).hex() == coded
    assert huffman_decode(bytes.fromhex(coded)) == text


@EXAMPLES
@given(st.binary(max_size=300))
def test_huffman_round_trip_and_hpack_agrees(data: bytes) -> None:
    coded = huffman_encode(data)
    assert huffman_decode(coded) == data
    assert coded == HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(data)


def test_huffman_every_symbol() -> None:
    data = bytes(range(256)) * 2
    assert huffman_decode(huffman_encode(data)) == data


@pytest.mark.parametrize(
    ("coded", "match"),
    [
        (b"\xff\xff\xff\xff", "EOS"),  # EOS (30 ones), padded with 2
        (b"\x1f\xff\xff\xff\xff", "EOS"),  # "a", then EOS whole within the string
        (b"\xff", "more than 7 bits"),  # 8 bits of padding, nothing else
        (b"\x1f\xff", "more than 7 bits"),  # "a" (5 bits) and 11 of padding
        (b"\x18", "not all ones"),  # "a" and 3 zero bits
        (b"\x1e", "not all ones"),  # "a" and 110
    ],
)
def test_huffman_errors(coded: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        huffman_decode(coded)


# -- decoding: RFC 7541 Appendix C -------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "fields", "table"),
    [
        (
            "400a637573746f6d2d6b65790d637573746f6d2d686561646572",
            [(b"custom-key", b"custom-header")],
            [(b"custom-key", b"custom-header")],
        ),
        ("040c2f73616d706c652f70617468", [(b":path", b"/sample/path")], []),
        ("100870617373776f726406736563726574", [(b"password", b"secret")], []),
        ("82", [(b":method", b"GET")], []),
    ],
    ids=["C.2.1", "C.2.2", "C.2.3", "C.2.4"],
)
def test_field_examples(block: str, fields: Fields, table: Fields) -> None:
    decoder = HpackDecoder()
    assert decoder.decode_block(bytes.fromhex(block)) == fields
    assert decoder.table == table
    assert decoder.table_size == entry_size(table)
    assert decoder.list_size == entry_size(fields)
    assert not decoder.over


GET = (b":method", b"GET")
AUTHORITY = (b":authority", b"www.example.com")
NO_CACHE = (b"cache-control", b"no-cache")
CUSTOM = (b"custom-key", b"custom-value")
REQUESTS: list[tuple[Fields, Fields, int]] = [
    ([GET, (b":scheme", b"http"), (b":path", b"/"), AUTHORITY], [AUTHORITY], 57),
    (
        [GET, (b":scheme", b"http"), (b":path", b"/"), AUTHORITY, NO_CACHE],
        [NO_CACHE, AUTHORITY],
        110,
    ),
    (
        [GET, (b":scheme", b"https"), (b":path", b"/index.html"), AUTHORITY, CUSTOM],
        [CUSTOM, NO_CACHE, AUTHORITY],
        164,
    ),
]

DATE1 = (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT")
DATE2 = (b"date", b"Mon, 21 Oct 2013 20:13:22 GMT")
LOCATION = (b"location", b"https://www.example.com")
PRIVATE = (b"cache-control", b"private")
COOKIE = (b"set-cookie", b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
RESPONSES: list[tuple[Fields, Fields, int]] = [
    (
        [(b":status", b"302"), PRIVATE, DATE1, LOCATION],
        [LOCATION, DATE1, PRIVATE, (b":status", b"302")],
        222,
    ),
    (
        [(b":status", b"307"), PRIVATE, DATE1, LOCATION],
        [(b":status", b"307"), LOCATION, DATE1, PRIVATE],
        222,
    ),
    (
        [(b":status", b"200"), PRIVATE, DATE2, LOCATION, (b"content-encoding", b"gzip"), COOKIE],
        [COOKIE, (b"content-encoding", b"gzip"), DATE2],
        215,
    ),
]

SEQUENCES: dict[str, tuple[int, list[str], list[tuple[Fields, Fields, int]]]] = {
    "C.3": (
        4096,
        [
            "828684410f7777772e6578616d706c652e636f6d",
            "828684be58086e6f2d6361636865",
            "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
        ],
        REQUESTS,
    ),
    "C.4": (
        4096,
        [
            "828684418cf1e3c2e5f23a6ba0ab90f4ff",
            "828684be5886a8eb10649cbf",
            "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
        ],
        REQUESTS,
    ),
    "C.5": (
        256,
        [
            "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a3231"
            "20474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
            "4803333037c1c0bf",
            "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a6970"
            "7738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d61"
            "67653d333630303b2076657273696f6e3d31",
        ],
        RESPONSES,
    ),
    "C.6": (
        256,
        [
            "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad"
            "171863c78f0b97c8e9ae82ae43d3",
            "4883640effc1c0bf",
            "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2"
            "e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
        ],
        RESPONSES,
    ),
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_sequence_examples(name: str) -> None:
    """Three blocks on one decoder: C.3 and C.4 requests, C.5 and C.6 responses (a table of
    256 bytes, from which entries are evicted)."""
    max_table, blocks, steps = SEQUENCES[name]
    decoder = HpackDecoder(max_table=max_table)
    for block, (fields, table, size) in zip(blocks, steps, strict=True):
        assert decoder.decode_block(bytes.fromhex(block)) == fields
        assert decoder.table == table
        assert decoder.table_size == size == entry_size(table)
        assert decoder.list_size == entry_size(fields)


def test_static_table() -> None:
    """Every static entry, indexed and as the name of a literal (RFC 7541 Appendix A)."""
    decoder = HpackDecoder()
    for index, (name, value) in enumerate(HeaderTable.STATIC_TABLE, 1):
        assert decoder.decode_block(bytes([0x80 | index])) == [(name, value)]
        literal = hpack_int(index, 4) + b"\x01x"
        assert decoder.decode_block(literal) == [(name, b"x")]
    assert decoder.table == []


# -- decoding: the dynamic table ----------------------------------------------------------------


def literal(name: bytes | int, value: bytes, first: int = 0x40) -> bytes:
    """A literal field, with incremental indexing unless ``first`` says otherwise, its name
    a table index or a raw string, its value raw."""
    prefix = 6 if first == 0x40 else 4
    if isinstance(name, int):
        head = hpack_int(name, prefix, first)
    else:
        head = bytes([first]) + hpack_int(len(name), 7) + name
    return head + hpack_int(len(value), 7) + value


def test_a_referenced_entry_evicted_later_in_the_block() -> None:
    """A field that references an entry keeps its bytes when a later field of the block
    evicts that entry, and an insert named by the entry it evicts keeps the name."""
    a = (b"x-a", b"a" * 3000)
    b = (b"x-a", b"b" * 3000)
    block = literal(a[0], a[1]) + b"\xbe" + literal(62, b[1]) + b"\xbe"
    decoder = HpackDecoder()
    assert decoder.decode_block(block) == [a, a, b, b]
    assert decoder.table == [b]


def test_an_entry_larger_than_the_table_empties_it() -> None:
    decoder = HpackDecoder(max_table=100)
    decoder.decode_block(literal(b"x-a", b"1"))
    assert decoder.table == [(b"x-a", b"1")]
    big = (b"x-b", b"v" * 80)  # 32 + 3 + 80 > 100: not an error (RFC 7541 4.4)
    assert decoder.decode_block(literal(*big)) == [big]
    assert decoder.table == []
    assert decoder.table_size == 0


def test_size_updates_at_the_start() -> None:
    """Several in a row at the start of a block (as after two SETTINGS changes), each one
    evicting what no longer fits."""
    decoder = HpackDecoder()
    decoder.decode_block(literal(b"x-a", b"1") + literal(b"x-b", b"2"))
    assert decoder.decode_block(hpack_int(40, 5, 0x20) + b"\x82") == [(b":method", b"GET")]
    assert decoder.table == [(b"x-b", b"2")]
    block = hpack_int(0, 5, 0x20) + hpack_int(4096, 5, 0x20) + literal(b"x-c", b"3")
    assert decoder.decode_block(block) == [(b"x-c", b"3")]
    assert decoder.table == [(b"x-c", b"3")]


def test_a_table_of_nothing() -> None:
    decoder = HpackDecoder(max_table=0)
    assert decoder.decode_block(literal(b"x-a", b"1") + b"\x82") == [
        (b"x-a", b"1"),
        (b":method", b"GET"),
    ]
    assert decoder.table == []


def test_the_ring_wraps() -> None:
    """Entries of every length through a small table, many times round: each block's table
    is the encoder's."""
    encoder = hpack.Encoder()
    encoder.header_table_size = 300
    decoder = HpackDecoder(max_table=300)
    for i in range(400):
        fields = [(b"x-%d" % (i % 7), b"v" * (i * 37 % 200)), (b"x-%d" % (i % 5), b"w" * i)]
        assert decoder.decode_block(encoder.encode(fields, huffman=i % 2 == 0)) == fields
        assert decoder.table == list(encoder.header_table.dynamic_entries)
        assert decoder.table_size == entry_size(decoder.table)


# -- decoding: the errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "match"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "index 62 is past the tables"),
        (b"\xff\x80\x01", "index 255 is past the tables"),
        (literal(62, b"v"), "index 62 is past the tables"),
        (literal(b"x-a", b"1") + b"\xbf", "index 63 is past the tables"),
        (b"\x3f\xe2\x1f", "size update to 4097, above the 4096"),
        (b"\x82\x20", "size update after a header field"),
        (b"\x20\x82\x3f\xe1\x1f", "size update after a header field"),
        (b"\xff", "ends inside an integer"),
        (b"\x0f", "ends inside an integer"),
        (b"\x00\x7f", "ends inside an integer"),
        (b"\xff\xff\xff\xff\xff\x0f", "past 2\\^32"),
        (b"\xff" + b"\x80" * 5 + b"\x00", "continuation bytes"),
        (b"\x00", "ends before a string literal"),
        (b"\x00\x01a", "ends before a string literal"),
        (b"\x04", "ends before a string literal"),
        (b"\x00\x05abc", "string literal of 5 bytes, with 3 left"),
        (b"\x04\x02a", "string literal of 2 bytes, with 1 left"),
        (b"\x00\x01a\x84\xff\xff\xff\xff", "EOS"),
        (b"\x00\x81\xff\x01a", "more than 7 bits"),
        (b"\x04\x82\x1f\xff", "more than 7 bits"),
        (b"\x04\x81\x18", "not all ones"),
    ],
)
def test_errors(block: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HpackDecoder().decode_block(block)


def test_hpack_bomb() -> None:
    """One entry of about 4000 bytes, then 10,000 references to it: 40 MB of header list from
    30 kB of block. Decoding goes on (the table must stay in step) and says how large the
    list was, but keeps only what fits within max_list, and its buffer stays near that."""
    limit = 65536
    bomb = (b"x-bomb", b"v" * 4000)
    block = literal(*bomb) + b"\xbe" * 10_000
    decoder = HpackDecoder(max_list=limit)
    for _ in range(2):  # and again, on a full buffer
        fields = decoder.decode_block(block)
        assert decoder.over
        assert decoder.list_size == 10_001 * entry_size([bomb])
        assert fields == [bomb] * (limit // entry_size([bomb]))
        assert entry_size(fields) <= limit
        assert decoder.buffer_capacity <= limit + 8192
        assert decoder.table == [bomb]


def test_within_the_limit_exactly() -> None:
    fields = [(b"x-a", b"1"), (b"x-b", b"2")]
    decoder = HpackDecoder(max_list=entry_size(fields))
    assert decoder.decode_block(encode_block(fields)) == fields
    assert not decoder.over
    decoder = HpackDecoder(max_list=entry_size(fields) - 1)
    assert decoder.decode_block(encode_block(fields)) == fields[:1]
    assert decoder.over


# -- encoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "block"),
    [
        ([(b":method", b"GET")], "82"),
        ([(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"https")], "838487"),
        ([(b":scheme", b"http"), (b":status", b"404")], "868d"),
        ([(b":authority", b"www.example.com")], "018cf1e3c2e5f23a6ba0ab90f4ff"),
        ([(b":method", b"PUT")], "0203505554"),  # Huffman-coded, it is as long: raw
        ([(b"accept-encoding", b"br")], "0f01026272"),  # index 16: past the 4-bit prefix
        ([(b"custom-key", b"custom-value")], "008825a849e95ba97d7f8925a849e95bb8e8b4bf"),
        ([(b"x", b"")], "00017800"),
    ],
)
def test_encoding(fields: Fields, block: str) -> None:
    """Indexed when the static table has the field, else without indexing, the name by its
    lowest static index when it is there; each string Huffman-coded when that is shorter."""
    assert encode_block(fields).hex() == block
    assert HpackDecoder().decode_block(bytes.fromhex(block)) == fields


def test_encoding_wants_lower_case_names() -> None:
    with pytest.raises(ValueError, match="not lower-case"):
        encode_block([(b"Host", b"example.com")])


# -- against the hpack library ------------------------------------------------------------------

STATIC_NAMES = sorted({name for name, _ in HeaderTable.STATIC_TABLE})
names = st.one_of(
    st.sampled_from(STATIC_NAMES),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'*+^`|~", min_size=1, max_size=24).map(
        str.encode
    ),
)
values = st.one_of(
    st.sampled_from([value for _, value in HeaderTable.STATIC_TABLE]),
    st.binary(max_size=120).map(lambda b: bytes(0x20 + c % 95 for c in b)),  # visible, space
)
fields = st.tuples(names, values)


@st.composite
def block_sequences(draw: st.DrawFn) -> list[Fields]:
    """Blocks whose fields come from one small pool, so that fields recur and the encoder
    indexes them."""
    pool = draw(st.lists(fields, min_size=1, max_size=10))
    picks = st.lists(st.sampled_from(pool), max_size=12)
    return draw(st.lists(picks, min_size=1, max_size=5))


@EXAMPLES
@given(
    block_sequences(),
    st.lists(st.booleans(), min_size=5, max_size=5),
    st.lists(st.sampled_from([None, 0, 64, 256, 1024, 4096]), min_size=5, max_size=5),
    st.booleans(),
)
def test_hpack_encoder_to_our_decoder(
    blocks: list[Fields], huffman: list[bool], sizes: list[int | None], sensitive: bool
) -> None:
    """hpack's blocks (its dynamic table on, Huffman or not, a table size change before some
    blocks, which it sends as a size update) decoded here: the fields, and the table the
    encoder has."""
    encoder = hpack.Encoder()
    decoder = HpackDecoder()
    for block, huff, size in zip(blocks, huffman, sizes, strict=False):
        if size is not None:
            encoder.header_table_size = size
        if sensitive:  # the last field never indexed (RFC 7541 6.2.3)
            sent: list[hpack.HeaderTuple] = [hpack.HeaderTuple(n, v) for n, v in block[:-1]]
            sent += [hpack.NeverIndexedHeaderTuple(n, v) for n, v in block[-1:]]
            data = encoder.encode(sent, huffman=huff)
        else:
            data = encoder.encode(block, huffman=huff)
        assert decoder.decode_block(data) == block
        assert decoder.table == list(encoder.header_table.dynamic_entries)
        assert decoder.table_size == entry_size(decoder.table)
        assert decoder.list_size == entry_size(block)


@EXAMPLES
@given(block_sequences())
def test_our_encoder_to_hpack_decoder(blocks: list[Fields]) -> None:
    """Our blocks decoded by hpack (one decoder, several blocks) and by ours: the fields, and
    no dynamic table either side."""
    theirs = hpack.Decoder()
    ours = HpackDecoder()
    for fields in blocks:
        block = encode_block(fields)
        assert [tuple(field) for field in theirs.decode(block, raw=True)] == fields
        assert ours.decode_block(block) == fields
        assert not theirs.header_table.dynamic_entries
        assert ours.table == []


@EXAMPLES
@given(block_sequences(), st.integers(0, 400), st.data())
def test_mangled_blocks_decode_or_fail_cleanly(
    blocks: list[Fields], limit: int, data: st.DataObject
) -> None:
    """A block with bytes changed, cut short and trailed by any bytes, after a table is built:
    a ValueError, or the fields hpack decodes (when it does), those within the list limit
    kept, and a table in step with hpack's."""
    encoder = hpack.Encoder()
    theirs = hpack.Decoder()
    ours = HpackDecoder(max_list=limit)
    for fields in blocks[:-1]:
        block = encoder.encode(fields)
        theirs.decode(block, raw=True)
        ours.decode_block(block)
    mangled = bytearray(encoder.encode(blocks[-1], huffman=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(0, 3)) if mangled else 0):
        mangled[data.draw(st.integers(0, len(mangled) - 1))] = data.draw(st.integers(0, 255))
    del mangled[data.draw(st.integers(0, len(mangled))) :]
    mangled += data.draw(st.binary(max_size=20))
    try:
        kept = ours.decode_block(bytes(mangled))
    except ValueError:
        return
    every = [(bytes(name), bytes(value)) for name, value in theirs.decode(bytes(mangled), raw=True)]
    assert ours.list_size == entry_size(every)
    assert kept == every[: len(kept)]
    assert entry_size(kept) <= limit < entry_size(every[: len(kept) + 1]) or kept == every
    assert ours.over == (kept != every)
    assert ours.table == list(theirs.header_table.dynamic_entries)
