"""HTTP/2 servers that break the protocol on purpose (:mod:`h2hostile`), against whichever
HTTP/2 connection tether runs: the compiled one, or the pure-Python one on h2
(``TETHER_PURE_PYTHON=1``). What any correct client must do, not one library's way of it:

- the run ends within :data:`BOUND_S` (well inside the requests' :data:`TIMEOUT`: a client
  that only times out fails here);
- the request for ``/hostile`` fails with the error kind its test names, and its error says
  what went wrong in the words its test names (regular expressions, matched ignoring case:
  ``WORDS`` below, one set per behaviour);
- the request before it and the one after it (a new connection, if the fault ended the
  first) succeed;
- the process's peak memory grows by less than :data:`MOST_GROWTH` over the run, and a
  flood ends before the server's own bound on it;
- nothing is logged as an unhandled error (no "Exception in callback", "Task exception was
  never retrieved", no traceback).

Per behaviour, the error kind and the words:

================================  ===================  =====================================
behaviour                         kind                 words
================================  ===================  =====================================
continuation_flood                protocol             ``CONTINUATION``
hpack_bomb                        headers_too_large    ``header``
window_overflow (stream 0)        protocol             ``flow.control``
stream_window_overflow            protocol             ``flow.control``
settings_flood                    protocol             ``SETTINGS``, ``flood``
ping_flood                        protocol             ``PING``, ``flood``
no_settings_ack                   protocol             ``SETTINGS``, ``ack``
data_beyond_content_length        protocol             ``content-length``
uppercase_field                   protocol             ``upper.?case``
connection_specific_field         protocol             ``connection.specific``
transfer_encoding_field           protocol             ``connection.specific``
missing_status                    protocol             ``:status``
================================  ===================  =====================================
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import tether
from h2hostile import BOMB_REFERENCES, BOMB_VALUE, FLOOD_BYTES, HOSTILE, H2Hostile
from tether import ClientOptions, Record
from tether.engine.options import default_of
from tether.metrics.summary import Summary

TIMEOUT = 2.5
"""Each request's whole timeout: a bound on a run whatever the client does."""
BOUND_S = 2.0
"""How long a run may take (no behaviour here should take a correct client a second)."""
MOST_GROWTH = 32 << 20
"""How much the process's peak RSS may grow over a run (the server's thread included)."""

RECORDS = [Record("GET", "/before"), Record("GET", HOSTILE), Record("GET", "/after")]
"""In turn (-c 1): the one in the middle meets the behaviour."""

UNHANDLED = ("Exception in callback", "Task exception was never retrieved", "Traceback")


@dataclass
class Ran:
    """A run against a hostile server: its summary, how long it took, how much the peak
    RSS grew over it, and what each flood of the server's wrote before it stopped."""

    summary: Summary
    seconds: float
    growth: int
    flooded: list[int]

    def error(self) -> tuple[str | None, str]:
        """The kind and the text of the one failed request, which must be ``/hostile``'s."""
        (example,) = self.summary.to_dict()["error_examples"]
        assert example["url"].endswith(HOSTILE), example
        return example["kind"], example["error"] or ""


def hostile_run(
    behaviour: str, records: list[Record] = RECORDS, concurrency: int = 1, **options: Any
) -> Ran:
    """``records`` sent to an :class:`H2Hostile` with ``behaviour``, over h2c."""
    with H2Hostile(behaviour) as server:
        before = _reset_peak()
        start = time.monotonic()
        summary = tether.run(
            records,
            target=server.url,
            concurrency=concurrency,
            http2_prior_knowledge=True,
            timeout=TIMEOUT,
            **options,
        )
        seconds = time.monotonic() - start
        growth = _status("VmHWM") - before
        flooded = server.flooded
    return Ran(summary, seconds, growth, flooded)


def assert_failed_alone(ran: Ran, kind: str, *words: str) -> None:
    """The hostile request failed with ``kind``, its error saying each of ``words``; the
    others succeeded; the run was quick and its memory bounded."""
    got_kind, said = ran.error()
    assert got_kind == kind, said
    for word in words:
        assert re.search(word, said, re.IGNORECASE), f"{word!r} not in {said!r}"
    assert ran.summary.ok == 2 and ran.summary.errors == 1
    assert ran.seconds < BOUND_S
    assert ran.growth < MOST_GROWTH, f"peak RSS grew by {ran.growth:,} bytes"


def _status(key: str) -> int:
    """A figure of /proc/self/status, in bytes (VmRSS: now; VmHWM: the peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/self/status")


def _reset_peak() -> int:
    """Reset the peak RSS (VmHWM) to the RSS now, and return that."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # Linux 4.0+: VmHWM := VmRSS
    return _status("VmRSS")


@pytest.fixture(scope="module", autouse=True)
def warmed() -> None:
    """One run before the others, so that what a first run loads (modules, the loop's
    first allocations: some 20 MB) is not counted as a hostile server's doing."""
    with H2Hostile("missing_status") as server:
        summary = tether.run([RECORDS[0]], target=server.url, http2_prior_knowledge=True)
    assert summary.ok == 1


@pytest.fixture(autouse=True)
def nothing_unhandled(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    yield
    said = "\n".join(r.getMessage() for r in caplog.records) + capsys.readouterr().err
    for sign in UNHANDLED:
        assert sign not in said


# --- floods ----------------------------------------------------------------------------------


def test_a_continuation_flood_ends_the_connection() -> None:
    """A header block without end: HEADERS without END_HEADERS, then CONTINUATION frames of
    well-formed fields for as long as the client takes them. The client ends it."""
    ran = hostile_run("continuation_flood")
    assert_failed_alone(ran, "protocol", "CONTINUATION")
    (flooded,) = ran.flooded
    assert flooded < FLOOD_BYTES  # the client ended it, not the server's bound


@pytest.mark.parametrize(
    ("behaviour", "frame"),
    [
        ("settings_flood", "SETTINGS"),
        ("ping_flood", "PING"),
    ],
)
def test_a_control_frame_flood_ends_the_connection(behaviour: str, frame: str) -> None:
    """SETTINGS (PING) frames without end, and nothing read of what the client writes back:
    the client ends the connection (ENHANCE_YOUR_CALM) rather than ack without bound."""
    ran = hostile_run(behaviour)
    assert_failed_alone(ran, "protocol", frame, "flood")
    (flooded,) = ran.flooded
    assert flooded < FLOOD_BYTES


def test_an_hpack_bomb_fails_its_stream_as_headers_too_large() -> None:
    """One field of 4 KB in the dynamic table, then named 16,000 times: 64 MB of fields
    from 20 KB on the wire, far past the default limit (1 MiB), which applies as the block
    is decoded, not once it is."""
    assert BOMB_REFERENCES * len(BOMB_VALUE) > 32 * default_of(
        ClientOptions, "max_response_header_bytes"
    )
    ran = hostile_run("hpack_bomb")
    assert_failed_alone(ran, "headers_too_large", "header")


# --- flow control, SETTINGS ----------------------------------------------------------------


@pytest.mark.parametrize("behaviour", ["window_overflow", "stream_window_overflow"])
def test_a_window_past_2_31_is_a_flow_control_error(behaviour: str) -> None:
    """A WINDOW_UPDATE taking the connection's window (or the stream's) past 2^31-1, then a
    good response: FLOW_CONTROL_ERROR for the connection (or at least the stream), so the
    response does not count."""
    assert_failed_alone(hostile_run(behaviour), "protocol", "flow.control")


def test_settings_never_acknowledged_end_the_connection() -> None:
    """The server answers, but never acknowledges the client's SETTINGS: past the settings
    timeout the connection ends (SETTINGS_TIMEOUT), failing the request it carried; the
    requests answered before it stand."""
    ran = hostile_run("no_settings_ack", settings_timeout=0.5)
    assert_failed_alone(ran, "protocol", "SETTINGS", "ack")
    assert ran.seconds >= 0.5


def test_the_settings_timeout_is_nghttp2s() -> None:
    assert default_of(ClientOptions, "settings_timeout") == 10.0


# --- malformed responses (RFC 9113 8.1.1, 8.2, 8.3.2) --------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "words"),
    [
        ("data_beyond_content_length", "content-length"),
        ("uppercase_field", "upper.?case"),
        ("connection_specific_field", "connection.specific"),
        ("transfer_encoding_field", "connection.specific"),
        ("missing_status", ":status"),
        ("status_2000", ":status"),
        ("status_20", ":status"),
        ("status_abc", ":status"),
        ("status_2x0", ":status"),
    ],
)
def test_a_malformed_response_fails_its_request(behaviour: str, words: str) -> None:
    """Otherwise whole (headers, body, END_STREAM): a client that does not check would
    count it a success."""
    assert_failed_alone(hostile_run(behaviour), "protocol", words)


@pytest.mark.parametrize("behaviour", ["uppercase_field", "connection_specific_field"])
def test_one_malformed_stream_among_good_ones_fails_alone(behaviour: str) -> None:
    """A malformed response is a stream error (RFC 9113 8.1.1): at -c 10, with every 4th
    response malformed, only those fail, and the one connection carries all the others
    (once, each failed the connection and every stream in flight on it)."""
    records = [Record("GET", HOSTILE if i % 4 == 3 else f"/ok/{i}") for i in range(100)]
    doc = hostile_run(behaviour, records, concurrency=10).summary.to_dict()
    assert (doc["requests"], doc["ok"], doc["errors"]) == (100, 75, 25), doc["error_kinds"]
    assert doc["error_kinds"] == {"protocol": 25}
    assert doc["connections"]["opened"] == 1
