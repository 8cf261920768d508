"""What ran, as the summary document records it for the reports: when the run started, the
tether that ran it, its command line (secrets masked), and the load it was asked for
(``started_at``, ``tether_version``, ``command``, ``model``). Recorded by ``tether run`` only:
a summary rebuilt from results files (``tether report``) has none of them.

Secrets in a command line: the values of secret headers given with ``-H`` (the rule of
:mod:`tether.secrets`, ``--redact-header`` and ``--show-secrets`` included), a URL's
``user:password@`` (never shown, as everywhere in the reports), and the values of query
parameters whose names say they hold a credential (``token``, ``api_key``, ``sig``, ...)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click
from click.core import ParameterSource

from tether.document import LoadModel
from tether.run.options import RunOptions
from tether.run.pacer import OriginalPace
from tether.secrets import mask_url, masked
from tether.version import tether_version

__all__ = ["command_line", "load_model", "started_at", "tether_version"]

# The run command's parameters whose values are 'Name: value' headers.
HEADER_PARAMS = frozenset({"headers", "expect_header"})


def started_at(duration_s: float, now: datetime | None = None) -> str:
    """When a run that ended ``now`` (the local time, with its UTC offset) after
    ``duration_s`` seconds started, in ISO 8601 to the second."""
    ended = now if now is not None else datetime.now().astimezone()
    return (ended - timedelta(seconds=duration_s)).isoformat(timespec="seconds")


def load_model(run: RunOptions) -> LoadModel:
    """The load a run was asked for, as the document records it."""
    rate = run.rate
    if rate is None:
        return {"kind": "concurrency", "concurrency": run.concurrency}
    if isinstance(rate, OriginalPace):
        return {"kind": "pace", "pace": rate.factor, "max_inflight": run.max_inflight}
    if rate.start == rate.end:
        return {"kind": "rate", "rate": rate.start, "max_inflight": run.max_inflight}
    return {
        "kind": "ramp",
        "rate": rate.start,
        "rate_to": rate.end,
        "ramp_s": rate.duration or 0.0,
        "max_inflight": run.max_inflight,
    }


def command_line(ctx: click.Context | None, secret: frozenset[str]) -> list[str]:
    """The command that is running, as argv: the command's path (``tether run``), then each
    parameter that was given, on the command line or in a config file (every value that
    was not a default), in its long form and the order the command declares them, its value
    as click read it; secrets masked. Empty outside a command."""
    if ctx is None:
        return []
    words = ctx.command_path.split()
    for param in ctx.command.params:
        name = param.name
        if name is None or name not in ctx.params:
            continue
        if ctx.get_parameter_source(name) in (None, ParameterSource.DEFAULT):
            continue
        words += _words(param, ctx.params[name], secret)
    return words


def _words(param: click.Parameter, value: Any, secret: frozenset[str]) -> list[str]:
    """One parameter as it would be typed."""
    values = list(value) if param.multiple or param.nargs == -1 else [value]
    shown = [_shown(param.name, v, secret) for v in values if v is not None]
    if isinstance(param, click.Argument):
        return shown
    flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
    if isinstance(param, click.Option) and param.is_flag:
        return [flag] if value else []
    return [word for text in shown for word in (flag, text)]


def _shown(name: str | None, value: Any, secret: frozenset[str]) -> str:
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value)
    if name in HEADER_PARAMS:
        header, sep, rest = text.partition(":")
        if sep:
            text = f"{header}: {masked(f'header {header.strip()}', rest.strip(), secret)}"
    return mask_url(text)
