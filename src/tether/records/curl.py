"""curl commands, as browsers copy them ("Copy as cURL", bash flavour): one per line, or one
per block whose lines end with ``\\`` continuations.

Understood: the URL, ``-X/--request``, ``-H/--header``, ``-d/--data``, ``--data-raw``,
``--data-binary``, ``--data-urlencode`` (POST unless ``-X`` says otherwise, form-encoded unless
a Content-Type is given), ``-G/--get`` (data to the query string), ``-I/--head``,
``-b/--cookie``, ``-A/--user-agent``, ``-e/--referer``, ``-u/--user`` (basic auth). Options
that change only how curl itself behaves (``--compressed``, ``-s``, ``-k``, ``-L``, ...) are
ignored; ``$'...'`` quoting (Chrome's, for values with special characters) is understood.
"""

from __future__ import annotations

import base64
import codecs
import re
import shlex
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any
from urllib.parse import quote_plus

from tether.errors import RecordError
from tether.http.urls import basic_auth
from tether.model import Record
from tether.records import jsonl
from tether.records.har import DROPPED_HEADERS

__all__ = ["command_object", "read"]

_DATA = {"-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--data-urlencode"}
_SKIP_WITH_VALUE = {
    "-o", "--output", "-m", "--max-time", "--connect-timeout", "-x", "--proxy", "--cacert",
    "--cert", "--key", "-w", "--write-out", "--retry", "-c", "--cookie-jar", "--resolve",
    "--limit-rate", "-T", "--upload-file", "--interface", "--http2-prior-knowledge-x",
}  # fmt: skip
_ANSI_C = re.compile(r"\$'((?:[^'\\]|\\.)*)'")


def read(stream: Iterable[str], source: str) -> Iterator[Record | RecordError]:
    """Records from the commands, one at a time."""
    for parts in _commands(stream):
        first = parts[0][0]
        text = " ".join(part for _, part in parts)
        bad = jsonl.undecodable(parts, source)
        yield bad or jsonl.item(partial(command_object, text), first, source)


def _commands(stream: Iterable[str]) -> Iterator[list[tuple[int, str]]]:
    """The (line number, text) lines of each command, continuation backslashes removed."""
    parts: list[tuple[int, str]] = []
    for number, raw in enumerate(stream, 1):
        line = raw.rstrip("\r\n")
        if not parts and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            parts.append((number, line[:-1]))
            continue
        parts.append((number, line))
        yield parts
        parts = []
    if parts:
        yield parts


def command_object(text: str) -> dict[str, Any]:
    """One curl command as a native record object; ValueError saying what is wrong."""
    try:
        words = shlex.split(_ANSI_C.sub(_unquote_ansi_c, text))
    except ValueError as exc:
        raise ValueError(f"not a shell command line: {exc}") from None
    if not words or words[0] != "curl":
        raise ValueError(f"not a curl command: {text[:60]!r}")
    return _options(words[1:])


def _unquote_ansi_c(match: re.Match[str]) -> str:
    return shlex.quote(codecs.decode(match.group(1), "unicode_escape"))


_TAKES_VALUE = {
    "-X", "--request", "-H", "--header", "-b", "--cookie", "-A", "--user-agent", "-e",
    "--referer", "-u", "--user", "--url", *_DATA, *_SKIP_WITH_VALUE,
}  # fmt: skip


def _pairs(words: list[str]) -> Iterator[tuple[str, str]]:
    """(flag, value) for each option ("" for a flag without one), ("", word) for the URL."""
    it = iter(words)
    for word in it:
        if not word.startswith("-"):
            yield "", word
            continue
        flag, value = word, ""
        if word.startswith("--") and "=" in word:
            flag, value = word.split("=", 1)
        elif not word.startswith("--") and len(word) > 2 and word[:2] in _TAKES_VALUE:
            flag, value = word[:2], word[2:]  # -XPOST
        elif flag in _TAKES_VALUE:
            following = next(it, None)
            if following is None:
                raise ValueError(f"{flag} needs a value")
            value = following
        yield flag, value


def _options(words: list[str]) -> dict[str, Any]:
    method, url, get = "", "", False
    headers: list[tuple[str, str]] = []
    data: list[str] = []
    for flag, value in _pairs(words):
        if flag in ("", "--url"):
            url = value
        elif flag in ("-X", "--request"):
            method = value
        elif flag in ("-H", "--header"):
            headers.append(_header(value))
        elif flag in _DATA:
            data.append(_urlencoded(value) if flag == "--data-urlencode" else value)
        elif flag in ("-G", "--get"):
            get = True
        elif flag in ("-I", "--head"):
            method = "HEAD"
        elif flag in _NAMED_HEADERS:
            headers.append((_NAMED_HEADERS[flag], value))
        elif flag in ("-u", "--user"):
            token = base64.b64encode(value.encode()).decode("ascii")
            headers.append(("Authorization", f"Basic {token}"))
    return _record(method, url, headers, data, get)


_NAMED_HEADERS = {
    "-b": "Cookie",
    "--cookie": "Cookie",
    "-A": "User-Agent",
    "--user-agent": "User-Agent",
    "-e": "Referer",
    "--referer": "Referer",
}


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"-H {text[:60]!r} is not 'Name: value'")
    return name.strip(), value.strip()


def _urlencoded(given: str) -> str:
    name, sep, content = given.partition("=")
    return f"{name}={quote_plus(content)}" if sep else quote_plus(given)


def _record(
    method: str, url: str, headers: list[tuple[str, str]], data: list[str], get: bool
) -> dict[str, Any]:
    if not url:
        raise ValueError("the curl command has no URL")
    url, auth = basic_auth(url)
    if auth and not any(name.lower() == "authorization" for name, _ in headers):
        headers.append(auth)
    obj: dict[str, Any] = {"url": url, "method": method or ("POST" if data and not get else "GET")}
    body = "&".join(data)
    if get and body:
        obj["url"] = url + ("&" if "?" in url else "?") + body
    elif body:
        obj["body"] = body
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    kept = [(n, v) for n, v in headers if n.lower() not in DROPPED_HEADERS]
    if kept:
        obj["headers"] = jsonl.join_headers(kept)
    return obj
