"""The leak mode against the demo service, read from the server's own count of open
connections while the run goes on."""

from __future__ import annotations

import http.client
import json

import pytest

from tether import Mismatch, Outcome, RunOptions
from tether.demo import records_path
from tether.engine.options import ClientOptions
from tether.records import file_source
from tether.run.session import run


class OpenSampler:
    """A run's sink that reads the server's open connections every ``every`` outcomes, over
    one connection of its own (subtracted)."""

    def __init__(self, port: int, every: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self._every = every
        self._seen = 0
        self.samples: list[int] = []

    def stats(self) -> dict[str, int]:
        self._conn.request("GET", "/_stats")
        data: dict[str, int] = json.loads(self._conn.getresponse().read())
        return data

    def __call__(self, outcome: Outcome, mismatches: list[Mismatch]) -> None:
        self._seen += 1
        if self._seen % self._every == 0:
            self.samples.append(self.stats()["open_excluding_self"])


def replay(port: int, sampler: OpenSampler, concurrency: int, leak: bool) -> None:
    run(
        file_source(str(records_path())),
        RunOptions(target=f"http://127.0.0.1:{port}", concurrency=concurrency, requests=600),
        ClientOptions(leak=leak),
        sink=sampler,
    )


def test_leak_mode_grows_server_connections_with_requests(demo_port: int) -> None:
    sampler = OpenSampler(demo_port, every=100)
    replay(demo_port, sampler, concurrency=1, leak=True)
    assert sampler.samples == sorted(sampler.samples)
    assert sampler.samples[0] >= 100 and sampler.samples[-1] >= 600
    assert sampler.stats()["accepted"] >= 600


@pytest.mark.parametrize("concurrency", [1, 8])
def test_normal_mode_stays_at_the_concurrency(demo_port: int, concurrency: int) -> None:
    sampler = OpenSampler(demo_port, every=50)
    replay(demo_port, sampler, concurrency=concurrency, leak=False)
    assert len(sampler.samples) == 12
    assert max(sampler.samples) <= concurrency
    assert sampler.stats()["peak_open"] <= concurrency + 1  # + the sampler's own
