"""The tests' own service with sessions: ``POST /login`` issues a token (JSON) and a session
cookie, ``GET /me`` answers 200 only with both from the same login, ``GET /visit`` with the
cookie of any login, ``POST /items`` creates
an item (its id in the body and in Location) that ``GET /items/ID`` reads back. ``GET
/prefs`` sets a cookie with attributes (Max-Age, Domain) and ``GET /both`` answers 200 only
with it and a login's token and cookie. It counts what it served, so a test can hold a flow
run to the server's own figures."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import Counter
from dataclasses import dataclass, field

from servers import ConnInfo, ThreadServer, read_request, response

LOGIN = {
    "method": "POST",
    "url": "/login",
    "body": '{"user": "a"}',
    "expect": {"status": 200},
    "capture": {"token": {"json": "$.token"}, "sid": {"cookie": "sid"}},
}
"""The service's login as a flow's record: its token and its cookie captured."""
ME = {"url": "/me", "headers": {"Authorization": "Bearer {{token}}"}, "expect": {"status": 200}}
"""A ``GET /me`` with the login's token (and, from the jar, its cookie)."""


@dataclass
class Sessions:
    """What the service knows: logins by token (their cookie), items, and its counts."""

    tokens: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    users: Counter[str] = field(default_factory=Counter)  # logins per user name
    lock: threading.Lock = field(default_factory=threading.Lock)
    numbers: itertools.count[int] = field(default_factory=itertools.count)

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        """One request's response, counted."""
        with self.lock:
            if method == "POST" and target == "/login":
                return self._login(body)
            if method == "GET" and target == "/me":
                return self._me(headers)
            if method == "GET" and target == "/visit":
                return self._visit(headers)
            if method == "GET" and target == "/prefs":
                self.counts["prefs"] += 1
                cookie = ("Set-Cookie", "pref=dark; Max-Age=3600; Domain=127.0.0.1; Path=/")
                return response(200, b"saved", [cookie])
            if method == "GET" and target == "/both":
                return self._both(headers)
            if method == "POST" and target == "/items":
                return self._create(headers, body)
            if method == "GET" and target.startswith("/items/"):
                return self._read(target.removeprefix("/items/"))
            self.counts["unknown"] += 1
            return response(404, b"no such thing")

    def _login(self, body: bytes) -> bytes:
        try:
            user = json.loads(body)["user"]
        except (ValueError, KeyError, TypeError):
            self.counts["bad login"] += 1
            return response(400, b"give a user")
        n = next(self.numbers)
        token, sid = f"tok{n}", f"sid{n}"
        self.tokens[token] = sid
        self.counts["login"] += 1
        self.users[str(user)] += 1
        doc = json.dumps({"token": token, "user": user}).encode()
        cookie = ("Set-Cookie", f"sid={sid}; Path=/; HttpOnly")
        return response(200, doc, [("Content-Type", "application/json"), cookie])

    def _authorised(self, headers: dict[str, str]) -> bool:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        cookies = dict(
            part.strip().partition("=")[::2] for part in headers.get("cookie", "").split(";")
        )
        return token in self.tokens and cookies.get("sid") == self.tokens[token]

    def _me(self, headers: dict[str, str]) -> bytes:
        if not self._authorised(headers):
            self.counts["refused"] += 1
            return response(401, b"who are you?")
        self.counts["me"] += 1
        return response(200, b'{"me": true}', [("Content-Type", "application/json")])

    def _both(self, headers: dict[str, str]) -> bytes:
        cookies = dict(
            part.strip().partition("=")[::2] for part in headers.get("cookie", "").split(";")
        )
        if not self._authorised(headers) or cookies.get("pref") != "dark":
            self.counts["refused"] += 1
            return response(401, b"who are you, and what do you like?")
        self.counts["both"] += 1
        return response(200, b"both")

    def _visit(self, headers: dict[str, str]) -> bytes:
        # A browser's page: the session cookie alone.
        cookies = dict(
            part.strip().partition("=")[::2] for part in headers.get("cookie", "").split(";")
        )
        if cookies.get("sid") not in self.tokens.values():
            self.counts["refused"] += 1
            return response(401, b"log in first")
        self.counts["visit"] += 1
        return response(200, b"welcome back")

    def _create(self, headers: dict[str, str], body: bytes) -> bytes:
        if not self._authorised(headers):
            self.counts["refused"] += 1
            return response(401, b"who are you?")
        item = str(next(self.numbers))
        self.items[item] = body.decode()
        self.counts["created"] += 1
        doc = json.dumps({"id": item}).encode()
        return response(201, doc, [("Location", f"/items/{item}")])

    def _read(self, item: str) -> bytes:
        if item not in self.items:
            self.counts["missing"] += 1
            return response(404, b"no such item")
        self.counts["read"] += 1
        return response(200, self.items[item].encode())


def session_server() -> tuple[ThreadServer, Sessions]:
    """The service (keep-alive), not started, and what it counts."""
    sessions = Sessions()

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            conn.count_request()
            writer.write(sessions.answer(req.method, req.target, req.headers, req.body))
            await writer.drain()

    return ThreadServer(handler), sessions
