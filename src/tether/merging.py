"""How two shares of one run combine: the one merge rule for everything that adds up across
processes (the ledger and its streams, the groups, the timeline, the tally, the run's facts).

A class that merges is a dataclass deriving from :class:`Merges`; its :meth:`~Merges.merge`
is this module's, the same for all of them, and combines the two shares field by field. A
field's rule comes from its metadata when it names one (:func:`by`, :data:`LIVE`), else from
its declared type:

- ``int`` adds (a ``bool`` is no int here: two flags do not add up);
- ``Counter[...]`` adds its counts;
- a type with a ``merge`` method merges itself; ``X | None`` of one too, a share with none
  adding nothing.

Nothing else has a rule by type (a float may be a sum, a peak or a fraction; a list may be
bounded): such a field names its rule, or every merge of its class fails with a TypeError
that names the class and the field. A class whose fields are not counts (the run's facts)
sets ``by_type = False``, and each of its fields must name its rule.

Standard library only, so that the bottom layer (:mod:`tether.ledger`) can use it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

__all__ = ["LIVE", "Merges", "Rule", "by", "plan"]

Rule = Callable[[Any, Any], Any]
"""How two shares' values of a field combine: ``rule(mine, theirs)`` is the merged value
(which may be ``mine``, changed in place)."""

_KEY = "merge"

LIVE: Mapping[str, Any] = types.MappingProxyType({_KEY: None})
"""Field metadata for a process's working state while it runs (latencies buffered until the
next flush, the timeline's current window): never merged. :meth:`Merges._settle` brings what
it holds into the merged fields first, and what is left (a finished share's window) is
nobody's."""


def by(rule: Rule) -> Mapping[str, Any]:
    """Field metadata naming how two shares' values of the field combine: a rule where the
    type alone cannot say (``field(default=0, metadata=by(max))`` for a peak)."""
    return types.MappingProxyType({_KEY: rule})


class Merges:
    """A dataclass whose shares (one per process of a run) merge field by field, each by its
    rule (see the module's docstring)."""

    __slots__ = ()

    by_type: ClassVar[bool] = True
    """Whether a field naming no rule takes its type's; False: every field names its own."""

    def merge(self, other: Self) -> None:
        """Add another share of the same run (another process's) to this one, in place."""
        self._settle()
        other._settle()
        for name, rule in plan(type(self)):
            setattr(self, name, rule(getattr(self, name), getattr(other, name)))

    def _settle(self) -> None:
        """Bring working state (:data:`LIVE` fields) into the merged fields before a merge
        reads them: nothing to do unless a class keeps such state."""


_PLANS: dict[type, tuple[tuple[str, Rule], ...]] = {}


def plan(cls: type[Merges]) -> tuple[tuple[str, Rule], ...]:
    """Each merged field of ``cls`` with its rule, worked out once per class (a merge runs
    once per share, never per request). Raises TypeError for a field with no rule."""
    cached = _PLANS.get(cls)
    if cached is None:
        owner = cls  # as it is: the check below narrows the type of ``cls`` to a dataclass
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} merges field by field: make it a dataclass")
        hints = typing.get_type_hints(cls)
        rules = [(f.name, _rule(owner, f, hints[f.name])) for f in dataclasses.fields(cls)]
        cached = _PLANS[cls] = tuple((name, rule) for name, rule in rules if rule is not None)
    return cached


def _rule(cls: type[Merges], f: dataclasses.Field[Any], hint: Any) -> Rule | None:
    """The rule for field ``f`` of ``cls`` (None: not merged)."""
    if _KEY in f.metadata:
        named: Rule | None = f.metadata[_KEY]
        return named
    typed = _typed(hint) if cls.by_type else None
    if typed is None:
        why = (
            f"a field of type {hint!r}"
            if cls.by_type
            else f"it (each field of {cls.__name__} names its own, whatever its type)"
        )
        raise TypeError(
            f"{cls.__name__}.{f.name}: no rule merges {why}; name one in its metadata, "
            f"field(..., metadata=tether.merging.by(rule)), or metadata=tether.merging.LIVE "
            f"if it is a running process's own state, never merged"
        )
    return typed


def _typed(hint: Any) -> Rule | None:
    """The rule a declared type gives, if it gives one."""
    if hint is int:  # exactly: a bool is an int to Python, and a flag does not add up
        return _added
    origin = typing.get_origin(hint)
    if origin is Counter:
        return _counted
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        (kind,) = (a for a in args if a is not type(None))
        return _unless_none(kind) if _merges_itself(kind) else None
    return _merged if _merges_itself(hint) else None


def _added(mine: int, theirs: int) -> int:
    return mine + theirs


def _counted(mine: Counter[Any], theirs: Counter[Any]) -> Counter[Any]:
    mine.update(theirs)  # Counter.update adds counts
    return mine


def _merged(mine: Any, theirs: Any) -> Any:
    mine.merge(theirs)
    return mine


def _unless_none(kind: type) -> Rule:
    """A rule for an optional field of a type that merges itself: a share without one adds
    nothing, and the first one given starts from an empty value (never the other share's
    own object)."""

    def merge(mine: Any, theirs: Any) -> Any:
        if theirs is None:
            return mine
        return _merged(kind() if mine is None else mine, theirs)

    return merge


def _merges_itself(hint: Any) -> bool:
    kind = typing.get_origin(hint) or hint  # a generic one, such as Examples[...], too
    return isinstance(kind, type) and callable(getattr(kind, "merge", None))
