"""The records feed: every record given out the number of times a count asks for, in order,
whether the first pass is kept to cycle through or, past the cache's limit, read again (a
small ``cache_limit`` stands for :data:`tether.run.session.CACHE_RECORDS`, 100,000 records,
so that the re-read path runs on a file of ten lines)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from tether.engine.client import Client
from tether.errors import RecordError
from tether.metrics.summary import Summary
from tether.model import Record
from tether.records import file_source
from tether.run.feed import Feed, RecordSource

GOOD = 8
BAD_LINES = (3, 6)  # lines of the file that are not records


def write_records(path: Path) -> Path:
    """GOOD records, ``/r/1`` ..., with a line that is no record at each of BAD_LINES."""
    lines: list[str] = []
    n = 0
    while n < GOOD:
        if len(lines) + 1 in BAD_LINES:
            lines.append("not a record")
        else:
            n += 1
            lines.append(json.dumps({"url": f"/r/{n}"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def given_out(
    source: RecordSource, requests: int, cache_limit: int, share: tuple[int, int] = (0, 1)
) -> tuple[list[str], Summary]:
    """The URLs a feed gives the workers, in order, until it says the run is over."""
    summary = Summary()

    async def drain() -> list[str]:
        # A real client's prepare (no connection is made: nothing is sent).
        async with Client(target="http://127.0.0.1:9") as client:
            feed = Feed(source, client.prepare, summary, requests, share, cache_limit, repeat=True)
            urls = []
            while (prep := feed.next()) is not None:
                urls.append(prep.record.url)
            return urls

    return asyncio.run(drain()), summary


def counting(source: RecordSource) -> tuple[RecordSource, list[int]]:
    """``source``, and a list that grows by one each time it is opened."""
    opened: list[int] = []

    def again() -> Iterable[Record | RecordError]:
        opened.append(1)
        return source()

    return again, opened


@pytest.mark.parametrize(
    ("cache_limit", "reads"),
    [
        (GOOD, 1),  # the whole first pass kept: the file is read once
        (100, 1),
        (GOOD - 1, 4),  # one record too many: every cycle reads the file again
        (2, 4),
    ],
)
def test_each_record_goes_out_as_often_as_the_count_asks(
    tmp_path: Path, cache_limit: int, reads: int
) -> None:
    source, opened = counting(file_source(str(write_records(tmp_path / "r.jsonl"))))
    requests = 3 * GOOD + 5  # three passes and the start of a fourth
    urls, summary = given_out(source, requests, cache_limit)
    one_pass = [f"/r/{i}" for i in range(1, GOOD + 1)]
    assert urls == (one_pass * 4)[:requests]  # in order, none skipped nor repeated
    assert Counter(urls) == {u: 4 if i < 5 else 3 for i, u in enumerate(one_pass)}
    assert len(opened) == reads
    # The bad lines are reported once, however often they are read.
    assert summary.input_errors == len(BAD_LINES)
    assert [e["line"] for e in summary.input_error_examples] == list(BAD_LINES)


@pytest.mark.parametrize("cache_limit", [100, 1])
def test_a_share_cycles_its_own_records(tmp_path: Path, cache_limit: int) -> None:
    # Shares are taken by position in the file, bad lines included: the second of two
    # processes sends the records on even lines.
    source = file_source(str(write_records(tmp_path / "r.jsonl")))
    urls, _ = given_out(source, 7, cache_limit, share=(1, 2))
    mine = [f"/r/{n}" for n in (2, 3, 6, 8)]  # lines 2, 4, 8, 10 (6 is bad)
    assert urls == (mine * 2)[:7]


def records_file(path: Path, count: int) -> RecordSource:
    """``count`` good records, ``/r/0`` ..., none bad."""
    path.write_text("".join(json.dumps({"url": f"/r/{i}"}) + "\n" for i in range(count)))
    return file_source(str(path))


@pytest.mark.parametrize("cache_limit", [100, 0])  # 0: every pass read again
@pytest.mark.parametrize(("records", "workers"), [(1, 2), (3, 2), (10, 3), (3, 4), (4, 2)])
def test_shares_together_send_what_one_process_would(
    tmp_path: Path, cache_limit: int, records: int, workers: int
) -> None:
    # The i-th request of one process's run is the (i // n)-th of share i % n: dealt like
    # cards, whatever the number of records (one record: both shares send it; three over
    # two: each share's turn moves on by one every pass, so none is sent more than another).
    source = records_file(tmp_path / "r.jsonl", records)
    requests = 2 * records * workers + 1  # odd, and cycling more than once in every share
    alone, _ = given_out(source, requests, cache_limit)
    parts = [requests // workers + (1 if k < requests % workers else 0) for k in range(workers)]
    dealt = [given_out(source, parts[k], cache_limit, (k, workers))[0] for k in range(workers)]
    assert [len(urls) for urls in dealt] == parts
    assert [dealt[i % workers][i // workers] for i in range(requests)] == alone


@pytest.mark.parametrize("cache_limit", [100, 0])
def test_a_share_with_only_bad_records_at_its_positions_ends(
    tmp_path: Path, cache_limit: int
) -> None:
    # Two records, the second bad: the second of two shares is dealt only it, pass after
    # pass; it ends (after as many passes as there are shares), having sent nothing.
    path = tmp_path / "r.jsonl"
    path.write_text('{"url": "/a"}\nnot a record\n')
    urls, summary = given_out(file_source(str(path)), 5, cache_limit, share=(1, 2))
    assert urls == [] and summary.input_errors == 1
    urls, summary = given_out(file_source(str(path)), 5, cache_limit, share=(0, 2))
    assert urls == ["/a"] * 5 and summary.input_errors == 0  # the other share's to report


@pytest.mark.parametrize("cache_limit", [100, 1])  # the first pass kept, or read again
@pytest.mark.parametrize("share", [(0, 1), (1, 2)])
def test_with_no_count_a_repeating_feed_cycles_until_it_is_stopped(
    tmp_path: Path, cache_limit: int, share: tuple[int, int]
) -> None:
    # A run for a duration: no count, the records go round until the time is up (the
    # compiled cycle counts down from ENDLESS; the Python one alike).
    source = file_source(str(write_records(tmp_path / "r.jsonl")))
    alone, _ = given_out(source, 5 * GOOD, cache_limit, share)  # what a count would give

    async def drain() -> tuple[list[str], object]:
        async with Client(target="http://127.0.0.1:9") as client:
            feed = Feed(source, client.prepare, Summary(), None, share, cache_limit, repeat=True)
            urls: list[str] = []
            while len(urls) < len(alone) and (prep := feed.next()) is not None:
                urls.append(prep.record.url)
            feed.stopped = True  # the duration is up
            return urls, feed.next()

    urls, after = asyncio.run(drain())
    assert urls == alone and after is None


@pytest.mark.parametrize("cache_limit", [100, 0])
def test_with_no_count_records_that_are_all_bad_end_at_once(
    tmp_path: Path, cache_limit: int
) -> None:
    # A pass that hands out nothing ends the feed: cycling it would spin until the time.
    path = tmp_path / "r.jsonl"
    path.write_text('not a record\n{"url": 5}\n')

    async def first() -> tuple[object, Summary]:
        summary = Summary()
        async with Client(target="http://127.0.0.1:9") as client:
            source = file_source(str(path))
            feed = Feed(source, client.prepare, summary, None, cache_limit=cache_limit, repeat=True)
            return feed.next(), summary

    job, summary = asyncio.run(first())
    assert job is None and summary.input_errors == 2
