"""Watch source ``nginx:URL``: nginx's stub_status page, which reads::

Active connections: 291
server accepts handled requests
 16630948 16630948 31070465
Reading: 6 Writing: 179 Waiting: 106
"""

from __future__ import annotations

import re

__all__ = ["parse"]

_ACTIVE = re.compile(r"Active connections:\s*(\d+)")
_COUNTERS = re.compile(r"server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)")
_STATES = re.compile(r"Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)")


def parse(text: str) -> dict[str, float]:
    """The page's seven figures; ValueError when ``text`` is not a stub_status page."""
    active, counters, states = _ACTIVE.search(text), _COUNTERS.search(text), _STATES.search(text)
    if not (active and counters and states):
        raise ValueError(f"not an nginx stub_status page: {text[:80]!r}")
    accepts, handled, requests = (float(n) for n in counters.groups())
    reading, writing, waiting = (float(n) for n in states.groups())
    return {
        "active": float(active.group(1)),
        "accepts": accepts,
        "handled": handled,
        "requests": requests,
        "reading": reading,
        "writing": writing,
        "waiting": waiting,
    }
