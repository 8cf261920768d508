"""Each flag declared once, beside the field it sets (:mod:`tether.flags`): every field of the
run command's dataclasses says how the command line sets it, every option of the commands
that take those flags is made from one declaration, the help shows each default once and
in the words it is typed in, and ``tether.run`` takes what the run's flags set."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

import tether
from tether.commands.audit import audit_command
from tether.commands.clickflags import FlagOption, duration_words, made, parse_size, size_words
from tether.commands.convert import convert_command
from tether.commands.diff import diff_command
from tether.commands.doctor import doctor_command
from tether.commands.options import VERBOSITY_FLAGS
from tether.commands.record import record_command
from tether.commands.run import CONFIG_FLAG, URL_FLAGS, Outputs, RunCommand, run_command
from tether.doctor import MAX_IDLE_WAIT
from tether.engine.options import ClientOptions, default_of
from tether.flags import Flag, Kind, flag, flag_of, flags_of, internal, made_of, spec_of
from tether.gates import Gates
from tether.records import Reading
from tether.run.options import RunOptions
from tether.thresholds import parse_duration

# The dataclasses the run command's flags set, each field of which says how.
SET_BY_FLAGS = (Reading, RunOptions, RunCommand, Gates, Outputs, ClientOptions)


def declared() -> list[Flag]:
    """Every flag the run command's declarations hold: on the fields, and the free ones."""
    on_fields = [each for options in SET_BY_FLAGS for _, each in flags_of(options)]
    free = [placed.flag for placed in (*URL_FLAGS, *VERBOSITY_FLAGS)]
    return [*on_fields, *free, CONFIG_FLAG]


def options_of(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


def test_every_field_says_how_the_command_line_sets_it() -> None:
    # A field added without a flag, and without saying why it has none, fails here: it is
    # what the command line would silently never set.
    for options in SET_BY_FLAGS:
        for field in dataclasses.fields(options):
            spec = spec_of(field)
            assert spec is not None, f"{options.__name__}.{field.name}: flag, made_of or internal"
            assert spec.flags or spec.named or spec.why, f"{options.__name__}.{field.name}"


def test_every_option_of_run_is_made_from_one_declaration() -> None:
    # An option written as a click.option of its own, or a flag declared again (on a field
    # and as a free flag, or on two fields), fails here.
    options = options_of(run_command)
    assert all(isinstance(option, FlagOption) for option in options), [
        option.opts for option in options if not isinstance(option, FlagOption)
    ]
    made_from = [option.flag for option in options if isinstance(option, FlagOption)]
    assert sorted(map(id, made_from)) == sorted(map(id, declared()))
    names = [name for each in made_from for name in each.names]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert len(made_from) >= 55  # the run command's flags, not a table gone empty


def test_a_field_made_of_flags_names_flags_the_run_command_has() -> None:
    names = {name for option in options_of(run_command) for name in option.opts}
    for options in SET_BY_FLAGS:
        for field in dataclasses.fields(options):
            spec = spec_of(field)
            assert spec is not None
            assert set(spec.named) <= names, f"{options.__name__}.{field.name}"


def test_the_other_commands_take_the_runs_flags_as_declared() -> None:
    # record and diff send records too: their --concurrency and --timeout are the run's, and
    # so is record's --target (each with a help of its own where it means more there); they
    # and convert read records with Reading's flags.
    reading = {each.param or field.name: each for field, each in flags_of(Reading)}
    for command in (record_command, diff_command, convert_command):
        taken = flags_taken(command)
        assert {name: taken.get(name) for name in reading} == reading, command.name
    own = {
        "concurrency": flag_of(RunOptions, "concurrency"),
        "timeout": flag_of(ClientOptions, "timeout"),
    }
    for command in (record_command, diff_command):
        taken = flags_taken(command)
        for name, each in own.items():
            assert without_help(taken[name]) == without_help(each), (command.name, name)
    assert flags_taken(record_command)["target"].names == flag_of(RunOptions, "target").names


def test_no_other_command_declares_a_flag_of_the_run_again() -> None:
    # An option of record, diff, convert, doctor or audit written by hand with the name of
    # one of the run's flags is that flag declared twice. Their --json is each its own
    # report's, a path as the run's is: the one name they share by design.
    names = {name for each in declared() for name in each.names} - {"--json"}
    for command in (record_command, diff_command, convert_command, doctor_command, audit_command):
        by_hand = [o for o in options_of(command) if not isinstance(o, FlagOption)]
        assert [o.opts for o in by_hand if set(o.opts) & names] == [], command.name


def flags_taken(command: click.Command) -> dict[str, Flag]:
    """The flags ``command``'s options were made from, by parameter name."""
    return {
        option.name: option.flag
        for option in options_of(command)
        if isinstance(option, FlagOption) and option.name
    }


def without_help(each: Flag) -> Flag:
    return dataclasses.replace(each, help="")


# --- the help -------------------------------------------------------------------------------


def help_records(command: click.Command, *required: str) -> dict[str, str]:
    """Each option's help as ``--help`` shows it, by parameter name."""
    ctx = command.make_context(command.name, list(required))
    shown: dict[str, str] = {}
    for option in options_of(command):
        record = option.get_help_record(ctx)
        if record is not None and option.name:
            shown[option.name] = record[1]
    return shown


def shown_default(text: str) -> str | None:
    if "[default: " not in text:
        return None
    return text.split("[default: ")[1].split("]")[0].split(";")[0]


def test_the_help_shows_each_default_once_in_the_words_it_is_typed_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It showed sizes twice ("[default: 256k].  [default: 262144]") and times as floats
    # ("[default: 90.0]"), which a user would type as 90s or 1m30s.
    monkeypatch.chdir(tmp_path)  # no tether.toml here to supply defaults
    shown = help_records(run_command, "records.jsonl")
    for text in shown.values():
        assert text.count("[default: ") <= 1, text
    checked = 0
    for options in (RunOptions, RunCommand, Outputs, ClientOptions):
        for field, each in flags_of(options):
            if not getattr(spec_of(field), "direct", False):
                continue  # made of several flags: none has the field's default
            words = shown_default(shown[each.param or field.name])
            default = default_of(options, field.name)
            if each.kind in (Kind.SECONDS, Kind.POSITIVE_SECONDS) and default is not None:
                assert words is not None and "." not in words, (each.name, words)
                assert parse_duration(words) == default, each.name
                checked += 1
            if each.kind is Kind.SIZE:
                assert words is not None and parse_size(words) == default, each.name
                checked += 1
    assert checked >= 10
    assert shown_default(shown["idle_timeout"]) == "1m30s"
    assert shown_default(shown["drain_limit"]) == "256k"
    assert shown_default(shown["max_idle_per_host"]) == "concurrency"
    assert shown_default(shown["cluster_workers"]) == "all"
    assert shown_default(shown["max_inflight"]) == "1000"
    assert shown_default(shown["strict"]) is None  # a switch's False is no default to show
    for command, required in (
        (record_command, ("r.jsonl", "-o", "g.jsonl")),
        (diff_command, ("r.jsonl", "--primary", "a", "--candidate", "b")),
    ):
        assert shown_default(help_records(command, *required)["timeout"]) == "30s"
    # doctor's own wait, a time too.
    doctor = help_records(doctor_command, "http://127.0.0.1:1/")
    assert shown_default(doctor["max_idle_wait"]) == "1m40s"
    assert parse_duration("1m40s") == MAX_IDLE_WAIT


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(90.0, "1m30s"), (30.0, "30s"), (0.0, "0s"), (0.5, "500ms"), (3600.0, "1h"), (3725, "1h2m5s")],
)
def test_a_time_in_words_reads_back_as_itself(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words
    assert parse_duration(words) == seconds


@pytest.mark.parametrize(
    ("size", "words"),
    [(262144, "256k"), (1 << 20, "1m"), (64 << 20, "64m"), (0, "0"), (1000, "1000")],
)
def test_a_size_in_words_reads_back_as_itself(size: int, words: str) -> None:
    assert size_words(size) == words
    assert parse_size(words) == size


# --- the mapping back -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Toy:
    """A dataclass of each way a field is set."""

    count: int = dataclasses.field(default=3, metadata=flag("--count", kind=Kind.COUNT, help="."))
    names: tuple[str, ...] = dataclasses.field(
        default=(), metadata=flag("--name", multiple=True, param="name", each=str.upper, help=".")
    )
    both: str = dataclasses.field(
        default="", metadata=made_of(Flag(("--left",), help="."), Flag(("--right",), help="."))
    )
    hidden: int = dataclasses.field(default=7, metadata=internal("no flag"))


def test_a_dataclass_is_made_of_its_flags_values() -> None:
    opts: dict[str, Any] = {"count": 5, "name": ("a", "b"), "left": "l", "right": "r"}
    assert made(Toy, opts, both="lr") == Toy(count=5, names=("A", "B"), both="lr", hidden=7)
    # A field made of several flags is the command's to make: left out, it is said.
    with pytest.raises(TypeError, match=r"Toy.both is made of --left, --right: give it"):
        made(Toy, opts)
    # A field that does not say how it is set is never left at its default unnoticed.
    silent = dataclasses.make_dataclass("Silent", [("quiet", int, dataclasses.field(default=0))])
    with pytest.raises(TypeError, match=r"Silent.quiet: no flag, made_of or internal"):
        made(silent, {"quiet": 1})


# --- tether.run -------------------------------------------------------------------------------


def test_tether_run_takes_what_the_runs_flags_set() -> None:
    # A flag added to RunOptions and not to tether.run's keywords (or the other way) fails
    # here. secret is left out there: it is what reports show, and tether.run writes none.
    keywords = {
        name
        for name, p in inspect.signature(tether.run).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    flagged = set()
    for field in dataclasses.fields(RunOptions):
        spec = spec_of(field)
        if spec is not None and not spec.internal:
            flagged.add(field.name)
    assert keywords == flagged - {"secret"}


# --- the layers -------------------------------------------------------------------------------

NO_CLICK = """
import importlib, importlib.util, json, sys, types
spec = importlib.util.find_spec("tether")
root = types.ModuleType("tether")
root.__path__ = list(spec.submodule_search_locations)
sys.modules["tether"] = root
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps("click" in sys.modules))
"""


def test_the_dataclasses_declare_their_flags_without_click() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_CLICK, "tether.engine", "tether.run.options", "tether.records"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) is False
