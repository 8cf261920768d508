"""Connection accounting inside a Python program: TCP connections opened and HTTP requests
written, per (host, port), with no change to the program.

It wraps the methods of ``socket.socket`` (and ``ssl.SSLSocket``, whose writes do not pass
through them) that every pure-Python client ends up calling: ``connect``/``connect_ex`` count a
connection; a write whose first bytes are an HTTP/1.x request line counts a request on that
connection's (host, port); ``close`` counts it closed. http.client, urllib3, requests, httpx
(sync, and async on asyncio's own loop) and aiohttp all write through these. A client that
opens its sockets in C (pycurl, uvloop's transports, grpc) is not seen: :func:`unseen` names
those that are loaded.

This file uses the standard library only, because ``tether audit`` copies it as the
``sitecustomize`` of the program it runs, whose interpreter may not have tether installed.
There it installs itself and writes its counts as JSON, at exit, into the directory named by
the ``TETHER_AUDIT_DIR`` environment variable (one file per process).
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import re
import socket
import ssl
import threading
import weakref
from typing import Any

__all__ = ["Counts", "counts", "install", "unseen"]

ENV_DIR = "TETHER_AUDIT_DIR"
# The start of an HTTP/1.x request: a method token, a space, a target, " HTTP/1.".
_REQUEST_LINE = re.compile(rb"[A-Z]{3,10} \S+ HTTP/1\.[01]\r?\n")
# Client libraries that open their sockets outside Python's socket module.
C_CLIENTS = ("pycurl", "uvloop", "grpc", "curl_cffi", "pyreqwest", "aiohttp._http_parser")

Counts = dict[str, dict[str, int]]
"""Per ``"host:port"``: ``opened``, ``requests``, ``closed``, ``open_now``, ``peak_open``."""

_lock = threading.Lock()
_counts: Counts = {}
# Each counted socket: its key, and the finalizer that counts it closed if it is dropped
# without close() (the C socket closes its descriptor then, unseen by Python code).
_where: weakref.WeakKeyDictionary[
    socket.socket, tuple[str, weakref.finalize[[str], socket.socket]]
] = weakref.WeakKeyDictionary()
# Keys of sockets detached from their descriptor, by descriptor: ssl's wrap_socket detaches
# the connected socket and builds an SSLSocket on the same descriptor.
_by_fd: dict[int, str] = {}
_installed = False
_IN_PROGRESS = (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN)


def _key(address: Any) -> str | None:
    if not (isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int)):
        return None  # a Unix socket, or not an address we can name
    host = str(address[0])
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def _entry(key: str) -> dict[str, int]:
    entry = _counts.get(key)
    if entry is None:
        entry = _counts[key] = dict.fromkeys(("opened", "requests", "closed", "open_now"), 0)
        entry["peak_open"] = 0
    return entry


def _track(sock: socket.socket, key: str) -> None:
    done = weakref.finalize(sock, _count_closed, key)
    done.atexit = False  # still open at exit is what "open_now" then says
    _where[sock] = (key, done)


def _count_closed(key: str) -> None:
    with _lock:
        entry = _entry(key)
        entry["closed"] += 1
        entry["open_now"] -= 1


def _opened(sock: socket.socket, address: Any) -> None:
    key = _key(address)
    if key is None or sock.type != socket.SOCK_STREAM or sock in _where:
        return
    with _lock:
        entry = _entry(key)
        entry["opened"] += 1
        entry["open_now"] += 1
        entry["peak_open"] = max(entry["peak_open"], entry["open_now"])
    _track(sock, key)


def _lookup(sock: socket.socket) -> str | None:
    found = _where.get(sock)
    if found is not None:
        return found[0]
    if not _by_fd:
        return None
    key = _by_fd.pop(sock.fileno(), None)
    if key is not None:
        _track(sock, key)  # a connection that changed hands (plain socket to SSLSocket)
    return key


def _wrote(sock: socket.socket, data: Any) -> None:
    key = _lookup(sock)
    if key is None:
        return
    try:
        head = bytes(memoryview(data)[:512])
    except TypeError:
        return
    if _REQUEST_LINE.match(head):
        with _lock:
            _entry(key)["requests"] += 1


def _closed(sock: socket.socket) -> None:
    if _lookup(sock) is None:
        return
    key, done = _where.pop(sock)
    done.detach()
    _count_closed(key)


def _detached(sock: socket.socket) -> None:
    found = _where.pop(sock, None)
    if found is not None:
        found[1].detach()
        _by_fd[sock.fileno()] = found[0]


def _install_connect(name: str) -> None:
    original = getattr(socket.socket, name)

    def connect(self: socket.socket, address: Any, *args: Any) -> Any:
        try:
            result = original(self, address, *args)
        except (BlockingIOError, InterruptedError):
            _opened(self, address)  # a non-blocking connect (asyncio's) completes later
            raise
        if name == "connect" or result in _IN_PROGRESS:
            _opened(self, address)
        return result

    setattr(socket.socket, name, connect)


def _install_before(cls: type, name: str, before: Any) -> None:
    original = getattr(cls, name)

    def wrapped(self: socket.socket, *args: Any) -> Any:
        before(self, *args[:1])
        return original(self, *args)

    setattr(cls, name, wrapped)


def install() -> None:
    """Start counting in this process (once; later calls do nothing)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    _install_connect("connect")
    _install_connect("connect_ex")
    # _real_close is where the descriptor is let go (close() waits for makefile() users).
    _install_before(socket.socket, "_real_close", _closed)
    _install_before(socket.socket, "detach", _detached)
    _install_before(socket.socket, "send", _wrote)
    _install_before(socket.socket, "sendall", _wrote)
    # SSLSocket overrides both; its sendall goes through its send, which alone is counted.
    _install_before(ssl.SSLSocket, "send", _wrote)


def counts() -> Counts:
    """A copy of the counts so far."""
    with _lock:
        return {key: dict(entry) for key, entry in _counts.items()}


def unseen() -> list[str]:
    """Loaded client libraries whose connections this probe cannot see."""
    import sys

    return sorted(name for name in C_CLIENTS if name in sys.modules)


def _write_at_exit(directory: str) -> None:
    doc = {"pid": os.getpid(), "counts": counts(), "unseen": unseen()}
    path = os.path.join(directory, f"{os.getpid()}.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump(doc, out)


def _as_sitecustomize() -> None:
    directory = os.environ.get(ENV_DIR)
    if directory:
        install()
        atexit.register(_write_at_exit, directory)
    _chain()


def _chain() -> None:
    # Being first on the path, this file hides any other sitecustomize (a distribution's or
    # a virtual environment's): run that one too, as Python would have.
    import importlib.machinery
    import importlib.util
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


if __name__ == "sitecustomize":
    _as_sitecustomize()
