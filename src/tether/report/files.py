"""Where reports go: every output path checked before the first request is sent, and a file
that cannot be written (a full disk, a lost mount) said by name and survived, so that one
broken output never costs the others or the summary."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

from tether.errors import InputError

__all__ = ["check_outputs", "not_written", "reason", "unwritable"]

STDOUT = "-"


def reason(exc: OSError) -> str:
    """What went wrong, in the system's words ("No space left on device")."""
    return exc.strerror or str(exc)


def unwritable(path: str) -> str | None:
    """Why ``path`` cannot be written, or None. It is opened for appending, exactly as the
    file system will judge the real write (permissions, a missing directory, a read-only
    mount, a directory in its place), and removed again if it was not there before."""
    existed = os.path.lexists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        return reason(exc)
    if not existed:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return None


def check_outputs(outputs: Mapping[str, str | None]) -> None:
    """InputError naming the flag and the path for the first output (flag -> path) that
    cannot be written, or that two flags would both write: found before the run, not after
    it. ``-`` (standard output) and None (not asked for) pass."""
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        if not path or path == STDOUT:
            continue
        if path in seen:
            raise InputError(f"{seen[path]} and {flag} would both write {path!r}")
        seen[path] = flag
        problem = unwritable(path)
        if problem is not None:
            raise InputError(f"{flag} {path!r} cannot be written: {problem}")


def not_written(flag: str, path: str, exc: OSError) -> str:
    """The sentence for an output that could not be written: its flag, its file, and why."""
    return f"{flag} {path!r} was not written: {reason(exc)}"
