"""pytest plugin: connection accounting per test (``pytest --tether-audit``) and the
``connection_audit`` fixture.

The probe counts in the test process itself, so it sees the clients a test drives directly
(servers the test starts in other processes are not counted, nor their clients).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tether.audit import probe
from tether.audit.probe import Counts
from tether.audit.verdict import diff, rows

__all__ = ["ConnectionAudit"]

_REPORT_KEY = pytest.StashKey[dict[str, Counts]]()


class ConnectionAudit:
    """Connections opened and requests sent since the fixture started, per (host, port)."""

    def __init__(self) -> None:
        probe.install()
        self._start = probe.counts()

    def counts(self) -> Counts:
        """Per ``"host:port"``: opened, requests, closed, open_now, peak_open."""
        return diff(probe.counts(), self._start)

    def connections(self, host: str, port: int) -> int:
        """TCP connections opened to ``host:port``."""
        return self._entry(host, port)["opened"]

    def requests(self, host: str, port: int) -> int:
        """HTTP requests written to ``host:port``."""
        return self._entry(host, port)["requests"]

    def requests_per_connection(self, host: str, port: int) -> float:
        """Requests over connections opened (0 when none was opened)."""
        entry = self._entry(host, port)
        return entry["requests"] / entry["opened"] if entry["opened"] else 0.0

    def verdicts(self) -> list[str]:
        """A sentence per peer whose connections were not reused."""
        return [row["verdict"] for row in rows(self.counts()) if row["verdict"]]

    def _entry(self, host: str, port: int) -> dict[str, int]:
        key = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return self.counts().get(key, dict.fromkeys(("opened", "requests"), 0))


@pytest.fixture
def connection_audit() -> Iterator[ConnectionAudit]:
    """Count the connections and requests this test makes (see :class:`ConnectionAudit`)."""
    yield ConnectionAudit()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tether")
    group.addoption(
        "--tether-audit",
        action="store_true",
        help="Report HTTP connections opened and requests sent, per test and peer.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("tether_audit"):
        probe.install()
        config.stash[_REPORT_KEY] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    per_test = item.config.stash.get(_REPORT_KEY, None)
    if per_test is None:
        return (yield)
    before = probe.counts()
    try:
        return (yield)
    finally:
        found = diff(probe.counts(), before)
        if found:
            per_test[item.nodeid] = found


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    per_test = config.stash.get(_REPORT_KEY, None)
    if per_test is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section("tether connection audit")
    if not per_test:
        write("no HTTP connections were opened by the tests")
    for nodeid, counts in per_test.items():
        write(nodeid)
        for row in rows(counts):
            write(
                f"    {row['peer']}: {row['connections']:,} connections, "
                f"{row['requests']:,} requests ({row['requests_per_connection']:g} per connection)"
            )
            if row["verdict"]:
                write(f"    {row['verdict']}", red=True)
