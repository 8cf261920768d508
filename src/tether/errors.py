"""One exception tree for tether.

::

    TetherError                  anything tether raises on purpose
    ├── InputError               a records file or option is wrong (exit 2)
    │   └── RecordError          one record is wrong: names its source and line
    └── RequestError             one request failed; becomes an Outcome's error, never escapes a run
        ├── ConnectError         could not open the connection (refused, DNS, TLS, connect timeout)
        ├── TimeoutError_        a response-header or total timeout ran out
        ├── ProtocolError        the server sent something that is not HTTP/1.1
        │   └── HeadersTooLarge  a response head longer than the client's limit
        ├── ConnectionClosed     the server closed or reset the connection mid-response
        │   └── StaleConnection  closed before any byte of the response, on a reused connection
        │       └── StreamRefused  an h2 stream the server never processed (GOAWAY, refused)
        ├── StreamReset          the server reset an HTTP/2 stream (RST_STREAM) with an error
        └── TooManyRedirects     more redirect hops than allowed

Request errors carry a short ``kind`` used as the key of the summary's error counts.
"""

from __future__ import annotations


class TetherError(Exception):
    """Base of every error tether raises on purpose."""


class InputError(TetherError):
    """A records file, option or target is unusable; the run cannot start or go on."""


class RecordError(InputError):
    """One record is malformed. The message names the source and the line."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        super().__init__(f"{source}:{line}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


class RequestError(TetherError):
    """One request failed. ``kind`` is a stable short name for counting."""

    kind = "request"


class ConnectError(RequestError):
    """The connection could not be opened."""

    kind = "connect"


class TimeoutError_(RequestError):
    """A response-header or total timeout ran out."""

    kind = "timeout"


class ProtocolError(RequestError):
    """The server's bytes are not a valid HTTP/1.1 response."""

    kind = "protocol"


class HeadersTooLarge(ProtocolError):
    """A response head (interim 1xx heads included) ran past the client's size limit: no end
    in sight, or no end that a client should wait for (Go's MaxResponseHeaderBytes)."""

    kind = "headers_too_large"


class ConnectionClosed(RequestError):
    """The server closed or reset the connection before the response was complete."""

    kind = "closed"


class StaleConnection(ConnectionClosed):
    """A reused connection closed before any response byte: the keep-alive race.

    ``written`` says whether any of the request reached the socket; it decides, with the method,
    whether a retry is safe (the rule of Go's http.Transport).
    """

    kind = "stale"

    def __init__(self, message: str, *, written: bool) -> None:
        super().__init__(message)
        self.written = written


class StreamRefused(StaleConnection):
    """An HTTP/2 stream the server says it never processed: one above the last stream id of
    its GOAWAY, or reset with REFUSED_STREAM (RFC 9113 8.7). It is retried by the stale
    connection's rule, and counted apart (``retried_goaway``)."""

    kind = "refused"

    def __init__(self, message: str) -> None:
        # Its request was written: retried when it may be replayed, as Go retries.
        super().__init__(message, written=True)


class StreamReset(RequestError):
    """The server reset an HTTP/2 stream (RST_STREAM) with an error code; the connection
    goes on carrying the others."""

    kind = "stream_reset"


class Unsent(RequestError):
    """An open-model request that waited for room (the in-flight cap, or a connection)
    past ``--timeout`` from when it was due, and was never sent."""

    kind = "unsent"


class TooManyRedirects(RequestError):
    """More redirect hops than ``follow_redirects`` allows."""

    kind = "redirects"
