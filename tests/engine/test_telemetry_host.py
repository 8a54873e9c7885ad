"""HostProbe reads this machine through psutil, cheaply and without crashing."""

from __future__ import annotations

from pathlib import Path

from engine.telemetry.host import HostProbe, existing_ancestor


def test_host_sample_has_real_figures(tmp_path: Path) -> None:
    s = HostProbe(tmp_path).sample()
    assert s.cpu_pct is not None and 0 <= s.cpu_pct <= 100 * (s.cpu_count or 1)
    assert s.ram_total_mb and s.ram_used_mb and 0 < s.ram_used_mb <= s.ram_total_mb
    assert s.disk_free_gb is not None and s.disk_total_gb and s.disk_free_gb <= s.disk_total_gb
    assert len(s.load_avg) == 3
    view = s.view()
    assert view.ram_total_mb == s.ram_total_mb and view.disk_free_gb == s.disk_free_gb


def test_a_root_that_does_not_exist_yet_measures_its_parent(tmp_path: Path) -> None:
    missing = tmp_path / "not" / "yet" / "shared"
    assert existing_ancestor(missing) == tmp_path
    assert HostProbe(missing).sample().disk_free_gb is not None
