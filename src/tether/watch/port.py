"""Watch source ``port:N``: this host's sockets at local port N, by TCP state.

Read from /proc/net/tcp and /proc/net/tcp6, where each socket is a line such as::

    sl  local_address rem_address   st tx_queue rx_queue ...
     0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 ...

(addresses and ports in hex; ``st`` is the state). The sockets whose *local* port is N are
the server's side of its connections; the listening socket itself is left out.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["OPEN_STATES", "STATES", "parse"]

STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}

OPEN_STATES = ("ESTABLISHED", "CLOSE_WAIT", "SYN_RECV")
"""States in which the server still holds a client's connection. CLOSE_WAIT counts: the
client has gone but the server has not closed its side, which is a leak of its own."""

PATHS = ("/proc/net/tcp", "/proc/net/tcp6")


def parse(text: str, port: int) -> Counter[str]:
    """Sockets with local port ``port`` in one /proc/net/tcp table, by state name."""
    counts: Counter[str] = Counter()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or ":" not in fields[1]:
            continue
        if int(fields[1].rsplit(":", 1)[1], 16) != port:
            continue
        state = STATES.get(fields[3].upper(), fields[3])
        if state != "LISTEN":
            counts[state] += 1
    return counts


def metrics(counts: Counter[str]) -> dict[str, float]:
    """The figures a sample keeps: open connections, and the states worth watching."""
    return {
        "open": float(sum(counts[state] for state in OPEN_STATES)),
        "established": float(counts["ESTABLISHED"]),
        "close_wait": float(counts["CLOSE_WAIT"]),
        "time_wait": float(counts["TIME_WAIT"]),
    }


def read(port: int) -> dict[str, float]:
    """One sample: both tables (IPv4 and IPv6) read and counted."""
    total: Counter[str] = Counter()
    for path in PATHS:
        try:
            with open(path, encoding="ascii") as table:
                total += parse(table.read(), port)
        except FileNotFoundError:
            continue  # no IPv6 on this host
    return metrics(total)
