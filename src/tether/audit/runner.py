"""``tether audit -- CMD``: run a Python program with the probe injected, collect its counts.

The probe goes in as ``sitecustomize`` on ``PYTHONPATH``, so every Python process the command
starts (children too) counts its own connections and writes them at exit; the program itself
is not changed. A process started with ``-E`` or ``-I`` ignores ``PYTHONPATH`` and is not
seen, nor is one that ends with ``os._exit`` (it skips its exit handlers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.audit import probe
from tether.audit.probe import Counts
from tether.audit.verdict import merge, rows

__all__ = ["Audit", "run_audited"]


@dataclass(slots=True)
class Audit:
    """What the audited processes reported."""

    exit_code: int
    processes: int = 0
    counts: Counts = field(default_factory=dict)
    unseen: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The audit document (what ``--json`` writes)."""
        table = rows(self.counts)
        return {
            "exit_code": self.exit_code,
            "processes": self.processes,
            "peers": table,
            "verdicts": [row["verdict"] for row in table if row["verdict"]],
            "unseen": self.unseen,
            "notes": notes(self),
        }


def notes(audit: Audit) -> list[str]:
    """Plain sentences on what the audit could not see."""
    found = []
    if not audit.processes:
        found.append(
            "no Python process reported: the command may not be Python, may run it with -E "
            "or -I (which ignore PYTHONPATH), or may have ended with os._exit"
        )
    if audit.unseen:
        found.append(
            f"{', '.join(audit.unseen)} loaded: connections it opens in C are not seen here"
        )
    return found


def run_audited(argv: Sequence[str]) -> Audit:
    """Run ``argv`` to its end with connection accounting in every Python process it starts."""
    with tempfile.TemporaryDirectory(prefix="tether-audit-") as tmp:
        site, out = Path(tmp, "site"), Path(tmp, "counts")
        site.mkdir()
        out.mkdir()
        shutil.copyfile(probe.__file__, site / "sitecustomize.py")
        path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, probe.ENV_DIR: str(out)}
        code = subprocess.call(list(argv), env=env)
        reports = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    unseen = sorted({name for report in reports for name in report["unseen"]})
    counts = merge(report["counts"] for report in reports)
    return Audit(code, len(reports), counts, unseen)
