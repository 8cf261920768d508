"""A command-line flag as plain data, declared once beside the dataclass field it sets:
``timeout: float = field(default=30.0, metadata=flag("--timeout", kind=Kind.SECONDS,
help="..."))``. The field's default is the flag's; :mod:`tether.commands.clickflags` makes
the click options and the mapping back to the dataclass from these, so that engine/ and
run/ declare their flags without importing click. Stdlib only.

Each field of an options dataclass says how the command line sets it, in one of three ways:

- :func:`flag`: one flag, whose value (after ``each``, when given) is the field's;
- :func:`made_of`: several flags (or flags declared elsewhere, by name), which the command
  combines (``--rate`` and ``--pace`` make one schedule);
- :func:`internal`: no flag at all, and why (a split run's share of the work).

A test holds every field of the run command's dataclasses to one of them.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Flag", "Kind", "Spec", "flag", "flag_of", "flags_of", "internal", "made_of", "spec_of"]


class Kind(enum.Enum):
    """What a flag's value is: the command line's parser and its error messages follow."""

    TEXT = "text"
    SWITCH = "switch"  # given or not: True or False
    COUNT = "count"  # a whole number, 1 or more
    NATURAL = "natural"  # a whole number, 0 or more
    FRACTION = "fraction"  # a number from 0 to 1
    STATUS = "status"  # an HTTP status, 100 to 599
    SECONDS = "seconds"  # a time (10s, 500ms, 1m30s, or a number of seconds), 0 or more
    POSITIVE_SECONDS = "positive seconds"  # a time longer than 0
    SIZE = "size"  # bytes, with an optional k, m or g
    FILE = "file"  # the path of a file that exists
    CHOICE = "choice"  # one of the flag's ``choices``


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag: its ``names`` (the long one first, then its short or older names), what its
    value is, and its help. ``param``: the keyword the command gets (and the key a config
    file sets it by) when it is not the field's name. ``default_in_words``: what giving no
    value means, for a flag whose default is None (``concurrency``, ``all``). ``each``:
    applied to the value (to each value of a ``multiple`` flag) when the dataclass is made
    from the command's values, so that its error is the dataclass's own."""

    names: tuple[str, ...]
    help: str
    kind: Kind = Kind.TEXT
    metavar: str | None = None
    multiple: bool = False
    param: str | None = None
    choices: tuple[str, ...] = ()
    default_in_words: str | None = None
    each: Callable[[Any], Any] | None = None

    @property
    def name(self) -> str:
        """The flag's long name, as messages say it (``--timeout``)."""
        return self.names[0]


@dataclass(frozen=True, slots=True)
class Spec:
    """How the command line sets one field: by the one flag in ``flags`` (``direct``), by
    the command combining ``flags`` and the flags ``named`` (declared elsewhere), or not at
    all (``internal``, with ``why``)."""

    flags: tuple[Flag, ...] = ()
    named: tuple[str, ...] = ()
    direct: bool = False
    why: str = ""

    @property
    def internal(self) -> bool:
        """Whether no flag sets the field."""
        return not self.flags and not self.named


_KEY = "tether.flags"


def flag(
    *names: str,
    help: str,
    kind: Kind = Kind.TEXT,
    metavar: str | None = None,
    multiple: bool = False,
    param: str | None = None,
    choices: tuple[str, ...] = (),
    default_in_words: str | None = None,
    each: Callable[[Any], Any] | None = None,
) -> Mapping[str, Spec]:
    """A field's metadata: the one flag that sets it (see :class:`Flag`)."""
    one = Flag(names, help, kind, metavar, multiple, param, choices, default_in_words, each)
    return {_KEY: Spec(flags=(one,), direct=True)}


def made_of(*flags: Flag | str) -> Mapping[str, Spec]:
    """A field's metadata: the flags the command makes its value of, each a :class:`Flag`
    declared here or the name of one declared elsewhere (``--quiet``, on every command)."""
    return {
        _KEY: Spec(
            flags=tuple(f for f in flags if isinstance(f, Flag)),
            named=tuple(f for f in flags if isinstance(f, str)),
        )
    }


def internal(why: str) -> Mapping[str, Spec]:
    """A field's metadata: no flag sets it, for the reason given."""
    return {_KEY: Spec(why=why)}


def spec_of(field: dataclasses.Field[Any]) -> Spec | None:
    """How the command line sets ``field``; None for a field that does not say."""
    spec = field.metadata.get(_KEY)
    return spec if isinstance(spec, Spec) else None


def flags_of(options: type[Any]) -> Iterator[tuple[dataclasses.Field[Any], Flag]]:
    """Each flag declared on the fields of the dataclass ``options``, with its field, in
    the fields' order."""
    for field in dataclasses.fields(options):
        spec = spec_of(field)
        for each in spec.flags if spec is not None else ():
            yield field, each


def flag_of(options: type[Any], name: str) -> Flag:
    """The flag that sets the field ``name`` of ``options`` by itself (for a command that
    takes it too)."""
    for field, each in flags_of(options):
        if field.name == name and (spec := spec_of(field)) is not None and spec.direct:
            return each
    raise TypeError(f"{options.__name__}.{name} has no flag of its own")
