"""galaxy.toml: the documented example parses; every bad input names its key and line."""

from pathlib import Path

import pytest

from engine.config import ConfigError, default_config, load_config, parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"

FIELD_NOTES_RIG = """\
[rig]
name = "garage"

[thresholds]
temp_hot_c = 82
temp_resume_c = 74

[[group]]
name = "brain"
gpus = [0, 3]
role = "brain"
preferred_classes = ["llm"]
backend = "ollama"
endpoint = "http://127.0.0.1:11434"
models = { llm = "qwen2.5:14b" }

[[group]]
name = "w1"
gpus = [1]
backend = "ollama"
endpoint = "http://127.0.0.1:11435"
ld_library_path = "/opt/cuda/lib64"
[group.env]
OLLAMA_NUM_PARALLEL = "1"
"""


def test_field_notes_rig_parses():
    cfg = parse_config(FIELD_NOTES_RIG, path=Path("galaxy.toml"))
    brain, w1 = cfg.groups
    assert brain.gpus == (0, 3) and brain.role == "brain" and brain.cuda_visible_devices == "0,3"
    assert brain.models == {"llm": "qwen2.5:14b"}
    assert w1.env == {"OLLAMA_NUM_PARALLEL": "1"} and w1.ld_library_path == "/opt/cuda/lib64"
    assert cfg.thresholds.temp_hot_c == 82.0 and cfg.thresholds.lease_s == 120.0
    assert cfg.rig == "garage"


def test_the_example_in_docs_parses():
    text = DOC.read_text()
    block = text.split("```toml", 1)[1].split("```", 1)[0]
    cfg = parse_config(block)
    assert [g.gpus for g in cfg.groups] == [(0, 3), (1,), (2,), (4,)]


@pytest.mark.parametrize("bad, key, line", [
    (FIELD_NOTES_RIG.replace("gpus = [1]", 'gpus = ["one"]'), "group[1].gpus", 19),
    (FIELD_NOTES_RIG.replace('role = "brain"', 'role = "boss"'), "group[0].role", 11),
    (FIELD_NOTES_RIG.replace('OLLAMA_NUM_PARALLEL = "1"', "OLLAMA_NUM_PARALLEL = 1"),
     "group[1].env.OLLAMA_NUM_PARALLEL", 24),
    (FIELD_NOTES_RIG.replace("temp_hot_c = 82", "temp_hot_c = 70"), "thresholds.temp_resume_c", 6),
    (FIELD_NOTES_RIG.replace("temp_hot_c = 82", "tmp_hot_c = 82"), "thresholds.tmp_hot_c", 5),
    (FIELD_NOTES_RIG.replace("gpus = [1]", "gpus = [3]"), "group[1].gpus", 19),
    (FIELD_NOTES_RIG.replace('name = "w1"', 'name = "brain"'), "group[1].name", 18),
    (FIELD_NOTES_RIG.replace('endpoint = "http://127.0.0.1:11435"', 'endpoint = "localhost"'),
     "group[1].endpoint", 21),
])
def test_bad_values_name_the_key_and_line(bad, key, line):
    with pytest.raises(ConfigError) as err:
        parse_config(bad, path=Path("galaxy.toml"))
    assert err.value.key == key and err.value.line == line
    assert str(err.value).startswith(f"galaxy.toml:{line}: {key}: ")


def test_broken_toml_names_the_line():
    with pytest.raises(ConfigError) as err:
        parse_config("[rig]\nname = \"x\"\n[[group]\n", path=Path("g.toml"))
    assert err.value.line == 3 and "not valid TOML" in str(err.value)


def test_no_file_gives_one_worker_per_gpu(tmp_path):
    cfg = load_config(tmp_path / "missing.toml", gpu_count=3)
    assert [g.gpus for g in cfg.groups] == [(0,), (1,), (2,)] and cfg.source is None
    assert "3 GPU(s) detected" in cfg.origin


def test_no_gpu_gives_cpu_workers_and_says_so():
    cfg = default_config(0, cpu_count=4)
    assert len(cfg.groups) == 3 and all(g.gpus == () and g.cuda_visible_devices == "" for g in cfg.groups)
    assert "no GPU detected" in cfg.origin and "CPU-only" in cfg.origin


def test_file_without_groups_uses_detected_hardware():
    cfg = parse_config('[rig]\nname = "r"\n', path=Path("galaxy.toml"), gpu_count=2)
    assert [g.name for g in cfg.groups] == ["gpu0", "gpu1"] and "no [[group]]" in cfg.origin
