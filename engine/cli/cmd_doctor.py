"""``galaxy doctor`` (is this machine ready?) and ``galaxy init`` (a starter galaxy.toml).

Both look at the hardware through the same probe the supervisor uses (NVML, or the
simulated rig with ``--sim``), so what they report is what the rig will see.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

MARK = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]", "skip": "[skip]"}


def register(subparsers: Any) -> None:
    doctor = subparsers.add_parser("doctor", help="check NVML, GPUs, CUDA env, shared root, config, "
                                                  "backends and models")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--sim", action="store_true", help="check against the simulated rig")
    doctor.add_argument("--timeout", type=float, default=2.0, help="seconds per backend check (default 2)")
    doctor.set_defaults(func=run_doctor)

    init = subparsers.add_parser("init", help="write a starter galaxy.toml from the detected hardware")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--sim", action="store_true", help="for the simulated rig (5 x GTX 1060 6GB)")
    init.set_defaults(func=run_init)


def _config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return Path(args.config)
    return Path(os.environ.get("GALAXY_CONFIG", "galaxy.toml"))


def _probe(simulated: bool, config_path: Path | None = None) -> Any:
    """The rig's probe; with ``simulated``, shaped by galaxy.toml's [sim] table when it parses."""
    from engine.telemetry.detect import detect_probe

    sim = None
    if simulated and config_path is not None and config_path.exists():
        try:
            from engine.config import load_config

            sim = load_config(config_path).sim
        except (ValueError, OSError):  # ConfigError, unreadable: a bad file is reported by the config check itself
            sim = None
    return detect_probe(simulated=simulated, sim=sim)


# ------------------------------------------------------------------ doctor

def run_doctor(args: argparse.Namespace) -> int:
    from engine.telemetry.doctor import DoctorContext, run_checks

    probe = _probe(args.sim, _config_path(args))
    try:
        checks = run_checks(DoctorContext(root=Path(args.root), config_path=_config_path(args), probe=probe,
                                          http_timeout_s=args.timeout, simulated=args.sim))
    finally:
        probe.close()
    counts = {k: sum(1 for c in checks if c.status == k) for k in MARK}
    if args.json:
        print(json.dumps({"ok": counts["fail"] == 0, "counts": counts,
                          "checks": [c.__dict__ for c in checks]}, indent=2))
    else:
        section = None
        for c in checks:
            if c.section != section:
                section = c.section
                print(f"{section}:")
            print(f"  {MARK.get(c.status, c.status)} {c.name:<22} {c.detail}")
        print(f"doctor: {counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failure(s)"
              + (f", {counts['skip']} skipped" if counts["skip"] else ""))
    return 1 if counts["fail"] else 0


# ------------------------------------------------------------------ init

def run_init(args: argparse.Namespace) -> int:
    from engine.atomic import atomic_write_bytes
    from engine.telemetry.starter_config import detected_gpus, render_starter_config

    path = _config_path(args)
    if path.exists() and not args.force:
        print(f"galaxy init: {path} already exists; not overwriting it (use --force)", file=sys.stderr)
        return 1
    probe = _probe(args.sim)
    try:
        status = probe.status()
        gpus = detected_gpus(probe.sample()) if status.available else []
    finally:
        probe.close()
    cpu_workers = _cpu_workers()
    text = render_starter_config(rig=_rig_name(), root=_root_text(Path(args.root)), gpus=gpus, status=status,
                                 cpu_workers=cpu_workers, sim_gpus=len(gpus) if args.sim else None)
    problem = _validate(text, path, len(gpus))
    if problem:
        print(f"galaxy init: the generated config does not parse ({problem}); nothing written", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())
    print(f"wrote {path}")
    print(f"detected: {status.detail}")
    if gpus:
        for g in gpus:
            print(f"  group gpu{g.index}: GPU {g.index} ({g.name}), worker, ollama endpoint in the file")
    else:
        print(f"no GPU: {cpu_workers} CPU-only worker(s) (cpu-class tasks only); add GPU groups when a GPU "
              "is present")
    print("next: edit it if needed, then `galaxy doctor`")
    return 0


def _cpu_workers() -> int:
    try:
        from engine.config import default_cpu_workers

        return default_cpu_workers()
    except ImportError:
        return max(1, min(4, (os.cpu_count() or 1) - 1))


def _rig_name() -> str:
    name = os.uname().nodename.split(".")[0]
    return name or "rig"


def _root_text(root: Path) -> str:
    """Relative "shared" when it is the default, so the file travels with the checkout."""
    cwd = Path.cwd()
    try:
        return str(root.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(root)


def _validate(text: str, path: Path, gpu_count: int) -> str | None:
    try:
        from engine.config import ConfigError, parse_config
    except ImportError:
        return None  # no config module yet: nothing to check against
    try:
        parse_config(text, path=path, gpu_count=gpu_count)
    except ConfigError as exc:
        return str(exc)
    return None
