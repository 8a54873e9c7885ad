"""The dashboard polls its snapshot source from one reader thread (galaxy_tui/reader.py), not a
Textual thread worker per poll (each cost ~2.5 ms of CPU, twice a second)."""

from __future__ import annotations

import asyncio
import threading

from tuikit import app_for, canned, wait_ready

from galaxy_tui.reader import SourceReader
from galaxy_tui.source import SnapshotReading

WAIT_S = 30.0  # bounds for events that come at once on an idle machine


class GatedSource:
    """A source whose first poll waits for ``release``; says when each poll starts."""

    def __init__(self) -> None:
        self.polls = 0
        self.started = [threading.Event() for _ in range(4)]
        self.release = threading.Event()

    def poll(self) -> SnapshotReading | None:
        self.polls += 1
        self.started[self.polls - 1].set()
        if self.polls == 1:
            assert self.release.wait(WAIT_S)
        return SnapshotReading(None, f"poll {self.polls}", None)


def test_kicks_during_a_poll_make_one_more_poll() -> None:
    source = GatedSource()
    got: list[str | None] = []
    reader = SourceReader(source, lambda r: got.append(r.error))
    reader.kick()
    assert source.started[0].wait(WAIT_S)
    for _ in range(3):  # the timer fires while the disk is slow
        reader.kick()
    source.release.set()
    assert source.started[1].wait(WAIT_S)
    reader.stop()
    assert reader.join(WAIT_S)
    assert source.polls == 2
    assert got in (["poll 1", "poll 2"], ["poll 1"])  # a reading that comes after stop is dropped


class Failing:
    def poll(self) -> SnapshotReading | None:
        raise OSError("stale NFS handle")


class Quiet:
    def poll(self) -> SnapshotReading | None:
        return None


def test_a_failed_poll_is_a_reading_and_nothing_new_is_none() -> None:
    got: list[SnapshotReading] = []
    done = threading.Event()
    reader = SourceReader(Failing(), lambda r: (got.append(r), done.set()))
    reader.kick()
    assert done.wait(WAIT_S)
    reader.stop()
    assert reader.join(WAIT_S)
    assert got == [SnapshotReading(None, "snapshot source failed: stale NFS handle", None)]

    quiet: list[SnapshotReading] = []
    reader = SourceReader(Quiet(), quiet.append)
    reader.kick()
    reader.stop()
    assert reader.join(WAIT_S)
    assert quiet == []


def test_the_app_polls_without_a_worker_per_poll_and_stops_its_reader() -> None:
    snap = canned("busy5")
    app, _ = app_for(snap)

    async def go() -> tuple[int, SourceReader | None]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_ready(pilot)
            for _ in range(5):  # what the interval timer does
                app.poll_source()
                await pilot.pause()
            return len(app.workers), app._reader

    workers, reader = asyncio.run(go())
    assert workers == 0
    assert reader is not None and reader.stopped  # the app's unmount stopped it
    assert reader.join(WAIT_S)
