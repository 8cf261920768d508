"""pytest plugin: connection accounting per test (``pytest --tether-audit``), a strict mode
that fails a test whose connections were not reused (``--tether-audit-strict`` for every
test, or the ``tether_audit_strict`` marker for one), and the ``connection_audit`` fixture.

The probe counts in the test process itself, so it sees the clients a test drives directly
(servers the test starts in other processes are not counted, nor their clients). What a test
is judged by is what its body did (the call phase, not its fixtures' setup), with the same
verdicts ``tether audit`` gives (from 10 requests to a peer).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tether.audit import probe
from tether.audit.probe import Counts
from tether.audit.verdict import diff, rows, verdicts

__all__ = ["ConnectionAudit"]

_REPORT_KEY = pytest.StashKey[dict[str, Counts]]()
STRICT_MARKER = "tether_audit_strict"


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
        return verdicts(self.counts())

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
    group.addoption(
        "--tether-audit-strict",
        action="store_true",
        help="As --tether-audit, and fail each test whose HTTP connections were not reused "
        f"(the audit's verdict is the failure; the {STRICT_MARKER} marker does it for one).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{STRICT_MARKER}: fail this test when its HTTP connections were not reused "
        "(tether's connection audit, as --tether-audit-strict does for every test)",
    )
    if config.getoption("tether_audit") or config.getoption("tether_audit_strict"):
        probe.install()
        config.stash[_REPORT_KEY] = {}


def _strict(item: pytest.Item) -> bool:
    """Whether ``item`` fails when its connections were not reused."""
    strict = bool(item.config.getoption("tether_audit_strict"))
    return strict or item.get_closest_marker(STRICT_MARKER) is not None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    per_test = item.config.stash.get(_REPORT_KEY, None)
    strict = _strict(item)
    if per_test is None and not strict:
        return (yield)
    probe.install()  # for a marked test in a run without the flags (once: then a no-op)
    before = probe.counts()
    try:
        outcome = yield
    finally:
        found = diff(probe.counts(), before)
        if found and per_test is not None:
            per_test[item.nodeid] = found
    # Reached only when the test itself passed: its own failure says more than ours.
    said = verdicts(found) if strict else []
    if said:
        pytest.fail("\n".join(said), pytrace=False)
    return outcome


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
