"""What ran, as the summary document records it for the reports: when the run started, the
tether that ran it, its command line (secrets masked), and the load it was asked for
(``started_at``, ``tether_version``, ``command``, ``model``), and that load in words.

Secrets in a command line: the values of secret headers given with ``-H`` (the rule of
:mod:`tether.secrets`, ``--redact-header`` and ``--show-secrets`` included), a URL's
``user:password@`` (never shown, as everywhere in the reports), and the values of query
parameters whose names say they hold a credential (``token``, ``api_key``, ``sig``, ...)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from importlib import metadata
from typing import Any

import click
from click.core import ParameterSource

from tether.document import LoadModel, SummaryDocument
from tether.run.options import RunOptions
from tether.run.pacer import OriginalPace
from tether.secrets import masked

__all__ = [
    "command_line",
    "describe_model",
    "load_model",
    "mask_url",
    "started_at",
    "tether_version",
]

HIDDEN = "***"

# scheme://userinfo@ : the userinfo (a password, or a token used as the user name) goes.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")
# ?name=value or &name=value, where the name says it is a credential.
_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:[^=&#\s]*(?:token|secret|passw(?:or)?d|api[-_]?key|apikey|signature"
    r"|credential|session|auth)[^=&#\s]*|key|sig|pwd)=)[^&#\s]*"
)

# The run command's parameters whose values are 'Name: value' headers.
HEADER_PARAMS = frozenset({"headers", "expect_header"})


def started_at(duration_s: float, now: datetime | None = None) -> str:
    """When a run that ended ``now`` (the local time, with its UTC offset) after
    ``duration_s`` seconds started, in ISO 8601 to the second."""
    ended = now if now is not None else datetime.now().astimezone()
    return (ended - timedelta(seconds=duration_s)).isoformat(timespec="seconds")


def tether_version() -> str:
    """The installed tether's version ("unknown" when it runs from a source tree)."""
    try:
        return metadata.version("tether")
    except metadata.PackageNotFoundError:
        return "unknown"


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


def describe_model(doc: SummaryDocument) -> str:
    """The run's load in words: the document's ``model``, or for a document without one (a
    summary rebuilt from results files) what its other keys tell."""
    model = doc.get("model") or _model_from_figures(doc)
    kind = model["kind"]
    if kind == "concurrency":
        return f"closed model: concurrency {model.get('concurrency', 1):,}"
    if kind == "rate":
        load = f"rate {model.get('rate', 0):,.6g} req/s"
    elif kind == "ramp":
        load = (
            f"ramp {model.get('rate', 0):,.6g} to {model.get('rate_to', 0):,.6g} req/s "
            f"over {model.get('ramp_s', 0):g} s"
        )
    else:
        factor = model.get("pace")
        load = "the records' own pace" + (f", {factor:g} times faster" if factor else "")
    inflight = model.get("max_inflight")
    return f"open model: {load}" + (f", at most {inflight:,} in flight" if inflight else "")


def _model_from_figures(doc: SummaryDocument) -> LoadModel:
    if doc.get("schedule_s") is None:
        return {"kind": "concurrency", "concurrency": doc["concurrency"]}
    rate = doc.get("rate_target")
    return {"kind": "rate", "rate": rate} if rate else {"kind": "pace"}


def mask_url(text: str) -> str:
    """``text`` with any URL's ``user:password@`` and credential query values hidden."""
    return _SECRET_QUERY.sub(rf"\1{HIDDEN}", _USERINFO.sub(rf"\1{HIDDEN}@", text))


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
