"""The installed tether's version: what a run records as having run it, and what a report
rendered later names as having rendered it."""

from __future__ import annotations

from importlib import metadata

__all__ = ["tether_version"]


def tether_version() -> str:
    """The installed tether's version ("unknown" when it runs from a source tree)."""
    try:
        return metadata.version("tether")
    except metadata.PackageNotFoundError:
        return "unknown"
