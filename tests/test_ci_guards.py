"""Under CI nothing may quietly not run: a missing real server fails the ensure scripts and the
tests, and a run in which any test skipped fails as a whole (``components.py``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
SCRIPTS = TESTS.parent / "scripts"

SKIPPING_TEST = """
import pytest

def test_needs_a_server():
    pytest.skip("no such server here")

def test_runs():
    assert True
"""


@pytest.mark.parametrize(("ci", "status"), [("1", pytest.ExitCode.TESTS_FAILED), ("", 0)])
def test_a_skip_fails_the_run_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, status: int
) -> None:
    pytester.makepyfile(SKIPPING_TEST)
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_subprocess("-p", "components", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == status
    result.stdout.fnmatch_lines(["tests against real components: nginx 0, Go 0, *"])


def not_root_without(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has no server, no package manager and an ``id`` that says the
    user is not root: what an ensure script sees on a machine where it cannot install."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    (fake / "id").chmod(0o755)
    dirname = shutil.which("dirname")
    assert dirname is not None
    (fake / "dirname").symlink_to(dirname)
    return {"PATH": str(fake), "HOME": str(tmp_path)}


@pytest.mark.parametrize("script", ["ensure-go", "ensure-browser", "ensure-prometheus"])
@pytest.mark.parametrize(("ci", "status"), [("1", 1), ("", 0)])
def test_an_ensure_script_that_cannot_install_fails_under_ci(
    tmp_path: Path, script: str, ci: str, status: int
) -> None:
    env = {**not_root_without(tmp_path), "CI": ci}
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, str(SCRIPTS / script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == status, done.stderr
    assert "not installed" in done.stderr


def test_ci_run_sets_ci_for_everything_it_starts() -> None:
    lines = (TESTS.parent / ".ci" / "run").read_text().splitlines()
    assert "export CI=1" in lines
    assert lines.index("export CI=1") < lines.index("make test")
