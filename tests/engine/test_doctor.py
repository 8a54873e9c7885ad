"""`galaxy doctor` checks and `galaxy init`: simulated rig / NVML double for GPUs, real loopback
HTTP servers for backends, real files under tmp_path."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.cli import cmd_doctor
from engine.clock import FakeClock
from engine.config import parse_config
from engine.telemetry import NoGpuProbe, NvmlProbe, SimulatedRig
from engine.telemetry.doctor import Check, DoctorContext, run_checks

_spec = importlib.util.spec_from_file_location("fake_pynvml", Path(__file__).with_name("fake_pynvml.py"))
assert _spec and _spec.loader
fake = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fake_pynvml", fake)
_spec.loader.exec_module(fake)


class _Backend(BaseHTTPRequestHandler):
    """Answers like Ollama's GET /api/version and an OpenAI-compatible GET /v1/models."""

    def do_GET(self) -> None:
        bodies = {"/api/version": {"version": "0.6.8"},
                  "/v1/models": {"object": "list", "data": [{"id": "smollm2", "object": "model"}]}}
        body = bodies.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body or {"error": "not found"}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def backend_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def free_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


def ctx(tmp_path: Path, probe: Any, config: str | None = None, **kw: Any) -> DoctorContext:
    path = tmp_path / "galaxy.toml"
    if config is not None:
        path.write_text(config)
    kw.setdefault("env", {})
    kw.setdefault("which", lambda name: None)
    return DoctorContext(root=tmp_path / "shared", config_path=path, probe=probe, http_timeout_s=2.0, **kw)


def by_name(checks: list[Check], name: str) -> list[Check]:
    return [c for c in checks if c.name == name]


def test_simulated_rig_lists_every_gpu_and_passes(tmp_path: Path) -> None:
    checks = run_checks(ctx(tmp_path, SimulatedRig(clock=FakeClock())))
    gpus = [c for c in checks if c.name.startswith("GPU ") and c.name[4:].isdigit()]
    assert len(gpus) == 5 and all(c.status == "ok" and "6144 MB VRAM" in c.detail for c in gpus)
    assert "simulated" in by_name(checks, "GPU probe")[0].detail
    assert not [c for c in checks if c.status == "fail"]
    assert by_name(checks, "galaxy.toml")[0].status == "warn"  # none yet: defaults, says `galaxy init`
    assert by_name(checks, "backends")[0].status == "skip"
    assert all(c.status in ("ok", "warn") for c in checks if c.section == "models")


def test_no_nvml_is_a_warning_that_says_why(tmp_path: Path) -> None:
    checks = run_checks(ctx(tmp_path, NoGpuProbe("no NVML: libnvidia-ml.so.1 not found")))
    (nvml,) = by_name(checks, "NVML")
    assert nvml.status == "warn" and "libnvidia-ml.so.1" in nvml.detail and "CPU workers" in nvml.detail
    assert not [c for c in checks if c.status == "fail"]


def test_nvml_driver_and_a_lost_gpu(tmp_path: Path) -> None:
    nvml = fake.FakeNvml([fake.FakeGpu(), fake.FakeGpu(lost=True)])
    checks = run_checks(ctx(tmp_path, NvmlProbe(nvml_module=nvml, process_name=str)))
    assert by_name(checks, "driver")[0].detail == "535.183.01"
    assert by_name(checks, "GPU 0")[0].status == "ok"
    lost = by_name(checks, "GPU 1")[0]
    assert lost.status == "fail" and "GPU is lost" in lost.detail


def test_backends_reachable_and_unreachable(tmp_path: Path, backend_url: str) -> None:
    dead = free_port_url()
    config = f"""
[rig]
name = "t"
[[group]]
name = "gpu0"
gpus = [0]
backend = "ollama"
endpoint = "{backend_url}"
[[group]]
name = "gpu1"
gpus = [1]
backend = "openai"
endpoint = "{backend_url}/v1"
[[group]]
name = "gpu2"
gpus = [2]
backend = "ollama"
endpoint = "{dead}"
"""
    checks = run_checks(ctx(tmp_path, SimulatedRig(clock=FakeClock()), config))
    assert by_name(checks, "galaxy.toml")[0].status == "ok"
    g0, g1, g2 = (by_name(checks, n)[0] for n in ("gpu0", "gpu1", "gpu2"))
    assert g0.status == "ok" and "ollama 0.6.8" in g0.detail
    assert g1.status == "ok" and "smollm2" in g1.detail
    assert g2.status == "fail" and "unreachable" in g2.detail and dead in g2.detail


def test_unreachable_simulated_backend_is_only_a_warning(tmp_path: Path) -> None:
    config = f'[[group]]\nname = "g"\ngpus = [0]\nbackend = "ollama"\nendpoint = "{free_port_url()}"\n'
    checks = run_checks(ctx(tmp_path, SimulatedRig(clock=FakeClock()), config, simulated=True))
    assert by_name(checks, "g")[0].status == "warn"


def test_invalid_config_fails_naming_the_line(tmp_path: Path) -> None:
    checks = run_checks(ctx(tmp_path, NoGpuProbe(), '[rig]\nname = "x"\n[[group]]\nname = "g"\nrole = "boss"\n'))
    (cfg,) = by_name(checks, "galaxy.toml")
    assert cfg.status == "fail" and ":5:" in cfg.detail and "role" in cfg.detail


def test_config_naming_gpus_that_are_not_there_fails(tmp_path: Path) -> None:
    config = '[[group]]\nname = "g"\ngpus = [7]\nbackend = "none"\n'
    checks = run_checks(ctx(tmp_path, SimulatedRig(clock=FakeClock()), config))
    (idx,) = by_name(checks, "GPU indexes")
    assert idx.status == "fail" and "[7]" in idx.detail


def test_unwritable_root_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    c = DoctorContext(root=blocker / "shared", config_path=tmp_path / "none.toml", probe=NoGpuProbe(),
                      env={}, which=lambda n: None)
    (root,) = by_name(run_checks(c), "root")
    assert root.status == "fail" and "cannot write" in root.detail


def test_cuda_environment_lines(tmp_path: Path) -> None:
    env = {"CUDA_VISIBLE_DEVICES": "", "LD_LIBRARY_PATH": f"{tmp_path}:/no/such/cuda/lib64"}
    checks = run_checks(ctx(tmp_path, NoGpuProbe(), env=env, which=lambda n: "/usr/bin/nvidia-smi"))
    assert by_name(checks, "CUDA_VISIBLE_DEVICES")[0].status == "warn"
    ld = by_name(checks, "LD_LIBRARY_PATH")[0]
    assert ld.status == "warn" and "/no/such/cuda/lib64" in ld.detail
    assert by_name(checks, "nvidia-smi")[0].detail == "/usr/bin/nvidia-smi"


# ------------------------------------------------------------------ the CLI

def cli(tmp_path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="galaxy")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--config", type=Path)
    cmd_doctor.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--root", str(tmp_path / "shared"), "--config", str(tmp_path / "galaxy.toml"),
                              *argv])
    return int(args.func(args))


def test_doctor_json_on_the_simulated_rig(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "doctor", "--sim", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["counts"]["fail"] == 0
    assert {"section", "name", "status", "detail"} <= set(out["checks"][0])


def test_doctor_exits_1_on_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "galaxy.toml").write_text("[rig\n")
    assert cli(tmp_path, "doctor", "--sim") == 1
    out = capsys.readouterr().out
    assert "[FAIL] galaxy.toml" in out and "failure(s)" in out


def test_init_sim_writes_a_config_that_parses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(tmp_path, "init", "--sim") == 0
    text = (tmp_path / "galaxy.toml").read_text()
    cfg = parse_config(text, gpu_count=5)
    assert [g.gpus for g in cfg.groups] == [(0,), (1,), (2,), (3,), (4,)]
    assert {g.backend for g in cfg.groups} == {"ollama"}
    assert len({g.endpoint for g in cfg.groups}) == 5
    assert cfg.thresholds.temp_hot_c == 83 and cfg.thresholds.temp_resume_c == 75
    assert cfg.sim.gpus == 5
    assert "wrote" in capsys.readouterr().out


def test_init_without_gpu_writes_cpu_workers_and_says_so(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from engine.telemetry.starter_config import render_starter_config

    status = NoGpuProbe("no NVML: libnvidia-ml.so.1 not found").status()
    text = render_starter_config("r", "shared", [], status, cpu_workers=3)
    cfg = parse_config(text)
    assert [g.gpus for g in cfg.groups] == [(), (), ()]
    assert all(g.preferred_classes == ("cpu",) for g in cfg.groups)
    assert "No GPU detected" in text and "3 CPU-only worker(s)" in text


def test_init_never_overwrites_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "galaxy.toml"
    target.write_text("# mine\n")
    assert cli(tmp_path, "init", "--sim") == 1
    assert target.read_text() == "# mine\n"
    assert "--force" in capsys.readouterr().err
    assert cli(tmp_path, "init", "--sim", "--force") == 0
    assert "[[group]]" in target.read_text()


def test_doctor_sim_uses_the_configs_sim_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "galaxy.toml").write_text('[[group]]\nname = "g"\ngpus = [7]\n[sim]\ngpus = 8\n')
    assert cli(tmp_path, "doctor", "--sim", "--json") == 0
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert sum(1 for c in checks if c["name"].startswith("GPU ") and c["name"][4:].isdigit()) == 8
