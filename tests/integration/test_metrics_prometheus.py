"""A real Prometheus server scrapes a running ``galaxy supervise --sim`` and answers a query
for a galaxy series with the expected labels (Debian's ``prometheus``; scripts/test.sh
installs it). Prometheus runs on a free loopback port with its own temporary storage and is
stopped by the test."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed and could not be (Debian package 'prometheus', "
                               "installed by scripts/test.sh with apt-get)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read().decode())


def wait_for(cond, what: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = cond()
        except OSError:
            got = None
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: process exited with {proc.returncode}: "
                        f"{log.read_text(errors='replace')[-3000:] if log else ''}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for: {what}; log: {log.read_text(errors='replace')[-3000:] if log else ''}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_prometheus_scrapes_galaxy(tmp_path: Path) -> None:
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "galaxy.toml"
    config.write_text(f'[rig]\nname = "itrig"\n\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n')
    sup_log = tmp_path / "supervise.log"
    with sup_log.open("wb") as fh:
        sup = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "--root", str(tmp_path / "shared"),
                                "--config", str(config), "supervise", "--sim", "--gpus", "2", "--tick", "0.2"],
                               cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    prom_cfg = tmp_path / "prometheus.yml"
    prom_cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: galaxy\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n")
    prom_log = tmp_path / "prometheus.log"
    prom = None
    try:
        wait_for(lambda: b"galaxy_gpu_memory_total_bytes" in urllib.request.urlopen(
            f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read(), "galaxy /metrics", 60, sup, sup_log)
        with prom_log.open("wb") as fh:
            prom = subprocess.Popen([str(PROMETHEUS), f"--config.file={prom_cfg}",
                                     f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                     f"--web.listen-address=127.0.0.1:{prom_port}"],
                                    cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT)
        api = f"http://127.0.0.1:{prom_port}/api/v1/query?query="
        query = urllib.parse.quote('galaxy_gpu_memory_total_bytes{job="galaxy"}')

        def series():
            body = get_json(api + query)
            assert body["status"] == "success", body
            return body["data"]["result"]

        result = wait_for(series, "Prometheus to scrape galaxy", 90, prom, prom_log)
        by_gpu = {r["metric"]["gpu"]: r for r in result}
        assert sorted(by_gpu) == ["0", "1"]
        labels = by_gpu["0"]["metric"]
        assert labels["rig"] == "itrig" and labels["uuid"].startswith("GPU-") and "1060" in labels["name"]
        assert labels["instance"] == f"127.0.0.1:{metrics_port}"
        assert float(by_gpu["0"]["value"][1]) == 6144 * 1024 * 1024
        up = get_json(api + urllib.parse.quote('up{job="galaxy"}'))["data"]["result"]
        assert [r["value"][1] for r in up] == ["1"]
        states = get_json(api + urllib.parse.quote('sum by (worker) (galaxy_worker_state)'))["data"]["result"]
        assert sorted(r["metric"]["worker"] for r in states) == ["gpu0", "gpu1"]
        assert all(r["value"][1] == "1" for r in states)  # exactly one state each
    finally:
        if prom is not None:
            stop(prom)
        stop(sup)
    assert prom is not None and prom.returncode == 0, prom_log.read_text(errors="replace")[-2000:]
    assert sup.returncode == 0, sup_log.read_text(errors="replace")[-2000:]
