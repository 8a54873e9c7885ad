"""Issue 11's proof: run the SIGKILL drain test's scenario N times in a row, stopping at the first failure.

Each run is the whole test (``tests/reliability/test_queue_processes.py``: 1,500 tasks, 4 fresh
worker processes, one SIGKILLed, reap, rescue, every assert) in a fresh temp folder; only the
interpreter start and pytest collection are shared. Run it on a ``git archive`` copy of the commit
so edits in the working tree cannot break a run:

    nice -n 10 .venv/bin/python bench/sigkill_drain_repeat.py 500

About 6 s a run on a quiet 2-core machine (so 500 take ~50 min); prints one line a run.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability import test_queue_processes as scenario


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    t0 = time.time()
    for i in range(1, n + 1):
        folder = Path(tempfile.mkdtemp(prefix="sigkill-drain-"))
        started = time.time()
        try:
            scenario.test_sigkill_during_a_busy_drain_loses_nothing_and_records_nothing_twice(folder)
        except Exception:  # noqa: BLE001  (an assert or any error: this run failed)
            print(f"run {i}: FAIL after {time.time() - started:.1f}s, folder kept: {folder}", flush=True)
            traceback.print_exc()
            return 1
        shutil.rmtree(folder, ignore_errors=True)
        print(f"run {i}: pass {time.time() - started:.1f}s (total {time.time() - t0:.0f}s)", flush=True)
    print(f"ALL {n} PASSED in a row in {time.time() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
