"""The config file: ``tether.toml``, or a ``[tool.tether]`` table in ``pyproject.toml``, in
the directory tether runs from (or the file ``--config`` names). Its keys are the run
command's flags (``concurrency = 20``, ``threshold = ["p99<250ms"]``, ``watch = [...]``),
spelt with dashes or underscores; flags given on the command line win. Each value is read as
its flag's would be: a time as ``duration = "1m30s"`` or ``timeout = 0.5`` (seconds), a size
as ``drain-limit = "1m"``.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from typing import Any

from tether.errors import InputError

__all__ = ["find", "load"]


def find(directory: str = ".") -> str | None:
    """The config file in ``directory``: tether.toml, else a pyproject.toml with a
    [tool.tether] table; None when there is neither."""
    own = os.path.join(directory, "tether.toml")
    if os.path.isfile(own):
        return own
    project = os.path.join(directory, "pyproject.toml")
    if os.path.isfile(project) and "tether" in _read(project).get("tool", {}):
        return project
    return None


def load(path: str, known: Iterable[str]) -> dict[str, Any]:
    """The settings in ``path`` as parameter names to values; InputError naming the file and
    the key for one that is not a flag of the run command."""
    doc = _read(path)
    table = doc.get("tool", {}).get("tether", {}) if path.endswith("pyproject.toml") else doc
    names = set(known)
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in names:
            close = difflib.get_close_matches(name, sorted(names), n=1)
            hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
            raise InputError(f"{path}: unknown setting {key!r}{hint}")
        settings[name] = value
    return settings


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as stream:
            return tomllib.load(stream)
    except OSError as exc:
        raise InputError(f"cannot read config {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
