"""URLs as they go on the wire: a --target gets the same rules as a record's URL (a space,
CR or LF is refused, never sent nor silently dropped), a URL's ``user:password@`` is sent as
Basic auth as curl sends it (never dropped), and a redirect's Location with a space or a
non-ASCII character is percent-encoded rather than put on the request line raw."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from helpers import write_records
from servers import EchoServer, response
from tether.cli import main


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode("ascii")


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("/a b", "' ' at position"),
        ("/a\r\nX-Injected: 1", "'\\r' at position"),
        ("/a\nb", "'\\n' at position"),
        ("/caf\u00e9", "'é' at position"),
    ],
    ids=["space", "crlf", "lf", "non-ascii"],
)
def test_a_target_that_cannot_go_on_the_request_line_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, shown: str
) -> None:
    """A space used to go into the request line as is (``GET /a b/p/0 HTTP/1.1``), and CR or
    LF was silently dropped by urllib, so another URL than the one given was sent."""
    records = write_records(tmp_path / "r.jsonl", 2, lambda i: {"url": f"/p/{i}"})
    with EchoServer() as srv:
        status = main(["run", str(records), "-t", srv.url + target])
        assert srv.captured == []
    assert status == 2
    err = capsys.readouterr().err
    assert "bad URL" in err and shown in err and "percent-encode it" in err


def test_user_and_password_in_a_record_url_are_sent_as_basic_auth(tmp_path: Path) -> None:
    """They used to be dropped silently: the request went out with no credentials at all."""
    with EchoServer() as srv:
        bare = srv.url.removeprefix("http://")
        rows = [
            {"url": f"http://alice:s%20cret@{bare}/a"},
            {"url": f"http://bob@{bare}/b"},
            {"url": f"http://carol:x@{bare}/c", "headers": {"Authorization": "Bearer own"}},
        ]
        records = write_records(tmp_path / "r.jsonl", len(rows), rows.__getitem__)
        out = tmp_path / "out.json"
        assert main(["run", str(records), "--json", str(out)]) == 0
        sent = {c.target: c for c in srv.captured}
    assert sent["/a"].values("Authorization") == [basic("alice:s cret")]
    assert sent["/b"].values("Authorization") == [basic("bob:")]
    assert sent["/c"].values("Authorization") == ["Bearer own"]  # the record's own wins
    assert all(b"alice" not in c.head and b"@" not in c.head for c in sent.values())
    assert "alice" not in out.read_text() and "s%20cret" not in out.read_text()


def test_user_and_password_in_the_target_go_with_every_request(tmp_path: Path) -> None:
    records = write_records(tmp_path / "r.jsonl", 3, lambda i: {"url": f"/p/{i}"})
    with EchoServer() as srv:
        target = srv.url.replace("http://", "http://u:p@")
        assert main(["run", str(records), "-t", target, "-c", "2"]) == 0
        sent = srv.captured
    assert sorted(c.target for c in sent) == ["/p/0", "/p/1", "/p/2"]
    assert all(c.values("Authorization") == [basic("u:p")] for c in sent)


def test_a_redirect_to_a_location_with_a_space_is_percent_encoded(tmp_path: Path) -> None:
    """Such a Location used to go on the request line raw: ``GET /to a b HTTP/1.1``."""
    moved = response(302, b"", [("Location", "/to a/caf\u00e9".encode().decode("latin-1"))])
    records = write_records(tmp_path / "r.jsonl", 1, lambda i: {"url": "/from"})
    with EchoServer({"/from": moved}) as srv:
        out = tmp_path / "out.json"
        args = ["run", str(records), "-t", srv.url, "--follow-redirects", "1"]
        assert main([*args, "--json", str(out)]) == 0
        targets = [c.target for c in srv.captured]
    assert targets == ["/from", "/to%20a/caf%C3%A9"]
    assert json.loads(out.read_text())["requests"] == 1
