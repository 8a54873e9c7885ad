"""``[store]`` and ``[rig] name`` in galaxy.toml, and ``$GALAXY_STORE``: checked at load, each problem
naming its key and line (or the variable); no url is the file store."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ConfigError, load_config
from engine.paths import RigPaths
from engine.store.open import open_channels
from engine.store.settings import StoreConfig, StoreEnvError, effective_store, redact_url
from tests.support.redis_server import redis_server  # noqa: F401

GROUP = '\n[[group]]\nname = "cpu0"\ngpus = []\n'


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "galaxy.toml"
    path.write_text(text + GROUP)
    return load_config(path)


def test_no_store_section_is_the_file_store(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[rig]\nname = "garage"\n')
    assert cfg.store == StoreConfig() and cfg.store.kind == "file" and cfg.store.cluster == "galaxy"
    channels = open_channels(cfg, RigPaths(tmp_path / "shared").ensure(), environ={})
    assert channels.kind == "file" and channels.rig == "garage"


def test_a_redis_url_and_cluster_are_read(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '[store]\nurl = "redis://10.0.0.5:6379/2"\ncluster = "lab-1"\n')
    assert cfg.store.url == "redis://10.0.0.5:6379/2" and cfg.store.cluster == "lab-1" and cfg.store.kind == "redis"
    assert "[store] url" in cfg.store.origin


@pytest.mark.parametrize(("text", "key", "line", "words"), [
    ('[store]\nurl = "http://x:6379"\n', "store.url", 2, "must start with redis://"),
    ('[store]\nurl = "redis://:6379/0"\n', "store.url", 2, "names no host"),
    ('[store]\nurl = "redis://h:99999/0"\n', "store.url", 2, "not a valid url"),
    ('[store]\nurl = "redis://h:6379/zero"\n', "store.url", 2, "must be a number"),
    ('[store]\nurl = 6379\n', "store.url", 2, "must be a string"),
    ('[store]\n\ncluster = "a b"\n', "store.cluster", 3, "cluster name"),
    ('[store]\nhost = "x"\n', "store.host", 2, "unknown key"),
    ('[rig]\nname = "my rig"\n', "rig.name", 2, "rig name"),
    ('[rig]\nname = "../etc"\n', "rig.name", 2, "rig name"),
])
def test_a_bad_store_or_rig_name_names_its_key_and_line(tmp_path: Path, text: str, key: str, line: int,
                                                        words: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert err.value.key == key and err.value.line == line and words in str(err.value)


def test_galaxy_store_wins_over_the_file_and_file_forces_the_file_store() -> None:
    cfg = StoreConfig("redis://a:1/0", "c1", "galaxy.toml [store] url")
    env = effective_store(cfg, {"GALAXY_STORE": "redis://b:2/3"})
    assert env.url == "redis://b:2/3" and env.cluster == "c1" and env.origin == "$GALAXY_STORE"
    assert effective_store(cfg, {"GALAXY_STORE": "file"}).url is None
    assert effective_store(cfg, {}) == cfg
    with pytest.raises(StoreEnvError, match=r"\$GALAXY_STORE: 'mysql://x' must start with redis://"):
        effective_store(cfg, {"GALAXY_STORE": "mysql://x"})


def test_a_password_never_shows() -> None:
    assert redact_url("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert "s3cret" not in StoreConfig("redis://user:s3cret@h:6379/0").describe()
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


def test_a_redis_url_opens_the_redis_channels_of_this_rig(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server")
    cfg = _load(tmp_path, f'[rig]\nname = "rig-b"\n[store]\nurl = "{server.url}"\ncluster = "cfgtest"\n')
    channels = open_channels(cfg, RigPaths(tmp_path / "shared"), environ={})
    try:
        assert channels.kind == "redis" and channels.rig == "rig-b"
        channels.snapshots.publish("rig-b", b"{}", 5.0)
        assert channels.snapshots.rigs() == ["rig-b"]
        assert not (tmp_path / "shared" / "state").exists()  # nothing went to the file store
    finally:
        channels.close()


def test_a_redis_that_may_evict_keys_is_refused(tmp_path: Path) -> None:
    from engine.store.redis.client import StoreConfigError
    from tests.support.redis_server import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs Debian's redis-server)")
    server = RedisServer(tmp_path / "redis", extra=("--maxmemory-policy", "allkeys-lru"))
    try:
        cfg = _load(tmp_path, f'[store]\nurl = "{server.url}"\n')
        with pytest.raises(StoreConfigError, match="allkeys-lru"):
            open_channels(cfg, RigPaths(tmp_path / "shared"), environ={})
    finally:
        server.stop()


def test_config_show_names_the_store_and_where_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.config_show import effective_values

    cfg = _load(tmp_path, '[store]\nurl = "redis://:pw@h:6379/0"\ncluster = "lab"\n')
    monkeypatch.delenv("GALAXY_STORE", raising=False)
    shown = {v.key: v for v in effective_values(cfg, root=tmp_path, root_how="--root", config_how="--config")}
    assert shown["store.url"].value == "redis://:***@h:6379/0" and shown["store.url"].source.endswith(":2")
    assert shown["store.cluster"].value == "lab"
    monkeypatch.setenv("GALAXY_STORE", "file")
    shown = {v.key: v for v in effective_values(cfg, root=tmp_path, root_how="--root", config_how="--config")}
    assert shown["store.url"].value is None and shown["store.url"].source == "$GALAXY_STORE=file"


def test_a_host_name_that_cannot_name_a_rig_asks_for_rig_name_before_connecting(tmp_path: Path) -> None:
    from dataclasses import replace

    cfg = replace(_load(tmp_path, '[store]\nurl = "redis://127.0.0.1:1/0"\n'), rig="my laptop")
    with pytest.raises(ValueError, match=r"rig name 'my laptop'.*set \[rig\] name"):
        open_channels(cfg, RigPaths(tmp_path / "shared"), environ={})


def test_a_redis_that_does_not_answer_is_an_oserror_naming_it(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    cfg = _load(tmp_path, f'[store]\nurl = "redis://127.0.0.1:{free_port()}/0"\n')
    with pytest.raises(OSError, match=r"Redis did not answer at redis://127\.0\.0\.1:\d+/0"):
        open_channels(cfg, RigPaths(tmp_path / "shared"), environ={})
