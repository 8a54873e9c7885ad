"""Print the scheduling benchmark table (same code as ``galaxy bench schedule``).

    .venv/bin/python bench/schedule_bench.py [--workload a|b|c|all] [--gpus N] [--seed S] [--tasks N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "schedule", *sys.argv[1:]]))
