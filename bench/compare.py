"""tether against an earlier tether, side by side: ``python bench/compare.py REV``.

The earlier revision is checked out into a temporary git worktree and run from its own
sources (PYTHONPATH), with this environment's packages; both are run in turn against one
nginx worker, round after round, so each ratio compares runs that shared the machine's load.
Prints, per concurrency, each round's throughput and client CPU per request, and their
medians of the per-round ratios (above 1: the working tree is faster, or costs more CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import run as bench  # the benchmark's own nginx and records

HERE = Path(__file__).resolve().parent.parent


def measure(src: Path, records: Path, url: str, c: int, secs: int) -> tuple[float, float]:
    """(requests per second, client CPU microseconds per request) of one timed run."""
    cmd = [sys.executable, "-m", "tether", "run", str(records), "-t", url, "-q", "-c", str(c)]
    cmd += ["-d", str(secs), "-n", "10000000000", "--json", "-"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    doc = json.loads(done.stdout)
    return float(doc["rate"]), cpu / int(doc["requests"]) * 1e6


def compare(old: Path, records: Path, url: str, c: int, rounds: int, secs: int) -> None:
    rates: list[float] = []
    cpus: list[float] = []
    for r in range(rounds):
        old_rate, old_cpu = measure(old, records, url, c, secs)
        new_rate, new_cpu = measure(HERE / "src", records, url, c, secs)
        rates.append(new_rate / old_rate)
        cpus.append(new_cpu / old_cpu)
        print(
            f"c={c} round {r + 1}: req/s {old_rate:,.0f} -> {new_rate:,.0f}, "
            f"CPU/request {old_cpu:.2f} -> {new_cpu:.2f} us",
            flush=True,
        )
    print(
        f"c={c}: req/s new/old {statistics.median(rates):.3f}, "
        f"CPU/request new/old {statistics.median(cpus):.3f} (medians of {rounds} rounds)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the earlier revision (any git revision)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--concurrency", default="1,50")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "-q", "--detach",
                        str(worktree), args.rev], check=True)  # fmt: skip
        try:
            for src in (worktree / "src", HERE / "src"):
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True,
                               stdout=subprocess.DEVNULL)  # fmt: skip
            records = Path(tmp) / "bench.jsonl"
            bench.write_records(records)
            with bench.nginx() as url:
                for c in (int(n) for n in args.concurrency.split(",")):
                    compare(worktree / "src", records, url, c, args.rounds, args.seconds)
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force",
                            str(worktree)], check=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
