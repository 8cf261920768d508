"""``python -m tether``."""

from tether.cli import entry

entry()
