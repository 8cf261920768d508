"""A pytest plugin (loaded by conftest): the tests that used each real component, and no skip
under CI.

The summary ends with the number of tests that ran against nginx, Go, chromium, Dask and
Prometheus. Under CI (env ``CI`` set) a run in which any test skipped fails as a whole: the
guards in ``servers.py`` already fail a test whose server is missing, and this catches every
other way a test could quietly not run.
"""

from __future__ import annotations

import os

import pytest

from servers import REAL_COMPONENTS, USED_BY, used

# Session fixtures start their server once, so the server's own guard sees only the first test
# that asks: the fixtures a test asks for name its component for every test.
COMPONENT_FIXTURES = {
    "nginx": "nginx",
    "nginx_factory": "nginx",
    "nginx_h2": "nginx",
    "go_server": "Go",
    "go_h2": "Go",
}
SKIPPED: list[str] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    for fixture in getattr(item, "fixturenames", ()):
        if fixture in COMPONENT_FIXTURES:
            used(COMPONENT_FIXTURES[fixture], item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        SKIPPED.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = ", ".join(f"{name} {len(USED_BY[name])}" for name in REAL_COMPONENTS)
    terminalreporter.write_line(f"tests against real components: {counts}")
    if os.environ.get("CI") and SKIPPED:
        shown = ", ".join(SKIPPED[:10])
        terminalreporter.write_line(f"under CI no test may skip; {len(SKIPPED)} did: {shown}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A green CI on tests that never ran would prove nothing: fail the whole run instead.
    if os.environ.get("CI") and SKIPPED and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
