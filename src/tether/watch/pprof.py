"""Watch source ``pprof:URL``: Go's ``/debug/pprof/goroutine?debug=1``, which reads::

    goroutine profile: total 4811
    4800 @ 0x43a5d6 0x4330f7 0x46b5e4 ...
    #	0x46b5e3	internal/poll.runtime_pollWait+0x83	/usr/lib/go/src/runtime/netpoll.go:343
    #	0x4a0f4a	net/http.(*conn).serve+0x5b3	/usr/lib/go/src/net/http/server.go:2039

    1 @ 0x43a5d6 ...

Each record after the first line is a count of goroutines sharing one stack. Those whose stack
holds ``net/http.(*conn).serve`` each serve one HTTP connection.
"""

from __future__ import annotations

import re

__all__ = ["parse"]

_TOTAL = re.compile(r"^goroutine profile: total (\d+)", re.MULTILINE)
_RECORD = re.compile(r"^(\d+) @ ", re.MULTILINE)
SERVING = "net/http.(*conn).serve"


def parse(text: str) -> dict[str, float]:
    """The goroutine total and those serving connections; ValueError for other text."""
    total = _TOTAL.search(text)
    if total is None:
        raise ValueError(f"not a goroutine profile (debug=1): {text[:80]!r}")
    serving = 0
    heads = list(_RECORD.finditer(text))
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        stack = text[head.end() : following.start() if following else len(text)]
        if SERVING in stack:
            serving += int(head.group(1))
    return {"goroutines": float(total.group(1)), "serving": float(serving)}
