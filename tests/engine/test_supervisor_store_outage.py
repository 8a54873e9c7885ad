"""The supervisor while its store does not answer: the tick goes on, the store's work is retried
with backoff, one log line per change, the snapshot says ``store_unreachable_since`` and a critical
alert names the time; when the store answers both clear. The store's failures come from a double
around a real FileQueue (a real Redis outage: tests/store/test_redis_faults.py)."""

from __future__ import annotations

import pytest

from engine.clock import FakeClock
from engine.config import GalaxyConfig, GroupConfig, Thresholds
from engine.paths import RigPaths
from engine.queue.filequeue import FileQueue
from engine.queue.protocol import StoreUnavailable
from engine.snapshot import read_snapshot
from engine.store.outage import clock_text
from engine.supervisor.launcher import FakeLauncher
from engine.supervisor.supervisor import Supervisor
from engine.telemetry.sim_rig import SimulatedRig

TH = Thresholds(snapshot_interval_s=0.5, alert_clear_s=0.0)


class _Away:
    """A FileQueue whose store calls raise StoreUnavailable while ``down``; counts the tries."""

    STORE_CALLS = frozenset({"reap_stale", "promote_due", "claims", "counts", "recent", "oldest_waiting"})

    def __init__(self, inner: FileQueue) -> None:
        self.inner = inner
        self.down = False
        self.tries: dict[str, int] = {}

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name not in self.STORE_CALLS:
            return attr

        def call(*args, **kwargs):
            if self.down:
                self.tries[name] = self.tries.get(name, 0) + 1
                raise StoreUnavailable(f"Redis did not answer {name}: Connection refused")
            return attr(*args, **kwargs)

        return call


@pytest.fixture
def rig(tmp_path):
    clock = FakeClock(1_000.0)
    paths = RigPaths(tmp_path / "shared").ensure()
    cfg = GalaxyConfig(rig="test", groups=(GroupConfig("w1", gpus=(0,)),), thresholds=TH, source=None,
                       origin="test config")
    inner = FileQueue(paths, use_inotify=False)
    queue = _Away(inner)
    logs: list[tuple[str, dict]] = []
    sup = Supervisor(cfg, paths, queue, SimulatedRig.with_count(1, clock=clock), FakeLauncher(), simulated=True,
                     pid=4242, log=lambda msg, **kw: logs.append((msg, kw)))
    sup.start(clock.now())
    yield sup, clock, paths, queue, logs
    inner.close()


def _ticks(sup, clock, n, s=0.5):
    for _ in range(n):
        clock.advance(s)
        sup.tick(clock.now())


def test_the_tick_goes_on_and_says_since_when_the_store_is_unreachable(rig) -> None:
    sup, clock, paths, queue, logs = rig
    _ticks(sup, clock, 2)
    queue.down = True
    _ticks(sup, clock, 1)
    since = clock.now()
    _ticks(sup, clock, 60)  # 30 s of ticks
    down_lines = [m for m, _ in logs if m.startswith("store unreachable since")]
    assert down_lines == [down_lines[0]] and clock_text(since) in down_lines[0]
    assert not any(m.startswith("queue maintenance failed") for m, _ in logs)
    assert queue.tries["reap_stale"] <= 8  # retried with backoff (1, 2, 4, 8, 10 s), not once a tick
    snap = read_snapshot(paths.snapshot)
    assert snap is not None and snap.store_unreachable_since == since
    alert = [a for a in snap.alerts if a.key == "store_unreachable"]
    assert len(alert) == 1 and alert[0].severity == "critical"
    assert f"store unreachable since {clock_text(since)}" in alert[0].message

    queue.down = False
    _ticks(sup, clock, 30)
    assert len([m for m, _ in logs if m.startswith("store answers again")]) == 1
    snap = read_snapshot(paths.snapshot)
    assert snap is not None and snap.store_unreachable_since is None
    assert not [a for a in snap.alerts if a.key == "store_unreachable"]


def test_a_snapshot_from_an_older_supervisor_reads_without_the_field(rig) -> None:
    sup, clock, paths, *_ = rig
    _ticks(sup, clock, 2)
    snap = read_snapshot(paths.snapshot)
    assert snap is not None
    data = snap.to_dict()
    data.pop("store_unreachable_since")
    assert type(snap).from_dict(data).store_unreachable_since is None
