"""Side-by-side benchmark: tether and its peers against one nginx worker on loopback.

Run it with ``make bench``. It installs the peers that Debian packages (wrk, ab, hey,
h2load) when it may, starts nginx (1 worker, stub_status, a small fixed body), then
alternates every tool in rounds at 1 and 50 connections and prints medians. Figures from a
shared machine are only comparable within one run: read the ratios, not the absolutes.

Tables:
1. closed model: req/s, tether/peer ratio, client CPU per request, connections opened
   (from nginx's own accepts counter);
2. open model: tether at fixed rates, target vs achieved, latency from the due time;
3. memory: tether's peak RSS after 100k, 1M and 10M requests.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PEERS = {"wrk": "wrk", "ab": "apache2-utils", "hey": "hey", "h2load": "nghttp2-client"}
BODY = "hello\n"


# -- nginx -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
{user}
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /status {{ stub_status; }}
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}
}}
"""


@contextmanager
def nginx() -> Iterator[str]:
    """Start nginx in a temporary directory; yield its URL; stop it by its PID."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        port = free_port()
        user = "user root;" if os.geteuid() == 0 else ""
        conf = Path(tmp) / "nginx.conf"
        body = BODY.replace("\n", "\\n")
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port, user=user, body=body))
        proc = subprocess.Popen([binary, "-p", tmp, "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: status(url) is not None, 10)
            yield url
        finally:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def status(url: str) -> dict[str, int] | None:
    """nginx's stub_status counters (this read is one connection and one request)."""
    try:
        with urllib.request.urlopen(f"{url}/status", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    accepts, handled, requests = map(int, text.splitlines()[2].split())
    return {"accepts": accepts, "handled": handled, "requests": requests}


def wait_for(ready: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("nginx did not start")
        time.sleep(0.05)


# -- tools -----------------------------------------------------------------------------------


def ensure_peers() -> list[str]:
    """Install missing peers from Debian's packages when we are root; list those present."""
    missing = [pkg for tool, pkg in PEERS.items() if shutil.which(tool) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *missing],
            check=False,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return [tool for tool in PEERS if shutil.which(tool)]


@dataclass
class Sample:
    """One tool's run: its own req/s figure, and what nginx and the kernel saw."""

    rps: float
    cpu_s: float
    requests: int
    accepts: int
    rss_kb: int = 0


def measure(cmd: list[str], url: str, parse: Callable[[str], float]) -> Sample:
    """Run a load tool to completion; its CPU from wait4, its traffic from nginx."""
    before = status(url)
    # stderr apart: tether's progress lines go there (and cost what they cost), its JSON to
    # stdout; the peers print their figures on stdout.
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, code, usage = os.wait4(proc.pid, 0)
        err.seek(0)
        errors = err.read()
    after = status(url)
    assert before is not None and after is not None
    if code != 0:
        raise RuntimeError(f"{cmd[0]} failed ({code}): {(out + errors)[-500:]}")
    return Sample(
        rps=parse(out),
        cpu_s=usage.ru_utime + usage.ru_stime,
        requests=after["requests"] - before["requests"] - 1,
        accepts=after["accepts"] - before["accepts"] - 1,
        rss_kb=usage.ru_maxrss,
    )


def number(pattern: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        found = re.search(pattern, text)
        if not found:
            raise RuntimeError(f"no match for {pattern!r} in: {text[-500:]}")
        return float(found.group(1))

    return parse


def tether_cmd(records: Path, url: str, *args: str, quiet: bool = True) -> list[str]:
    cmd = [sys.executable, "-m", "tether", "run", str(records), "-t", url, *args]
    return [*cmd, "-q"] if quiet else cmd


def tether_json(text: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(text[text.index("{") :])
    return doc


def closed_cmd(tool: str, records: Path, url: str, c: int, secs: int) -> list[str]:
    target = f"{url}/"
    timed = ["-c", str(c), "-d", str(secs), "-n", "10000000000", "--json", "-"]
    return {
        "tether": tether_cmd(records, url, *timed),
        "tether +progress": tether_cmd(records, url, *timed, quiet=False),
        "tether +results": tether_cmd(records, url, *timed, "--results", os.devnull),
        "tether -w2": tether_cmd(records, url, *timed, "-w", "2"),
        "wrk": ["wrk", "-t1", f"-c{c}", f"-d{secs}s", target],
        "ab": ["ab", "-k", "-q", "-c", str(c), "-t", str(secs), "-n", "100000000", target],
        "hey": ["hey", "-c", str(c), "-z", f"{secs}s", target],
        "h2load": ["h2load", "--h1", "-c", str(c), "-D", str(secs), target],
    }[tool]


PARSERS: dict[str, Callable[[str], float]] = {
    **{
        tool: lambda text: float(tether_json(text)["rate"])  # type: ignore[arg-type]
        for tool in ("tether", "tether -w2", "tether +progress", "tether +results")
    },
    "wrk": number(r"Requests/sec:\s+([\d.]+)"),
    "ab": number(r"Requests per second:\s+([\d.]+)"),
    "hey": number(r"Requests/sec:\s+([\d.]+)"),
    "h2load": number(r"finished in [\d.]+\w+, ([\d.]+) req/s"),
}


# -- the three tables ---------------------------------------------------------------------------


def closed_table(tools: list[str], records: Path, url: str, rounds: int, secs: int) -> str:
    samples: dict[tuple[str, int], list[Sample]] = {}
    for r in range(rounds):
        for c in (1, 50):
            order = tools[r % len(tools) :] + tools[: r % len(tools)]  # alternate who goes first
            for tool in order:
                if tool == "tether -w2" and c == 1:
                    continue  # two processes need two connections
                sample = measure(closed_cmd(tool, records, url, c, secs), url, PARSERS[tool])
                samples.setdefault((tool, c), []).append(sample)
                print(f"  round {r + 1} c={c} {tool}: {sample.rps:,.0f} req/s", file=sys.stderr)
    lines = [
        "| tool | connections | req/s (median) | tether / tool | tether -w2 / tool | "
        "client CPU per request | connections opened (nginx accepts) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in (1, 50):
        ours = samples[("tether", c)]
        two = samples.get(("tether -w2", c), [])
        for tool in tools:
            runs = samples.get((tool, c))
            if not runs:
                continue
            rps = statistics.median(s.rps for s in runs)
            cpu = statistics.median(s.cpu_s / max(s.requests, 1) * 1e6 for s in runs)
            accepts = statistics.median(s.accepts for s in runs)
            vs_two = f"{paired_ratio(two, runs):.2f}" if two else "-"
            lines.append(
                f"| {tool} | {c} | {rps:,.0f} | {paired_ratio(ours, runs):.2f} | {vs_two} | "
                f"{cpu:.1f} us | {accepts:,.0f} |"
            )
    return "\n".join(lines)


def paired_ratio(ours: list[Sample], theirs: list[Sample]) -> float:
    """The median of the per-round ratios: two tools measured in the same round shared the
    machine's mood, so a slow round slows both and leaves their ratio alone."""
    return statistics.median(a.rps / b.rps for a, b in zip(ours, theirs, strict=True))


def rate_table(records: Path, url: str, secs: int) -> str:
    lines = [
        "| target req/s | achieved req/s | late | p50 ms (from due time) | p99 ms | "
        "p99 ms (service) | connections opened |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate in (5_000, 20_000, 50_000):
        cmd = tether_cmd(records, url, "--rate", str(rate), "-d", str(secs), "-n", "10000000000")
        out = subprocess.run([*cmd, "--json", "-"], capture_output=True, text=True, check=True)
        doc = tether_json(out.stdout)
        lat, svc, conns = doc["latency_ms"], doc["service_ms"], doc["connections"]
        assert isinstance(lat, dict) and isinstance(svc, dict) and isinstance(conns, dict)
        print(f"  rate {rate}: {doc['rate']}", file=sys.stderr)
        lines.append(
            f"| {rate:,} | {doc['rate']:,.0f} | {doc['late']:,} | {lat['p50']} | {lat['p99']} | "
            f"{svc['p99']} | {conns['opened']:,} |"
        )
    return "\n".join(lines)


def rss_table(records: Path, url: str, counts: list[int]) -> str:
    lines = ["| requests | peak RSS | req/s |", "| ---: | ---: | ---: |"]
    for n in counts:
        cmd = tether_cmd(records, url, "-c", "50", "-n", str(n), "--json", "-")
        sample = measure(cmd, url, PARSERS["tether"])
        print(f"  {n:,} requests: {sample.rss_kb / 1024:.1f} MiB", file=sys.stderr)
        lines.append(f"| {n:,} | {sample.rss_kb / 1024:.1f} MiB | {sample.rps:,.0f} |")
    return "\n".join(lines)


def startup_line(records: Path) -> str:
    """Time from starting ``tether run`` to its first request arriving at a listener here."""
    firsts = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        for _ in range(5):
            t0 = time.perf_counter()
            proc = subprocess.Popen(tether_cmd(records, url, "-n", "1"), stdout=subprocess.DEVNULL)
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                firsts.append(time.perf_counter() - t0)
                conn.sendall(OK_RESPONSE)
                proc.wait(30)
    ms = sorted(round(f * 1000) for f in firsts)
    return f"First request on the wire after starting `tether run`: median {ms[2]} ms ({ms})."


OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"


def machine_line() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    nginx_v = subprocess.run(
        [shutil.which("nginx") or "/usr/sbin/nginx", "-v"], capture_output=True, text=True
    ).stderr.strip()
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} cores "
        f"({cpu}), Python {platform.python_version()}, {nginx_v}"
    )


def compile_tether() -> None:
    """Write tether's bytecode, as pip does when it installs a package. An editable install
    under PYTHONDONTWRITEBYTECODE (set on some CI images) would otherwise compile every
    module at every start, and the startup figure would measure that."""
    import tether

    compileall.compile_dir(Path(tether.__file__).parent, quiet=1)


def write_records(path: Path) -> None:
    record = {"url": "/", "expect": {"status": 200, "headers": {"Content-Type": "text/plain"}}}
    path.write_text("".join(json.dumps(record) + "\n" for _ in range(100)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rss", default="100000,1000000,10000000", help="request counts")
    parser.add_argument("--output", help="also write the report here (markdown)")
    args = parser.parse_args()
    tools = ["tether", "tether +progress", "tether +results", "tether -w2", *ensure_peers()]
    compile_tether()
    with tempfile.TemporaryDirectory() as tmp, nginx() as url:
        records = Path(tmp) / "bench.jsonl"
        write_records(records)
        print("closed model ...", file=sys.stderr)
        closed = closed_table(tools, records, url, args.rounds, args.seconds)
        print("open model ...", file=sys.stderr)
        rates = rate_table(records, url, args.seconds)
        print("memory ...", file=sys.stderr)
        rss = rss_table(records, url, [int(n) for n in args.rss.split(",")])
        startup = startup_line(records)
    report = REPORT.format(
        date=datetime.date.today().isoformat(),
        machine=machine_line(),
        rounds=args.rounds,
        seconds=args.seconds,
        closed=closed,
        rates=rates,
        rss=rss,
        startup=startup,
    )
    print(report)
    if args.output:
        Path(args.output).write_text(report)
    return 0


REPORT = """# tether benchmark

{date}, {machine}.
One nginx worker on loopback (stub_status on, a 6-byte body, keep-alive), every tool in turn,
{rounds} rounds of {seconds} s each; medians. tether runs with its checks on (status and a
header per response), its connection ledger and its histograms. A ratio is the median of the
ratios within each round (tools run back to back in a round share the machine's load); above
1 means tether is faster. The machine is shared: compare figures within this run only.

## Closed model: N connections, each sending when its last response is in

{closed}

## Open model: tether at a fixed arrival rate

{rates}

Latency counts from when each request was due; the service column from when it went out.

## Memory

{rss}

{startup}
"""

if __name__ == "__main__":
    sys.exit(main())
