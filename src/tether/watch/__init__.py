"""Watching the server side while a run goes on.

A watch source is given as ``KIND:WHERE`` (``--watch``, repeatable):

- ``port:8080``: this host's sockets at local port 8080 by TCP state (see :mod:`.port`);
- ``nginx:http://host/status``: nginx's stub_status (see :mod:`.nginx`);
- ``pprof:http://host/debug/pprof/goroutine?debug=1``: Go's goroutines (see :mod:`.pprof`);
- ``prom:http://host/metrics#name``: one Prometheus metric (see :mod:`.prom`).

:class:`~tether.watch.sampler.Watcher` samples them on the run's own event loop, and
:mod:`.verdict` says what the figures mean.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.engine.request import split_url
from tether.errors import InputError

__all__ = ["KINDS", "Source", "parse_source"]

KINDS = ("port", "nginx", "pprof", "prom")


@dataclass(frozen=True, slots=True)
class Source:
    """One watch source: ``kind`` (one of :data:`KINDS`), ``where`` (a port or a URL) and,
    for ``prom``, the metric's name."""

    spec: str
    kind: str
    where: str
    metric: str = ""

    @property
    def open_metric(self) -> str:
        """The figure that counts the server's open connections (the leak verdict's)."""
        return {"port": "open", "nginx": "active", "pprof": "serving", "prom": "value"}[self.kind]

    @property
    def open_label(self) -> str:
        """That figure, in words, for the verdict's sentence."""
        return {
            "port": f"server open connections (port {self.where})",
            "nginx": "nginx active connections",
            "pprof": "goroutines serving HTTP connections",
            "prom": self.metric,
        }[self.kind]


def parse_source(spec: str) -> Source:
    """A :class:`Source` from its ``KIND:WHERE`` text; InputError naming it when it is not
    one."""
    kind, sep, where = spec.partition(":")
    if not sep or kind not in KINDS:
        raise InputError(
            f"--watch {spec!r}: expected port:N, nginx:URL, pprof:URL or prom:URL#metric"
        )
    if kind == "port":
        if not where.isdigit() or not 0 < int(where) < 65536:
            raise InputError(f"--watch {spec!r}: the port must be a number from 1 to 65535")
        return Source(spec, kind, str(int(where)))
    if not where.startswith(("http://", "https://")):
        raise InputError(f"--watch {spec!r}: {kind} needs an http:// or https:// URL")
    metric = ""
    if kind == "prom":
        where, hashmark, metric = where.rpartition("#")
        if not hashmark or not metric:
            raise InputError(f"--watch {spec!r}: name the metric after '#' (prom:URL#name)")
    try:
        split_url(where)
    except InputError as exc:
        raise InputError(f"--watch {spec!r}: {exc}") from None
    return Source(spec, kind, where, metric)
