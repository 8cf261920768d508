"""Layers that import one way: each package is imported in a fresh interpreter with tether's
own ``__init__`` kept out of it (it imports the public API, which is everything), and what it
loaded of tether is held to what the layer may use. See the README's Layout."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

# What each module loads in a fresh interpreter: every module of the package named, imported
# through a bare ``tether`` package object, and the tether modules that came with them.
LOADED = """
import importlib, importlib.util, json, pkgutil, sys, types
spec = importlib.util.find_spec("tether")
root = types.ModuleType("tether")
root.__path__ = list(spec.submodule_search_locations)
sys.modules["tether"] = root
name = sys.argv[1]
module = importlib.import_module(name)
names = [name]
if hasattr(module, "__path__"):
    names += [f"{name}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
for each in names:
    importlib.import_module(each)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("tether."))))
"""

BOTTOM = (
    "tether.model",
    "tether.errors",
    "tether.http",
    "tether.ledger",
    "tether.merging",
    "tether.flags",
)

# (package, the tether modules it may load: a name allows it and everything below it)
LAYERS = [
    ("tether.http", ("tether.http",)),
    ("tether.document", ("tether.document",)),  # the summary document's shape: pure types
    ("tether.model", BOTTOM),
    ("tether.errors", BOTTOM),
    ("tether.ledger", BOTTOM),  # the connection ledger: pure counts, the engine's to write
    ("tether.merging", ("tether.merging",)),  # the one merge rule: the standard library only
    ("tether.flags", ("tether.flags",)),  # a flag as plain data: stdlib only, no click
    ("tether.engine", ("tether.engine", *BOTTOM)),
    ("tether.check", ("tether.check", *BOTTOM)),
    # What a flow is (templates, captures, cookies, data rows): pure, as the checks are.
    ("tether.flow", ("tether.flow", "tether.capture", *BOTTOM)),
    ("tether.version", ("tether.version",)),  # importlib.metadata only
    # Renderers only: they read the document (and thresholds, and the live summary that the
    # progress line shows), never the run or the engine that made it. The audit's and the
    # doctor's reports read their verdicts (the audit's counting is stdlib only).
    (
        "tether.report",
        (
            "tether.report",
            "tether.document",
            "tether.thresholds",
            "tether.gates",
            "tether.metrics",
            "tether.secrets",
            "tether.version",
            "tether.audit.verdict",
            "tether.audit.probe",
            *BOTTOM,
        ),
    ),
]

# (package, what it must never load)
NEVER = [
    ("tether.watch", ("tether.run", "tether.commands", "tether.cli", "tether.report")),
    (
        "tether.metrics",
        ("tether.engine", "tether.run", "tether.commands", "tether.cli", "tether.watch"),
    ),
    ("tether.records", ("tether.engine", "tether.run", "tether.commands", "tether.cli")),
    # The results file's codec and the live exporter stand on the summary, not on the run
    # that feeds them, nor on the reports rendered from what they hold.
    (
        "tether.results",
        ("tether.engine", "tether.run", "tether.commands", "tether.cli", "tether.report"),
    ),
    (
        "tether.live",
        ("tether.engine", "tether.run", "tether.commands", "tether.cli", "tether.report"),
    ),
    # The capture proxy stands on the engine, the checks' capture and diff rules and the
    # records' format; it is no run, and renders nothing.
    (
        "tether.proxy",
        ("tether.run", "tether.commands", "tether.cli", "tether.report", "tether.watch"),
    ),
]


def loaded(package: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, package], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    names: list[str] = json.loads(done.stdout)
    return names


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    """Within ``prefixes``, or the package of one (loaded with any module of it)."""
    return within(name, prefixes) or any(p.startswith(name + ".") for p in prefixes)


@pytest.mark.parametrize(("package", "may"), LAYERS, ids=[p for p, _ in LAYERS])
def test_a_layer_loads_only_what_is_below_it(package: str, may: tuple[str, ...]) -> None:
    assert [name for name in loaded(package) if not allowed(name, may)] == []


@pytest.mark.parametrize(("package", "forbidden"), NEVER, ids=[p for p, _ in NEVER])
def test_a_layer_never_loads_what_is_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    assert [name for name in loaded(package) if within(name, forbidden)] == []


def test_the_engine_is_all_there_is_to_load() -> None:
    # The rule above would hold for an engine that imported nothing at all: it does load
    # its own modules, the pool, the connection and the one send path among them.
    names = loaded("tether.engine")
    assert {"tether.engine.dispatch", "tether.engine.pool", "tether.engine.connection"} <= set(
        names
    )


ENGINE = Path(__file__).parent.parent / "src" / "tether" / "engine"


def test_one_pool_that_never_asks_a_connections_type() -> None:
    # The pool asks a connection only what the interface says (tether.engine.interface):
    # which protocol a connection speaks is never its question (only which one to dial),
    # and HTTP/2 is no subclass of it.
    tree = ast.parse((ENGINE / "pool.py").read_text())
    classes = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    asked = [
        ast.unparse(node.args[1])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in ("isinstance", "type")
        and len(node.args) == 2
    ]
    assert classes == ["Pool"]
    assert [kind for kind in asked if "Connection" in kind] == []
    pools = [p.name for p in ENGINE.glob("*.py") if re.search(r"class \w*Pool\b", p.read_text())]
    assert pools == ["pool.py"]


def test_a_request_goes_to_each_protocol_as_data() -> None:
    # HTTP/2 is sent from the request head's fields, never from HTTP/1.1 bytes parsed back,
    # and its responses' fields make Headers directly, never an HTTP/1.1-shaped head.
    source = "".join(p.read_text() for p in ENGINE.glob("*.py"))
    assert "h2_request" not in source
    assert "def _head(" not in source
