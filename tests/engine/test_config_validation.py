"""galaxy.toml: every number's type and range is checked at load, every problem is reported
at once with its line, and a group naming a GPU the rig does not have is refused."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from engine import config_rules as rules
from engine.cli.main import main
from engine.config import (
    ConfigError,
    ConfigErrors,
    EscalationConfig,
    RoutingConfig,
    SimConfig,
    Thresholds,
    parse_config,
    unseen_gpu_errors,
)
from engine.routing.nodes import NodeConfig
from engine.telemetry.doctor import DoctorContext, run_checks
from engine.telemetry.nvml import NvmlProbe
from tests.engine import fake_pynvml as fake

GOOD = """\
[rig]
name = "garage"

[thresholds]
lease_s = 90
temp_hot_c = 82
temp_resume_c = 74

[[group]]
name = "llama"
gpus = [0]
backend = "openai"
endpoint = "http://127.0.0.1:8080"
models = { llm = "smollm2" }

[[group]]
name = "scripts"
gpus = [1]

[[node]]
name = "cloud"
endpoint = "https://api.example.org"
backend = "anthropic"
model = "claude"
tier = 3
external = true
price_in_per_mtok = 3.0
price_out_per_mtok = 15.0

[escalation]
daily_budget_usd = 5.0
approval_timeout_s = 600

[routing]
breaker_reset_s = 30
"""


def errors_of(text: str) -> list[ConfigError]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, path=Path("galaxy.toml"))
    return list(err.value.errors)


def test_the_good_file_loads() -> None:
    cfg = parse_config(GOOD, path=Path("galaxy.toml"))
    assert cfg.thresholds.lease_s == 90.0 and cfg.escalation.daily_budget_usd == 5.0
    assert cfg.routing.nodes[0].price_out_per_mtok == 15.0


@pytest.mark.parametrize("old, new, key, line, words", [
    ("lease_s = 90", 'lease_s = "90s"', "thresholds.lease_s", 5, "must be a number of seconds, got the string '90s'"),
    ("lease_s = 90", "lease_s = -5", "thresholds.lease_s", 5, "must be positive"),
    ("lease_s = 90", "lease_s = nan", "thresholds.lease_s", 5, "must be a number of seconds"),
    ("temp_hot_c = 82", "temp_hot_c = 820", "thresholds.temp_hot_c", 6, "at most 150"),
    ("price_in_per_mtok = 3.0", "price_in_per_mtok = -3.0", "node[0].price_in_per_mtok", 27, "zero or more"),
    ("external = true", 'external = "yes"', "node[0].external", 26, "true or false"),
    ("tier = 3", "tier = 1.5", "node[0].tier", 25, "must be an integer"),
    ("daily_budget_usd = 5.0", "daily_budget_usd = -1", "escalation.daily_budget_usd", 31, "zero or more"),
    ("approval_timeout_s = 600", 'approval_timeout_s = "10m"', "escalation.approval_timeout_s", 32,
     "got the string '10m'"),
    ("breaker_reset_s = 30", "breaker_reset_s = 0", "routing.breaker_reset_s", 35, "must be positive"),
    ("breaker_reset_s = 30", "breaker_reset_s = 9000", "routing.breaker_reset_s", 35,
     "breaker_reset_s (9000) must not exceed breaker_reset_max_s (600.0)"),
    ("gpus = [1]", "gpus = [1, 1]", "group[1].gpus", 18, "lists a GPU twice"),
])
def test_each_bad_number_names_its_key_and_line(old: str, new: str, key: str, line: int, words: str) -> None:
    assert GOOD.count(old) == 1
    (err,) = errors_of(GOOD.replace(old, new))
    assert (err.key, err.line) == (key, line), str(err)
    assert words in str(err) and str(err).startswith(f"galaxy.toml:{line}: {key}: ")


def test_all_errors_are_reported_at_once_in_file_order() -> None:
    bad = (GOOD.replace("lease_s = 90", 'lease_s = "soon"').replace('backend = "openai"', 'backend = "vllm"')
           .replace("price_out_per_mtok = 15.0", "price_out_per_mtok = -15.0")
           .replace("daily_budget_usd = 5.0", "daily_budget_usd = -5.0")
           .replace('name = "scripts"', 'name = "bad name"'))
    with pytest.raises(ConfigErrors) as err:
        parse_config(bad, path=Path("galaxy.toml"))
    got = [(e.key, e.line) for e in err.value.errors]
    assert got == [("thresholds.lease_s", 5), ("group[0].backend", 12), ("group[1].name", 17),
                   ("node[0].price_out_per_mtok", 28), ("escalation.daily_budget_usd", 31)]
    assert str(err.value).count("\n") == 4  # one line per problem


def test_every_number_in_the_config_has_a_rule() -> None:
    """A new threshold/routing/escalation/node number must get a range rule here too."""
    for cls, table in ((Thresholds, rules.THRESHOLDS), (RoutingConfig, rules.ROUTING),
                       (EscalationConfig, rules.ESCALATION), (NodeConfig, rules.NODE), (SimConfig, rules.SIM)):
        numbers = {f.name for f in fields(cls) if f.type in ("float", "int")}
        assert numbers == set(table), f"{cls.__name__}: {numbers ^ set(table)}"


def test_doctor_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    cfg = tmp_path / "galaxy.toml"
    cfg.write_text(GOOD.replace("lease_s = 90", 'lease_s = "90s"').replace("daily_budget_usd = 5.0",
                                                                           "daily_budget_usd = -1"))
    probe = NvmlProbe(nvml_module=fake.FakeNvml([fake.FakeGpu(), fake.FakeGpu()]), process_name=str)
    checks = run_checks(DoctorContext(root=tmp_path / "shared", config_path=cfg, probe=probe, http_timeout_s=0.2))
    failed = [c.detail for c in checks if c.name == "galaxy.toml"]
    assert len(failed) == 2
    assert failed[0].startswith(f"{cfg}:5: thresholds.lease_s:") and f"{cfg}:31: escalation.daily_budget_usd" \
        in failed[1]


def test_a_group_naming_a_gpu_nvml_does_not_see_is_refused() -> None:
    cfg = parse_config(GOOD.replace("gpus = [1]", "gpus = [1, 4]"), path=Path("galaxy.toml"))
    status = NvmlProbe(nvml_module=fake.FakeNvml([fake.FakeGpu(), fake.FakeGpu()]), process_name=str).status()
    assert status.kind == "nvml" and status.gpu_count == 2
    (err,) = unseen_gpu_errors(cfg, status.gpu_count, status.kind)
    assert (err.key, err.line) == ("group[1].gpus", 18)
    assert "group 'scripts' names GPU(s) [4] but nvml sees 2 GPU(s) (0-1)" in str(err)
    assert unseen_gpu_errors(cfg, 5, "nvml") == []
    assert unseen_gpu_errors(cfg, 0, "none") == []  # no probe: nothing to check against (doctor warns)


def test_supervise_refuses_it_on_the_simulated_rig_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "galaxy.toml"
    cfg.write_text('[[group]]\nname = "a"\ngpus = [0]\n\n[[group]]\nname = "b"\ngpus = [3]\n')
    code = main(["--root", str(tmp_path / "shared"), "--config", str(cfg), "supervise", "--sim", "--gpus", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"galaxy supervise: {cfg}:7: group[1].gpus: group 'b' names GPU(s) [3] but simulated sees 2" in err
    assert not (tmp_path / "shared" / "state" / "supervisor.pid").exists() or \
        not (tmp_path / "shared" / "state" / "supervisor.pid").read_text().strip()


def test_doctor_warns_when_an_openai_group_does_not_name_its_model(tmp_path: Path) -> None:
    cfg = tmp_path / "galaxy.toml"
    cfg.write_text('[[group]]\nname = "bare"\nbackend = "openai"\nendpoint = "http://127.0.0.1:9"\n\n'
                   '[[group]]\nname = "named"\nbackend = "openai"\nendpoint = "http://127.0.0.1:9"\n'
                   'models = { llm = "smollm2" }\n')
    probe = NvmlProbe(nvml_module=fake.FakeNvml([fake.FakeGpu()]), process_name=str)
    checks = run_checks(DoctorContext(root=tmp_path / "shared", config_path=cfg, probe=probe, http_timeout_s=0.2))
    warned = {c.name: c for c in checks if c.name.endswith(".models.llm")}
    assert set(warned) == {"bare.models.llm"} and warned["bare.models.llm"].status == "warn"
    assert "llm tasks for any model are offered" in warned["bare.models.llm"].detail
