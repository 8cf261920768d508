"""Side-by-side benchmark: tether and its peers against one nginx worker on loopback.

Run it with ``make bench``. It installs the peers that Debian packages (wrk, ab, hey,
h2load) when it may, starts nginx (1 worker, stub_status, a small fixed body), then
alternates every tool in rounds at 1 and 50 connections and prints medians. Figures from a
shared machine are only comparable within one run: read the ratios, not the absolutes.

tether has two send paths: the compiled one (``tether.engine._compiled``, used when it was
built) and the pure-Python one, which ``TETHER_PURE_PYTHON=1`` in the environment forces.
Every tether run here writes its summary with ``--json``, and each table's ``engine`` column
is that summary's ``"engine"`` key: which path made the figure, as the run itself says, not
as this script expects. "default" runs have TETHER_PURE_PYTHON removed from their
environment; "python" runs have it set to 1. Each table opens with a line saying which rows
each engine made, and ends with a check that every tether run's own request count (what its
req/s figure is made of) matches nginx's. The report's first line has tether's git revision
(and whether the working tree differs from it), the date, and when the extension was built.

Tables:
1. closed model: req/s, the ratio to wrk, tether (compiled) / tool and tether (python) /
   tool, client CPU per request, connections opened (from nginx's own accepts counter);
   "tether (compiled)" and its variants (+progress, +results, -w2) in the default
   environment, "tether (python)" the same command with TETHER_PURE_PYTHON=1;
2. open model: tether at 20k, 50k and 100k req/s (``--rate``), 3 s of arrivals each:
   target, achieved (nginx's requests counter over the run's duration), achieved / target,
   latency from the due time, connections opened (nginx accepts), how long the run took (a
   backlog is still sent after the 3 s, never dropped: a rate tether cannot keep up with,
   100k on the Python path, takes ~6-12 s). The python-environment row of a rate is run
   when the default one reported ``compiled`` (otherwise both rows would be one path);
3. HTTP/2 over TLS (nginx's ``ssl http2`` listener, a trustme certificate): tether
   ``--http2 -c 50`` (50 requests in flight, streams on one connection) against h2load
   with the same shape (``-c 1 -m 50``: one connection, 50 streams) and with 50
   connections of one stream each (``-c 50 -m 1``), and tether ``-c 1`` against h2load
   ``-c 1 -m 1`` (one stream in flight), the same rounds as the closed model: req/s, the
   ratio tether / h2load, client CPU per request, connections opened (nginx accepts);
4. records from live traffic: wrk at 50 connections through ``tether capture`` (writing a
   record of every exchange) against wrk straight to nginx, the same rounds: req/s, the
   ratio, the proxy's CPU per request, its upstream connections (nginx accepts), and
   wrk's, the records' and nginx's counts of requests in each round;
5. memory: tether's peak RSS after 100k, 1M and 10M requests in the default environment,
   and after 100k with TETHER_PURE_PYTHON=1, a reference (more on that path would add
   ~15 s for 1M, ~2 min for 10M);
   then the time from starting ``tether run`` to its first request on the wire, 5 starts
   on each path (target: under 200 ms).

Wall time (2 cores): ~12 min: the closed model is 17 runs a round x 5 rounds x 5 s, ~7.3
min; the capture proxy 2 runs a round, ~1 min; HTTP/2 3 runs a round x 5 rounds x 5 s,
~1.3 min; the open model ~20 s
(~40 s should it ever report compiled and get python rows); memory ~2 min (the 10M run,
~100 s at ~100k req/s, is most of it); the first-request runs ~2 s. Rounds and durations are
unchanged, so the figures stay comparable with earlier results. ``--quick``
(1 round of 1 s per tool, 1 s per rate, 100k requests for memory on each path) is a smoke
test of the script itself, ~30 s; its figures mean little:
``.venv/bin/python bench/run.py --quick --output /tmp/bench-smoke.md``.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import importlib.util
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
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PEERS = {"wrk": "wrk", "ab": "apache2-utils", "hey": "hey", "h2load": "nghttp2-client"}
BODY = "hello\n"
HERE = Path(__file__).resolve().parent.parent

# tether's two send paths, chosen by the environment it starts in.
DEFAULT_ENV = {k: v for k, v in os.environ.items() if k != "TETHER_PURE_PYTHON"}
PYTHON_ENV = {**DEFAULT_ENV, "TETHER_PURE_PYTHON": "1"}
ENVS = {"default": DEFAULT_ENV, "python": PYTHON_ENV}


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
        listen 127.0.0.1:{h2_port} ssl http2;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/cert.pem;
        location = /status {{ stub_status; }}
        location = /login {{
            add_header Set-Cookie "sid=$request_id; Path=/; HttpOnly";
            default_type application/json;
            return 200 '{{"token": "$request_id"}}';
        }}
        location = /me {{
            if ($http_authorization !~ "^Bearer [0-9a-f]{{32}}$") {{ return 401; }}
            if ($cookie_sid = "") {{ return 401; }}
            default_type text/plain;
            return 200 "{body}";
        }}
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}
}}
"""


@dataclass(frozen=True)
class Nginx:
    """The bench's nginx: ``url`` (HTTP/1.1, stub_status), ``h2_url`` (TLS, HTTP/2 by ALPN),
    and the CA file that trusts its certificate."""

    url: str
    h2_url: str
    cacert: str


@contextmanager
def nginx() -> Iterator[Nginx]:
    """Start nginx in a temporary directory; yield its URLs; stop it by its PID."""
    import trustme  # a dev dependency, as the tests' certificates are

    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        port, h2_port = free_port(), free_port()
        ca = trustme.CA()
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(f"{tmp}/cert.pem")
        ca.cert_pem.write_to_path(f"{tmp}/ca.pem")
        user = "user root;" if os.geteuid() == 0 else ""
        conf = Path(tmp) / "nginx.conf"
        body = BODY.replace("\n", "\\n")
        text = NGINX_CONF.format(dir=tmp, port=port, h2_port=h2_port, user=user, body=body)
        conf.write_text(text)
        proc = subprocess.Popen([binary, "-p", tmp, "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: status(url) is not None, 10)
            yield Nginx(url, f"https://127.0.0.1:{h2_port}", f"{tmp}/ca.pem")
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
    out: str = field(default="", repr=False)  # the tool's stdout (tether's: its summary)

    def doc(self) -> dict[str, object]:
        """tether's summary document (``--json -``)."""
        return tether_json(self.out)

    @property
    def engine(self) -> str:
        """The send path this tether run reported ("compiled" or "python")."""
        return str(self.doc().get("engine", "unreported"))


def measure(
    cmd: list[str],
    url: str,
    parse: Callable[[str], float],
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Sample:
    """Run a load tool to completion (killed after ``timeout`` s); its CPU from wait4, its
    traffic from nginx."""
    before = status(url)
    # stderr apart: tether's progress lines go there (and cost what they cost), its JSON to
    # stdout; the peers print their figures on stdout.
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        timer = threading.Timer(timeout, proc.kill) if timeout is not None else None
        if timer is not None:
            timer.start()
        try:
            assert proc.stdout is not None
            out = proc.stdout.read()
            _, code, usage = os.wait4(proc.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        proc.returncode = code  # reaped by wait4: Popen must not wait for it again
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
        out=out,
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


def tether_rate(text: str) -> float:
    return float(tether_json(text)["rate"])  # type: ignore[arg-type]


COMPILED, PYTHON = "tether (compiled)", "tether (python)"
TETHERS = (COMPILED, PYTHON, "tether +progress", "tether +results", "tether -w2")


def closed_cmd(tool: str, records: Path, url: str, c: int, secs: int) -> list[str]:
    target = f"{url}/"
    timed = ["-c", str(c), "-d", str(secs), "-n", "10000000000", "--json", "-"]
    return {
        COMPILED: tether_cmd(records, url, *timed),
        PYTHON: tether_cmd(records, url, *timed),  # the same command; PYTHON_ENV tells
        "tether +progress": tether_cmd(records, url, *timed, quiet=False),
        "tether +results": tether_cmd(records, url, *timed, "--results", os.devnull),
        "tether -w2": tether_cmd(records, url, *timed, "-w", "2"),
        "wrk": ["wrk", "-t1", f"-c{c}", f"-d{secs}s", target],
        "ab": ["ab", "-k", "-q", "-c", str(c), "-t", str(secs), "-n", "100000000", target],
        "hey": ["hey", "-c", str(c), "-z", f"{secs}s", target],
        "h2load": ["h2load", "--h1", "-c", str(c), "-D", str(secs), target],
    }[tool]


PARSERS: dict[str, Callable[[str], float]] = {
    **dict.fromkeys(TETHERS, tether_rate),
    "wrk": number(r"Requests/sec:\s+([\d.]+)"),
    "ab": number(r"Requests per second:\s+([\d.]+)"),
    "hey": number(r"Requests/sec:\s+([\d.]+)"),
    "h2load": number(r"finished in [\d.]+\w+, ([\d.]+) req/s"),
}


def env_of(tool: str) -> dict[str, str]:
    return PYTHON_ENV if tool == PYTHON else DEFAULT_ENV


def engines(runs: Sequence[Sample]) -> str:
    """The engines a tool's runs reported, in order of first appearance ("a/b" if mixed)."""
    return "/".join(dict.fromkeys(s.engine for s in runs))


def engine_line(rows: dict[str, str]) -> str:
    """Which rows each engine made: "compiled: a, b; python: c" (as the runs reported)."""
    by: dict[str, list[str]] = {}
    for row, engine in rows.items():
        by.setdefault(engine, []).append(row)
    return "; ".join(f"**{engine}**: {', '.join(names)}" for engine, names in by.items())


def miscount(label: str, sample: Sample, in_flight: int) -> str | None:
    """A tether run whose own request count (what its req/s figure is made of) differs from
    what nginx counted by more than the requests that may have been in flight at its end:
    a description, else None."""
    counted = int(sample.doc()["requests"])  # type: ignore[call-overload]
    if abs(counted - sample.requests) <= in_flight + sample.requests // 1000:
        return None
    log(f"  WARNING {label}: tether counted {counted:,} requests, nginx {sample.requests:,}")
    return f"{label}: tether {counted:,}, nginx {sample.requests:,}"


def counts_line(misses: list[str | None], in_flight: str) -> str:
    found = [miss for miss in misses if miss is not None]
    if found:
        return "**tether's own request count differs from nginx's:** " + "; ".join(found) + "."
    return (
        "Every tether run's own request count (what its req/s figure is made of) matched"
        f" nginx's, to within {in_flight}."
    )


# -- the three tables ---------------------------------------------------------------------------


def closed_table(tools: list[str], records: Path, url: str, rounds: int, secs: int) -> str:
    samples: dict[tuple[str, int], list[Sample]] = {}
    misses: list[str | None] = []
    for r in range(rounds):
        for c in (1, 50):
            order = tools[r % len(tools) :] + tools[: r % len(tools)]  # alternate who goes first
            for tool in order:
                if tool == "tether -w2" and c == 1:
                    continue  # two processes need two connections
                cmd = closed_cmd(tool, records, url, c, secs)
                t0 = time.monotonic()
                sample = measure(cmd, url, PARSERS[tool], env_of(tool), timeout=secs + 60)
                samples.setdefault((tool, c), []).append(sample)
                if tool in TETHERS:
                    misses.append(miscount(f"{tool} c={c} round {r + 1}", sample, c))
                engine = f" [{sample.engine}]" if tool in TETHERS else ""
                took = time.monotonic() - t0
                log(f"  round {r + 1} c={c} {tool}{engine}: {sample.rps:,.0f} req/s ({took:.1f} s)")
    lines = [
        "| tool | engine | connections | req/s (median) | tool / wrk | "
        f"{COMPILED} / tool | {PYTHON} / tool | tether -w2 / tool | "
        "client CPU per request | connections opened (nginx accepts) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    reported = {
        tool: engines([s for c in (1, 50) for s in samples.get((tool, c), [])])
        for tool in tools
        if tool in TETHERS
    }
    for c in (1, 50):
        wrk = samples.get(("wrk", c), [])
        ours = [samples.get((name, c), []) for name in (COMPILED, PYTHON, "tether -w2")]
        for tool in tools:
            runs = samples.get((tool, c))
            if not runs:
                continue
            engine = engines(runs) if tool in TETHERS else "-"
            rps = statistics.median(s.rps for s in runs)
            cpu = statistics.median(s.cpu_s / max(s.requests, 1) * 1e6 for s in runs)
            accepts = statistics.median(s.accepts for s in runs)
            ratios = " | ".join(ratio(mine, runs) for mine in ours)
            lines.append(
                f"| {tool} | {engine} | {c} | {rps:,.0f} | {ratio(runs, wrk)} | {ratios} | "
                f"{cpu:.1f} us | {accepts:,.0f} |"
            )
    head = (
        f"Engine, as each run's summary reported: {engine_line(reported)}; peers: -. "
        f"`{PYTHON}` is `{COMPILED}`'s command with TETHER_PURE_PYTHON=1; every other tether "
        "row runs in the default environment."
    )
    if "python" in reported.get(COMPILED, "python"):
        head += (
            f" **`{COMPILED}` reported the Python path: the extension is not built (or did not"
            " load), and its figures are not the compiled path's.**"
        )
    counted = counts_line(misses, "its connections and 0.1%")
    return head + "\n\n" + "\n".join(lines) + "\n\n" + counted


def ratio(ours: list[Sample], theirs: list[Sample]) -> str:
    return f"{paired_ratio(ours, theirs):.2f}" if ours and theirs else "-"


def paired_ratio(ours: list[Sample], theirs: list[Sample]) -> float:
    """The median of the per-round ratios: two tools measured in the same round shared the
    machine's load, so a slow round slows both and leaves their ratio alone."""
    return statistics.median(a.rps / b.rps for a, b in zip(ours, theirs, strict=True))


H2_TETHERS = {"tether --http2 -c 50": 50, "tether --http2 -c 1": 1}
"""tether's two shapes over HTTP/2, by the requests they keep in flight."""
H2_PEERS = {"h2load -c 1 -m 50": 50, "h2load -c 50 -m 1": 50, "h2load -c 1 -m 1": 1}
"""h2load's, each compared with tether's of as many requests in flight."""


def h2_cmd(tool: str, records: Path, server: Nginx, secs: int) -> list[str]:
    if tool in H2_TETHERS:
        in_flight = str(H2_TETHERS[tool])
        timed = ["-c", in_flight, "-d", str(secs), "-n", "10000000000", "--json", "-"]
        return tether_cmd(records, server.h2_url, "--http2", "--cacert", server.cacert, *timed)
    shape = tool.split()[1:]  # h2load verifies no certificate: nothing to trust
    return ["h2load", *shape, "-D", str(secs), f"{server.h2_url}/"]


def h2_table(records: Path, server: Nginx, rounds: int, secs: int) -> str:
    """tether --http2 at 50 requests in flight and at one against h2load of as many, over
    TLS, round after round (who goes first alternating), as the closed model's table is
    made."""
    peers = list(H2_PEERS) if shutil.which("h2load") else []
    tools = [*H2_TETHERS, *peers]
    samples: dict[str, list[Sample]] = {}
    misses: list[str | None] = []
    for r in range(rounds):
        for tool in tools[r % len(tools) :] + tools[: r % len(tools)]:
            ours = tool in H2_TETHERS
            parse = tether_rate if ours else PARSERS["h2load"]
            cmd = h2_cmd(tool, records, server, secs)
            sample = measure(cmd, server.url, parse, DEFAULT_ENV, timeout=secs + 60)
            samples.setdefault(tool, []).append(sample)
            if ours:
                misses.append(miscount(f"{tool} round {r + 1}", sample, H2_TETHERS[tool]))
            log(f"  round {r + 1} HTTP/2 {tool}: {sample.rps:,.0f} req/s")
    last = samples["tether --http2 -c 50"][-1]
    connections = last.doc().get("connections")
    protocol = json.dumps(connections.get("protocol") if isinstance(connections, dict) else None)
    lines = [
        "| tool | engine | req/s (median) | tether --http2 / tool (as many in flight) | "
        "client CPU per request | connections opened (nginx accepts) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for tool in tools:
        runs = samples[tool]
        rps = statistics.median(s.rps for s in runs)
        cpu = statistics.median(s.cpu_s / max(s.requests, 1) * 1e6 for s in runs)
        accepts = statistics.median(s.accepts for s in runs)
        engine = engines(runs) if tool in H2_TETHERS else "-"
        in_flight = H2_TETHERS.get(tool) or H2_PEERS[tool]
        mine = next(t for t, n in H2_TETHERS.items() if n == in_flight)
        lines.append(
            f"| {tool} | {engine} | {rps:,.0f} | {ratio(samples[mine], runs)} | {cpu:.1f} us | "
            f"{accepts:,.0f} |"
        )
    head = (
        "Over TLS. tether's requests by protocol, as its summary counted them (last round, -c"
        f" 50): `{protocol}`. Each ratio is tether's median of per-round ratios to the tool,"
        " with as many requests in flight (50, or one)."
    )
    return (
        head
        + "\n\n"
        + "\n".join(lines)
        + "\n\n"
        + counts_line(misses, "the requests in flight and 0.1%")
    )


LOGIN = {
    "method": "POST",
    "url": "/login",
    "body": '{"user": "a"}',
    "expect": {"status": 200},
    "capture": {"token": {"json": "$.token"}},
}
ME = {"url": "/me", "headers": {"Authorization": "Bearer {{token}}"}, "expect": {"status": 200}}
FLOW = "".join(json.dumps(record) + "\n" for record in (LOGIN, ME, ME, ME))
"""The bench's flow: a login (nginx sets a session cookie and returns a token in JSON), then
three GETs that nginx answers 200 only with the token and the cookie (else 401)."""
FLOW_TOOLS = ("tether flow", COMPILED, "wrk")


def flow_cmd(tool: str, flow: Path, records: Path, url: str, secs: int) -> list[str]:
    timed = ["-c", "50", "-d", str(secs), "-n", "10000000000", "--json", "-"]
    if tool == "tether flow":
        return tether_cmd(flow, url, *timed)
    return closed_cmd(tool, records, url, 50, secs)


def flow_table(records: Path, url: str, rounds: int, secs: int, tmp: Path) -> str:
    """The flow (a login and three authorised GETs per iteration) at 50 virtual users,
    beside tether and wrk sending plain GETs on 50 connections, round after round."""
    flow = tmp / "flow.jsonl"
    flow.write_text(FLOW)
    samples: dict[str, list[Sample]] = {}
    misses: list[str | None] = []
    failed: list[str] = []
    for r in range(rounds):
        for tool in FLOW_TOOLS[r % 3 :] + FLOW_TOOLS[: r % 3]:
            parse = PARSERS[tool] if tool == "wrk" else tether_rate
            sample = measure(flow_cmd(tool, flow, records, url, secs), url, parse, DEFAULT_ENV)
            samples.setdefault(tool, []).append(sample)
            if tool != "wrk":
                misses.append(miscount(f"{tool} round {r + 1}", sample, 50))
                doc = sample.doc()
                if doc.get("ok") != doc.get("requests"):
                    failed.append(f"{tool} round {r + 1}: {doc.get('ok')} of {doc.get('requests')}")
            log(f"  round {r + 1} flow {tool}: {sample.rps:,.0f} req/s")
    lines = [
        "| tool | sends | engine | req/s (median) | tool / wrk | client CPU per request | "
        "connections opened (nginx accepts) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    sends = {"tether flow": "the flow", COMPILED: "plain GETs", "wrk": "plain GETs"}
    for tool in FLOW_TOOLS:
        runs = samples[tool]
        rps = statistics.median(s.rps for s in runs)
        cpu = statistics.median(s.cpu_s / max(s.requests, 1) * 1e6 for s in runs)
        engine = engines(runs) if tool != "wrk" else "-"
        accepts = statistics.median(s.accepts for s in runs)
        lines.append(
            f"| {tool} | {sends[tool]} | {engine} | {rps:,.0f} | "
            f"{ratio(runs, samples['wrk'])} | {cpu:.1f} us | {accepts:,.0f} |"
        )
    last = samples["tether flow"][-1].doc().get("flows")
    head = (
        "50 virtual users, each logging in (`POST /login`: nginx sets a session cookie and "
        "returns a token in JSON, captured with `$.token`) and then sending three "
        "`GET /me` with `Authorization: Bearer {{token}}` and the cookie from its jar, which "
        "nginx answers 200 only when both are there. Requests a second, every response "
        f"checked; the last round's iterations: `{json.dumps(last)}`."
    )
    checked = (
        "**Responses that did not match:** " + "; ".join(failed) + "."
        if failed
        else "Every response of every tether run matched its expectation."
    )
    table = "\n".join(lines)
    return f"{head}\n\n{table}\n\n{checked} {counts_line(misses, 'its connections and 0.1%')}"


@dataclass
class Proxied:
    """One round of wrk through ``tether capture``: wrk's sample (nginx's accepts are the
    proxy's upstream connections), the requests nginx served once the proxy had stopped
    (it answers what was in flight when wrk stopped), the proxy's CPU and what it says it
    wrote."""

    sample: Sample
    wrk_requests: int
    served: int
    proxy_cpu_s: float
    written: int


def wrk_count(out: str) -> int:
    """The requests wrk counted (those whose response came in before its end)."""
    found = re.search(r"(\d+) requests in", out)
    return int(found.group(1)) if found else 0


def through_proxy(url: str, secs: int, tmp: Path) -> Proxied:
    """wrk at 50 connections through a capture proxy in front of ``url``, the proxy then
    stopped with SIGTERM as a user would."""
    out = tmp / "captured.jsonl"
    cmd = [sys.executable, "-m", "tether", "capture", "--listen", "127.0.0.1:0"]
    cmd += ["--upstream", url, "-o", str(out)]
    proxy = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=DEFAULT_ENV)
    assert proxy.stderr is not None
    first = proxy.stderr.readline()
    port = first.split("listening on http://")[1].split(",")[0].rsplit(":", 1)[1]
    wrk = ["wrk", "-t1", "-c50", f"-d{secs}s", f"http://127.0.0.1:{port}/"]
    before = status(url)
    sample = measure(wrk, url, PARSERS["wrk"], DEFAULT_ENV, timeout=secs + 60)
    proxy.send_signal(signal.SIGTERM)
    said = proxy.stderr.read()
    _, code, usage = os.wait4(proxy.pid, 0)
    proxy.returncode = code
    after = status(url)
    assert before is not None and after is not None
    written = re.search(r"([\d,]+) records written", said)
    return Proxied(
        sample,
        wrk_count(sample.out),
        after["requests"] - before["requests"] - 3,  # the reads of stub_status: 3 requests
        usage.ru_utime + usage.ru_stime,
        int(written.group(1).replace(",", "")) if written else -1,
    )


def proxy_table(records: Path, url: str, rounds: int, secs: int, tmp: Path) -> str:
    """wrk through ``tether capture`` (recording every exchange) against wrk straight to
    nginx, 50 connections, round after round."""
    direct: list[Sample] = []
    proxied: list[Proxied] = []
    for r in range(rounds):
        for step in ("direct", "proxied") if r % 2 == 0 else ("proxied", "direct"):
            if step == "direct":
                direct.append(
                    measure(closed_cmd("wrk", records, url, 50, secs), url, PARSERS["wrk"])
                )
                log(f"  round {r + 1} wrk direct: {direct[-1].rps:,.0f} req/s")
            else:
                proxied.append(through_proxy(url, secs, tmp))
                log(f"  round {r + 1} wrk through capture: {proxied[-1].sample.rps:,.0f} req/s")
    through = [p.sample for p in proxied]
    cpu = statistics.median(p.proxy_cpu_s / max(p.written, 1) * 1e6 for p in proxied)
    lines = [
        "| wrk -c 50 | req/s (median) | / direct | proxy CPU per request | "
        "upstream connections (nginx accepts) |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| straight to nginx | {statistics.median(s.rps for s in direct):,.0f} | 1 | - | "
        f"{statistics.median(s.accepts for s in direct):,.0f} |",
        f"| through tether capture | {statistics.median(s.rps for s in through):,.0f} | "
        f"{paired_ratio(through, direct):.2f} | {cpu:.1f} us | "
        f"{max(s.accepts for s in through):,} (most in a round) |",
    ]
    counts = "; ".join(
        f"round {i + 1}: wrk {p.wrk_requests:,}, written {p.written:,}, nginx {p.served:,}"
        for i, p in enumerate(proxied)
    )
    lost = [i + 1 for i, p in enumerate(proxied) if p.written != p.served]
    verdict = (
        f"**Records and nginx's count differ in rounds {lost}.**"
        if lost
        else "Every request nginx served was written as a record."
    )
    head = (
        "`tether capture` in front of nginx, writing a checked record of every exchange to a "
        "file, with wrk at 50 connections through it; wrk straight to nginx beside it. The "
        "proxy's upstream connections are nginx's accepts during the proxied run (its "
        "`--max-idle-per-host` is 64)."
    )
    tail = (
        f"{verdict} Requests counted ({counts}); wrk does not count the responses still in "
        "flight when it stops (at most one a connection), which the proxy answered and wrote."
    )
    return f"{head}\n\n" + "\n".join(lines) + f"\n\n{tail}"


MAX_INFLIGHT = 1000  # tether's default --max-inflight


def rate_table(records: Path, url: str, rates: list[int], secs: float) -> str:
    lines = [
        "| target req/s | environment | engine | achieved req/s (nginx) | achieved / target | "
        "late | p50 ms (from due time) | p99 ms (from due time) | p99 ms (service) | "
        "connections opened (nginx accepts) | run s |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    reported: dict[str, str] = {}
    misses: list[str | None] = []
    skipped = False
    for rate in rates:
        for name, env in ENVS.items():
            if name == "python" and reported.get(f"{rate:,} default") != "compiled":
                skipped = True  # the default run was the Python path already
                continue
            cmd = tether_cmd(records, url, "--rate", str(rate), "-d", str(secs))
            cmd += ["-n", "10000000000", "--json", "-"]
            sample = measure(cmd, url, tether_rate, env, timeout=secs + 60)
            doc = sample.doc()
            lat, svc = doc["latency_ms"], doc["service_ms"]
            assert isinstance(lat, dict) and isinstance(svc, dict)
            duration = float(doc["duration_s"])  # type: ignore[arg-type]
            achieved = sample.requests / duration if duration > 0 else 0.0
            reported[f"{rate:,} {name}"] = sample.engine
            misses.append(miscount(f"{rate:,} req/s {name}", sample, MAX_INFLIGHT))
            log(
                f"  rate {rate:,} {name} [{sample.engine}]: nginx {achieved:,.0f} req/s, "
                f"tether {sample.rps:,.0f} req/s, p99 {lat['p99']} ms"
            )
            lines.append(
                f"| {rate:,} | {name} | {sample.engine} | {achieved:,.0f} | "
                f"{achieved / rate:.2f} | {doc['late']:,} | {lat['p50']} | {lat['p99']} | "
                f"{svc['p99']} | {sample.accepts:,} | {duration:.1f} |"
            )
    head = (
        f"Engine, as each run's summary reported: {engine_line(reported)}. "
        f"Each run is {secs:g} s of arrivals; a backlog tether cannot keep up with is still"
        " sent, never dropped, so a run can last longer (run s). Achieved is nginx's requests"
        " counter over the run's duration."
    )
    if skipped:
        head += (
            " A rate has no TETHER_PURE_PYTHON=1 row when its default run already reported the"
            " Python path: it would measure the same path twice."
        )
    counted = counts_line(misses, f"the {MAX_INFLIGHT:,} that may be in flight and 0.1%")
    return head + "\n\n" + "\n".join(lines) + "\n\n" + counted


def rss_table(records: Path, url: str, counts: dict[str, list[int]]) -> str:
    lines = [
        "| requests | environment | engine | peak RSS | req/s |",
        "| ---: | --- | --- | ---: | ---: |",
    ]
    reported: dict[str, str] = {}
    misses: list[str | None] = []
    order = list(ENVS)
    runs = sorted(
        ((n, name) for name, ns in counts.items() for n in ns),
        key=lambda run: (run[0], order.index(run[1])),
    )
    for n, name in runs:
        cmd = tether_cmd(records, url, "-c", "50", "-n", str(n), "--json", "-")
        sample = measure(cmd, url, tether_rate, ENVS[name], timeout=n / 5_000 + 60)
        reported[f"{n:,} {name}"] = sample.engine
        misses.append(miscount(f"{n:,} {name}", sample, 0))
        log(f"  {n:,} requests {name} [{sample.engine}]: {sample.rss_kb / 1024:.1f} MiB")
        lines.append(
            f"| {n:,} | {name} | {sample.engine} | {sample.rss_kb / 1024:.1f} MiB | "
            f"{sample.rps:,.0f} |"
        )
    head = f"Engine, as each run's summary reported: {engine_line(reported)}. 50 connections."
    return head + "\n\n" + "\n".join(lines) + "\n\n" + counts_line(misses, "0.1%")


STARTUP_TARGET_MS = 200


def startup_line(records: Path, starts: int = 5) -> str:
    """Time from starting ``tether run`` to its first request arriving at a listener here,
    on each path."""
    parts = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        for name, env in ENVS.items():
            firsts, seen = [], []
            for _ in range(starts):
                cmd = tether_cmd(records, url, "-n", "1", "--json", "-")
                t0 = time.perf_counter()
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
                )
                conn, _ = listener.accept()
                with conn:
                    conn.recv(4096)
                    firsts.append(time.perf_counter() - t0)
                    conn.sendall(OK_RESPONSE)
                    out, _ = proc.communicate(timeout=30)
                seen.append(str(tether_json(out).get("engine", "unreported")))
            ms = sorted(round(f * 1000) for f in firsts)
            median = statistics.median(ms)
            verdict = "met" if median < STARTUP_TARGET_MS else "**missed**"
            engine = "/".join(dict.fromkeys(seen))
            log(f"  first request, {name} [{engine}]: {median:.0f} ms {ms}")
            parts.append(
                f"{name} environment, engine **{engine}**: median {median:.0f} ms {ms}, {verdict}"
            )
    return (
        f"First request on the wire after starting `tether run` (target < {STARTUP_TARGET_MS} ms,"
        f" {starts} starts each): " + "; ".join(parts) + "."
    )


OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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


def revision_line() -> str:
    """tether's git revision, and whether the working tree differs from it (read without
    taking git's index lock: others may be using the repository)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(HERE), *args], capture_output=True, text=True, env=env
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    rev = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no")
    dirty = f" + uncommitted changes to {len(changed.splitlines())} files" if changed else ""
    return f"tether revision {rev}{dirty}"


def extension_line() -> str:
    """Where the compiled extension is, and whether it is older than its source."""
    spec = importlib.util.find_spec("tether.engine._compiled")
    if spec is None or spec.origin is None:
        return "compiled extension: not built (every run takes the Python path)"
    built = Path(spec.origin)
    source = built.with_name("_compiled.pyx")
    when = datetime.datetime.fromtimestamp(built.stat().st_mtime, datetime.UTC)
    stale = ""
    if source.exists() and source.stat().st_mtime > built.stat().st_mtime:
        stale = " **older than _compiled.pyx: rebuild it (pip install -e .)**"
    return f"compiled extension {built.name} built {when:%Y-%m-%d %H:%M} UTC{stale}"


def compile_tether() -> None:
    """Write tether's bytecode, as pip does when it installs a package. An editable install
    under PYTHONDONTWRITEBYTECODE (set on some CI images) would otherwise compile every
    module at every start, and the startup figure would measure that."""
    import tether

    compileall.compile_dir(Path(tether.__file__).parent, quiet=1)


def write_records(path: Path) -> None:
    record = {"url": "/", "expect": {"status": 200, "headers": {"Content-Type": "text/plain"}}}
    path.write_text("".join(json.dumps(record) + "\n" for _ in range(100)))


def counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5, help="per closed-model run")
    parser.add_argument("--rates", default="20000,50000,100000", help="open model, req/s")
    parser.add_argument("--rate-seconds", type=float, default=3, help="per open-model run")
    parser.add_argument("--rss", default="100000,1000000,10000000", help="request counts")
    parser.add_argument(
        "--rss-python", default="100000", help="request counts, TETHER_PURE_PYTHON=1"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 round of 1 s per tool, 1 s per rate, memory at 100k requests "
        "(overrides the options above)",
    )
    parser.add_argument("--output", help="also write the report here (markdown)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.rate_seconds = 1, 1, 1.0
        args.rss = args.rss_python = "100000"
    started = time.monotonic()
    when = datetime.datetime.now(datetime.UTC)
    tools = [COMPILED, PYTHON, "tether +progress", "tether +results", "tether -w2"]
    tools += ensure_peers()
    compile_tether()
    with tempfile.TemporaryDirectory() as tmp, nginx() as server:
        url = server.url
        records = Path(tmp) / "bench.jsonl"
        write_records(records)
        log("closed model ...")
        closed = closed_table(tools, records, url, args.rounds, args.seconds)
        log("flow ...")
        flows = flow_table(records, url, args.rounds, args.seconds, Path(tmp))
        log("capture proxy ...")
        proxy = proxy_table(records, url, args.rounds, args.seconds, Path(tmp))
        log("HTTP/2 ...")
        h2 = h2_table(records, server, args.rounds, args.seconds)
        log("open model ...")
        rates = rate_table(records, url, counts(args.rates), args.rate_seconds)
        log("memory ...")
        rss = rss_table(
            records, url, {"default": counts(args.rss), "python": counts(args.rss_python)}
        )
        startup = startup_line(records)
    minutes = (time.monotonic() - started) / 60
    report = REPORT.format(
        revision=revision_line(),
        date=f"{when:%Y-%m-%d %H:%M} UTC",
        extension=extension_line(),
        machine=machine_line(),
        rounds=f"{args.rounds} round{'s' if args.rounds != 1 else ''}",
        seconds=args.seconds,
        quick=" **--quick: a smoke test of the script; its figures mean little.**"
        if args.quick
        else "",
        minutes=minutes,
        closed=closed,
        flows=flows,
        proxy=proxy,
        h2=h2,
        rates=rates,
        rss=rss,
        startup=startup,
    )
    print(report)
    log(f"bench wall time: {minutes:.1f} min")
    if args.output:
        Path(args.output).write_text(report)
    return 0


REPORT = """# tether benchmark

{revision}, {date}; {extension}.

{machine}.
One nginx worker on loopback (stub_status on, a 6-byte body, keep-alive), every tool in turn,
{rounds} of {seconds} s each; medians. tether runs with its checks on (status and a
header per response), its connection ledger and its histograms. A ratio is the median of the
ratios within each round (tools run back to back in a round share the machine's load); above
1 means the first-named is faster. The machine is shared: compare figures within this run
only. The whole run took {minutes:.1f} min.{quick}

## Closed model: N connections, each sending when its last response is in

{closed}

## A flow: log in, then three authorised GETs

{flows}

## Records from live traffic: wrk through tether capture

{proxy}

## HTTP/2 over TLS: tether --http2 and h2load

{h2}

## Open model: tether at a fixed arrival rate

{rates}

Latency counts from when each request was due; the service column from when it went out.

## Memory

{rss}

{startup}
"""

if __name__ == "__main__":
    sys.exit(main())
