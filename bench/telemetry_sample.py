"""Prints the cost of one telemetry sample: NVML (when a driver answers), the simulated rig
(5 and 8 GPUs), the host probe (psutil), and a whole tick's worth (GPU + host).

Usage: .venv/bin/python bench/telemetry_sample.py [--n 2000]
Figures are wall-clock and CPU microseconds per sample (median of 5 batches). The supervisor
samples a few times a second, so anything under ~1 ms is noise next to its 3%-of-a-core budget.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.telemetry import NvmlProbe, SimulatedRig
from engine.telemetry.host import HostProbe


def measure(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(wall us, cpu us) per call, medians over 5 batches."""
    walls, cpus = [], []
    fn()  # warm up (first NVML call initialises)
    for _ in range(5):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        walls.append((time.perf_counter() - w0) / n * 1e6)
        cpus.append((time.process_time() - c0) / n * 1e6)
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="samples per batch")
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    nvml = NvmlProbe()
    st = nvml.status()
    if st.available:
        n = max(10, args.n // 20)  # real driver calls are far slower
        w, c = measure(nvml.sample, n)
        rows.append((f"nvml ({st.detail})", f"{w:9.1f} us wall {c:9.1f} us cpu  (n={n}x5)"))
    else:
        rows.append(("nvml", f"skipped: {st.detail}"))
    for count in (5, 8):
        rig = SimulatedRig.with_count(count)
        for i in range(count):
            rig.set_load(i, 60)
            rig.allocate(i, f"ollama:{i}", 4700, pid=1000 + i)
        w, c = measure(rig.sample, args.n)
        rows.append((f"simulated rig, {count} GPUs", f"{w:9.1f} us wall {c:9.1f} us cpu  (n={args.n}x5)"))
    with tempfile.TemporaryDirectory() as tmp:
        host = HostProbe(Path(tmp))
        w, c = measure(host.sample, args.n)
        rows.append(("host (psutil: cpu, ram, disk, load)", f"{w:9.1f} us wall {c:9.1f} us cpu  (n={args.n}x5)"))
        rig = SimulatedRig.with_count(8)
        w, c = measure(lambda: (rig.sample(), host.sample()), args.n)
        rows.append(("one tick: 8 simulated GPUs + host", f"{w:9.1f} us wall {c:9.1f} us cpu  (n={args.n}x5)"))
    nvml.close()
    width = max(len(k) for k, _ in rows)
    print(f"telemetry sample cost (python {sys.version.split()[0]})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
