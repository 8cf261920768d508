"""docs/layout.md, where each idea lives, is held to the tree: every module of the package
is named there, and every module it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "src" / "tether"
MODULE = re.compile(r"`([\w/]+\.(?:py|pyx|pxi))`")


def named() -> set[str]:
    """The modules the page's tables name (``pkg/a.py``, ``b.py`` in one cell: both pkg's)."""
    found: set[str] = set()
    for line in (ROOT / "docs" / "layout.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        folder = ""
        for name in MODULE.findall(line.split("|")[1]):
            if "/" in name:
                folder = name.rsplit("/", 1)[0] + "/"
                found.add(name)
            else:
                found.add(folder + name)
    return found


def docstring_only(path: Path) -> bool:
    """An ``__init__.py`` with nothing in it but its package's docstring."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) for node in body)


def modules() -> set[str]:
    """Every module of the package, but an ``__init__.py`` that only says what it is."""
    paths = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pyx"), *PACKAGE.rglob("*.pxi")]
    return {
        str(p.relative_to(PACKAGE))
        for p in paths
        if not (p.name == "__init__.py" and docstring_only(p))
    }


def test_every_module_is_named_where_each_idea_lives() -> None:
    assert sorted(modules() - named()) == []


def test_every_module_named_there_exists() -> None:
    assert sorted(named() - {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.p[yx]*")}) == []
