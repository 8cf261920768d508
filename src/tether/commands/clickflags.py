"""The click side of :mod:`tether.flags`: the types that parse a flag's value (sizes, times),
the click option made of each declared flag (its default the field's, shown once, in the
words it is typed in), and the dataclass made back of a command's values (:func:`made`).
A command adds a field's flag with :func:`fields_flags` or :func:`own_flag`, a flag that
sets no field with :func:`free_flags`, and either with :func:`with_flags`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from tether.engine.options import default_of
from tether.flags import Flag, Kind, flag_of, flags_of, spec_of
from tether.thresholds import parse_duration


def parse_size(value: str) -> int:
    """``262144``, ``256k``, ``1m``, ``1g`` (powers of 1024) to bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text_ = value.strip().lower().removesuffix("b").removesuffix("i")
    scale = units.get(text_[-1:], 1)
    number = text_[:-1] if scale != 1 else text_
    try:
        size = int(float(number) * scale)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size like 262144, 256k or 1m") from None
    if size < 0:
        raise click.BadParameter("a size cannot be negative")
    return size


class Size(click.ParamType):  # type: ignore[type-arg]
    """A byte size with an optional k/m/g suffix."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        return value if isinstance(value, int) else parse_size(str(value))


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A time, as Go's time.ParseDuration writes it (``10s``, ``500ms``, ``1m30s``, ``2h``;
    :func:`tether.thresholds.parse_duration`), or a number of seconds (on the command line
    or in tether.toml, as it always was), to seconds. Never negative; with ``positive``,
    never 0 either (where 0 would mean no time at all, rather than none set)."""

    name = "duration"

    def __init__(self, positive: bool = False) -> None:
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        seconds = _seconds(value)
        if seconds is None:
            self.fail(
                f"{value!r} is not a duration: give seconds (10, 0.5) or a time with units "
                "(ms, s, m, h) such as 10s, 500ms or 1m30s",
                param,
                ctx,
            )
        if seconds < 0:
            self.fail(f"{value!r}: a duration cannot be negative", param, ctx)
        if self.positive and seconds == 0:
            self.fail(f"{value!r}: give a duration longer than 0", param, ctx)
        return seconds


def _seconds(value: Any) -> float | None:
    """``value`` in seconds: a number as it is (a default, or a number in tether.toml), text
    as a duration; None for what is neither, or is no finite time."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value) if isinstance(value, (int, float)) else parse_duration(str(value))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

POSITIVE = click.IntRange(min=1)
SECONDS = Duration()
POSITIVE_SECONDS = Duration(positive=True)


def click_type(flag: Flag) -> click.ParamType | None:  # type: ignore[type-arg]
    """The click type that parses ``flag``'s value, and says what is wrong with one."""
    kinds: dict[Kind, click.ParamType | None] = {  # type: ignore[type-arg]
        Kind.TEXT: None,
        Kind.SWITCH: None,
        Kind.COUNT: POSITIVE,
        Kind.NATURAL: click.IntRange(min=0),
        Kind.FRACTION: click.FloatRange(0, 1),
        Kind.STATUS: click.IntRange(100, 599),
        Kind.SECONDS: SECONDS,
        Kind.POSITIVE_SECONDS: POSITIVE_SECONDS,
        Kind.SIZE: Size(),
        Kind.FILE: click.Path(exists=True, dir_okay=False),
        Kind.CHOICE: click.Choice(flag.choices),
    }
    return kinds[flag.kind]


def in_words(kind: Kind, value: Any) -> str:
    """A default as the help shows it: a time as it is typed (``1m30s``, not ``90.0``), a
    size with its unit (``256k``, not ``262144``); anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if kind in (Kind.SECONDS, Kind.POSITIVE_SECONDS):
        return duration_words(value)
    return size_words(int(value)) if kind is Kind.SIZE else str(value)


def duration_words(seconds: float) -> str:
    """``seconds`` as :func:`tether.thresholds.parse_duration` reads it back: ``1m30s``,
    ``500ms``, ``0s``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{rest:g}s" if rest or not (hours or minutes) else "")
    return "".join(parts)


def size_words(size: int) -> str:
    """``size`` in the largest unit :func:`parse_size` reads that it is a whole number of."""
    for suffix, scale in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size and size % scale == 0:
            return f"{size // scale}{suffix}"
    return str(size)


class FlagOption(click.Option):
    """A click option made from a :class:`~tether.flags.Flag` (its ``flag``); the help shows
    its default in words (:func:`in_words`), once."""

    def __init__(self, *args: Any, flag: Flag, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flag = flag

    def get_help_extra(self, ctx: click.Context) -> click.types.OptionHelpExtra:
        """Click's extras, the default in words."""
        extra = super().get_help_extra(ctx)
        if "default" in extra:
            extra["default"] = in_words(self.flag.kind, self.get_default(ctx, call=False))
        elif self.flag.default_in_words:
            extra["default"] = self.flag.default_in_words
        return extra


NO_DEFAULT: Any = object()  # a flag that sets no field by itself has no default of its own


@dataclass(frozen=True, slots=True)
class Placed:
    """A flag as a command takes it: the keyword its value comes as (and a config file sets
    it by), and its default (:data:`NO_DEFAULT`: click's nothing: None, False or ())."""

    flag: Flag
    param: str
    default: Any = NO_DEFAULT


def fields_flags(*classes: type[Any]) -> list[Placed]:
    """Every flag declared on the fields of ``classes``, in their order: a field's own flag
    as the field's name and with its default, a flag of a combined field as itself."""
    placed: list[Placed] = []
    for options in classes:
        for field, flag in flags_of(options):
            spec = spec_of(field)
            if spec is not None and spec.direct:
                name = flag.param or field.name
                placed.append(Placed(flag, name, default_of(options, field.name)))
            else:
                placed.extend(free_flags(flag))
    return placed


def own_flag(options: type[Any], name: str, help: str | None = None) -> Placed:
    """The flag of the field ``name`` of ``options``, for a command that takes it too (with
    a ``help`` of its own, where the field means something more there)."""
    flag = flag_of(options, name)
    if help is not None:
        flag = dataclasses.replace(flag, help=help)
    return Placed(flag, flag.param or name, default_of(options, name))


def free_flags(*flags: Flag) -> list[Placed]:
    """Flags that set no field by themselves: the command reads them. Each comes as its
    ``param``, else as click would name it, after its long name (``--body-file``:
    ``body_file``)."""
    return [Placed(f, f.param or f.name.removeprefix("--").replace("-", "_")) for f in flags]


def with_flags(placed: list[Placed], **click_kwargs: Any) -> Callable[[F], F]:
    """Add ``placed``'s options to a command, in order (``click_kwargs``: more for each, as
    a callback)."""

    def add(func: F) -> F:
        for one in reversed(placed):
            func = click_option(one, **click_kwargs)(func)
        return func

    return add


def click_option(placed: Placed, **click_kwargs: Any) -> Callable[[F], F]:
    """The click option of one placed flag."""
    flag = placed.flag
    kwargs: dict[str, Any] = {"cls": FlagOption, "flag": flag, "help": flag.help}
    if flag.kind is Kind.SWITCH:
        kwargs["is_flag"] = True
    elif (kind := click_type(flag)) is not None:
        kwargs["type"] = kind
    if flag.metavar is not None:
        kwargs["metavar"] = flag.metavar
    if flag.multiple:
        kwargs["multiple"] = True
    if placed.default is not NO_DEFAULT:
        kwargs["default"] = placed.default
        shown = placed.default not in (None, ()) and flag.kind is not Kind.SWITCH
        kwargs["show_default"] = shown
    return click.option(*flag.names, placed.param, **(kwargs | click_kwargs))


def made(options: type[T], opts: Mapping[str, Any], **given: Any) -> T:
    """The dataclass ``options`` from a command's values: each field its own flag sets takes
    that flag's value (through its ``each``), each field made of several is in ``given``,
    and each internal field keeps its default. A field that says nothing of how it is set
    is a TypeError, never left at its default unnoticed."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(options):  # type: ignore[arg-type]
        spec = spec_of(field)
        if spec is None and field.name not in given:
            raise TypeError(f"{options.__name__}.{field.name}: no flag, made_of or internal")
        if field.name in given or spec is None or spec.internal:
            continue
        if not spec.direct:
            made_of = ", ".join([*(f.name for f in spec.flags), *spec.named])
            raise TypeError(f"{options.__name__}.{field.name} is made of {made_of}: give it")
        (flag,) = spec.flags
        values[field.name] = _value(flag, opts[flag.param or field.name])
    return options(**values, **given)


def _value(flag: Flag, value: Any) -> Any:
    """A flag's value as its field holds it: a tuple for a flag given many times, each value
    through the flag's ``each``."""
    if flag.multiple:
        return tuple(value if flag.each is None else map(flag.each, value))
    return value if flag.each is None or value is None else flag.each(value)
