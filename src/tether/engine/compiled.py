"""Whether the send path's common case runs compiled, and the plain data it hands over.

The compiled extension (:mod:`tether.engine._compiled`, built from Cython by ``pip
install``) is used when it was built and ``TETHER_PURE_PYTHON`` is not set; otherwise every
request takes the pure-Python path, the reference, which gives the same counts. What the
compiled path counted crosses into the run as :class:`tether.model.Counted`, plain data.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["ENGINE", "native"]


def _load() -> ModuleType | None:
    if os.environ.get("TETHER_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from tether.engine import _compiled
    except ImportError:  # not built (no compiler where it was installed)
        return None
    return _compiled


native = _load()
"""The compiled module, or None: the pure-Python path only."""

ENGINE = "compiled" if native is not None else "python"
"""What a run's figures come from when it can use the compiled path."""
