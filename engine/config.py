"""galaxy.toml: the rig's GPU groups, their roles and backends, and the supervisor's thresholds.

Read with ``tomllib`` into frozen dataclasses. Every error names the key and the line
(``galaxy.toml:12: group[1].gpus: ...``) so a typo never turns into a traceback. With no
file at all, ``default_config`` builds one worker per detected GPU, or CPU workers when
there is none (and says so in ``GalaxyConfig.origin``). See docs/config.md.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import config_rules as rules
from engine import safeio
from engine.logsetup import LogConfig, log_config_problems, parse_log_config
from engine.metrics.settings import MetricsConfig, listen_problem
from engine.routing.nodes import EscalationConfig, NodeConfigError, RoutingConfig, parse_routing
from engine.store.settings import StoreConfig, name_problem, parse_store_config, store_config_problems

CONFIG_ENV = "GALAXY_CONFIG"
MAX_CONFIG_BYTES = 1_000_000  # a rig's galaxy.toml is a few KB
ROLES = ("worker", "brain")
BACKENDS = ("ollama", "openai", "router", "none")  # router: route across the cluster's nodes
TASK_CLASSES = ("cpu", "script", "llm", "resource")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """A bad galaxy.toml. ``key`` is the dotted key, ``line`` its 1-based line when known."""

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        self.path, self.key, self.line, self.detail = path, key, line, message
        self.errors: tuple[ConfigError, ...] = (self,)  # ConfigErrors holds several
        where = str(path) if path else "galaxy.toml"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


class ConfigErrors(ConfigError):
    """Several problems in one galaxy.toml, reported together (one line each, in file order)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        ordered = sorted(errors, key=lambda e: (e.line is None, e.line or 0))
        self.errors = tuple(ordered)
        first = ordered[0]
        self.path, self.key, self.line, self.detail = first.path, first.key, first.line, first.detail
        ValueError.__init__(self, "\n".join(str(e) for e in ordered))


@dataclass(frozen=True)
class GroupConfig:
    """One worker subprocess and the GPUs it owns (``gpus=()`` means a CPU worker)."""

    name: str
    gpus: tuple[int, ...] = ()
    role: str = "worker"  # worker | brain
    preferred_classes: tuple[str, ...] = ()
    backend: str = "none"  # ollama | openai | none
    endpoint: str | None = None
    models: dict[str, str] = field(default_factory=dict)  # llm / transcribe / embed -> model name
    tier: int | None = None  # routing tier of this group's LLM (default: worker 0, brain 1)
    ld_library_path: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def cuda_visible_devices(self) -> str:
        """What the child sees; "" hides every GPU from a CPU worker."""
        return ",".join(str(g) for g in self.gpus)


@dataclass(frozen=True)
class Thresholds:
    temp_hot_c: float = 83.0  # thermal guard holds claims at or above this
    temp_resume_c: float = 75.0  # ... and releases them at or below this
    temp_alert_c: float = 85.0  # over-temperature alert (sustained)
    alert_window_s: float = 30.0  # a condition must hold this long before it alerts
    alert_clear_s: float = 30.0  # ... and be gone this long before the alert clears
    heartbeat_silent_s: float = 30.0  # worker silent alert
    stall_window_s: float = 60.0  # work waiting while GPUs idle for this long
    failure_alert_count: int = 3  # failures of one task kind ...
    failure_alert_window_s: float = 600.0  # ... within this window
    restart_backoff_s: float = 1.0  # first restart delay; doubles per consecutive crash
    restart_backoff_max_s: float = 60.0
    fast_crash_s: float = 30.0  # an exit sooner than this after spawn is a "fast crash"
    max_fast_crashes: int = 5  # consecutive fast crashes before fatal
    lease_s: float = 120.0
    snapshot_interval_s: float = 0.5
    shutdown_grace_s: float = 30.0  # SIGTERM: how long workers get to finish or hand back


@dataclass(frozen=True)
class SimConfig:
    gpus: int = 5
    gpu_name: str = "GeForce GTX 1060 6GB"
    vram_mb: float = 6144.0
    power_limit_w: float = 140.0
    ambient_c: float = 30.0


@dataclass(frozen=True)
class GalaxyConfig:
    rig: str = "rig"
    root: Path | None = None
    groups: tuple[GroupConfig, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    sim: SimConfig = field(default_factory=SimConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)  # [[node]] and [routing]
    escalation: EscalationConfig = field(default_factory=EscalationConfig)  # [escalation]
    metrics: MetricsConfig = field(default_factory=MetricsConfig)  # [metrics]: the supervisor's /metrics
    log: LogConfig = field(default_factory=LogConfig)  # [log]: level and rotation (engine.logsetup)
    store: StoreConfig = field(default_factory=StoreConfig)  # [store]: file store, or Redis (engine.store.settings)
    source: Path | None = None  # the file it came from; None for detected defaults
    origin: str = "file"  # human sentence: "galaxy.toml", "defaults: 5 GPUs detected, ..."
    key_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Dotted key -> line in the file, for checks made after loading (``unseen_gpu_errors``)."""

    def group(self, name: str) -> GroupConfig | None:
        return next((g for g in self.groups if g.name == name), None)


def resolve_config_path(explicit: Path | None) -> Path:
    """--config, $GALAXY_CONFIG, ./galaxy.toml, $XDG_CONFIG_HOME/galaxy/, /etc/galaxy/ (engine.config_locate);
    ./galaxy.toml (which does not exist) when none is found."""
    from engine.config_locate import locate_config

    found = locate_config(explicit, os.environ, Path.cwd()).path
    return found if found is not None else Path("galaxy.toml")


def default_cpu_workers(cpu_count: int | None = None) -> int:
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, min(4, cpus - 1))


def default_config(gpu_count: int, *, rig: str | None = None, cpu_count: int | None = None) -> GalaxyConfig:
    """One worker per GPU; with no GPU, CPU workers (shell/cpu work only), said plainly."""
    name = rig or os.uname().nodename
    if gpu_count > 0:
        groups = tuple(GroupConfig(name=f"gpu{i}", gpus=(i,)) for i in range(gpu_count))
        origin = f"defaults: {gpu_count} GPU(s) detected, one worker per GPU (no galaxy.toml)"
    else:
        n = default_cpu_workers(cpu_count)
        groups = tuple(GroupConfig(name=f"cpu{i}", preferred_classes=("cpu",)) for i in range(n))
        origin = f"defaults: no GPU detected, running {n} CPU-only worker(s) (no galaxy.toml)"
    return GalaxyConfig(rig=name, groups=groups, source=None, origin=origin)


def load_config(path: Path | None, *, gpu_count: int = 0, cpu_count: int | None = None) -> GalaxyConfig:
    """Parse ``path``; when it does not exist, fall back to ``default_config``."""
    if path is None or not Path(path).exists():
        return default_config(gpu_count, cpu_count=cpu_count)
    path = Path(path)
    try:  # the bounded reader: a regular file (an operator's symlink is followed), size-checked, UTF-8
        text = safeio.read_text(path, MAX_CONFIG_BYTES, follow_symlinks=True)
    except safeio.UnsafeFileError as exc:
        raise ConfigError(exc.reason, path=path) from None
    return parse_config(text, path=path, gpu_count=gpu_count, cpu_count=cpu_count)


def parse_config(text: str, *, path: Path | None = None, gpu_count: int = 0,
                 cpu_count: int | None = None) -> GalaxyConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _decode_error_line(str(exc))
        raise ConfigError(f"not valid TOML: {exc}", path=path, line=line) from None
    except RecursionError:  # arrays or inline tables nested thousands deep
        raise ConfigError("not valid TOML: nested too deep", path=path) from None
    lines = _KeyLines(text)
    return _Builder(data, lines, path, gpu_count, cpu_count).build()


# ---------------------------------------------------------------- line numbers

def _decode_error_line(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


class _KeyLines:
    """Maps a dotted key path ("group[1].gpus") to the line that sets it.

    tomllib gives values, not positions; this small scanner follows ``[table]`` and
    ``[[array]]`` headers, which is enough to point at the offending line.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        counters: dict[str, int] = {}
        table = ""
        for lineno, raw in enumerate(text.splitlines(), start=1):
            h = self._HEADER.match(raw)
            if h:
                name = h.group(2).replace('"', "").replace("'", "").replace(" ", "")
                if h.group(1) == "[[":
                    counters[name] = counters.get(name, -1) + 1
                    table = f"{name}[{counters[name]}]"
                else:
                    parent, _, leaf = name.rpartition(".")
                    table = f"{parent}[{counters[parent]}].{leaf}" if parent in counters else name
                self.lines.setdefault(table, lineno)
                continue
            k = self._KEY.match(raw)
            if k:
                key = k.group(1).strip('"')
                self.lines.setdefault(f"{table}.{key}" if table else key, lineno)

    def line(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0]
        return None


# ---------------------------------------------------------------- validation

class _Builder:
    """Checks every key and collects every problem (``bad``) instead of stopping at the
    first: an operator fixing galaxy.toml sees all of them, each with its line."""

    def __init__(self, data: dict[str, Any], lines: _KeyLines, path: Path | None, gpu_count: int,
                 cpu_count: int | None) -> None:
        self.data, self.lines, self.path = data, lines, path
        self.gpu_count, self.cpu_count = gpu_count, cpu_count
        self.errors: list[ConfigError] = []

    def err(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=key, line=self.lines.line(key))

    def bad(self, key: str, message: str) -> None:
        self.errors.append(self.err(key, message))

    def build(self) -> GalaxyConfig:
        known = {"rig", "group", "thresholds", "sim", "node", "routing", "escalation", "log", "metrics", "store"}
        for k in self.data:
            if k not in known:
                self.bad(k, f"unknown section or key (known: {', '.join(sorted(known))})")
        rig = self._table("rig", self.data.get("rig", {}))
        self._only(rig, "rig", {"name", "root"})
        name = self._str(rig, "rig", "name", None) or os.uname().nodename
        if "name" in rig and isinstance(rig["name"], str) and (why := name_problem("rig", rig["name"])):
            self.bad("rig.name", why)
        root_s = self._str(rig, "rig", "root", None)
        thresholds = self._thresholds(self._table("thresholds", self.data.get("thresholds", {})))
        sim = self._sim(self._table("sim", self.data.get("sim", {})))
        metrics = self._metrics(self._table("metrics", self.data.get("metrics", {})))
        raw_groups = self.data.get("group")
        groups: tuple[GroupConfig, ...] = ()
        if raw_groups is None:
            base = default_config(self.gpu_count, rig=name, cpu_count=self.cpu_count)
            groups, origin = base.groups, f"{self.path}: no [[group]]; {base.origin}"
        else:
            origin = str(self.path) if self.path else "galaxy.toml"
            if not isinstance(raw_groups, list):
                self.bad("group", "must be an array of tables: write each group as [[group]]")
            else:
                built = [self._group(i, g) for i, g in enumerate(raw_groups)]
                groups = tuple(g for g in built if g is not None)
                if len(groups) == len(built):
                    self._check_groups(groups)
        routing, escalation = self._routing()
        log_table = self._table("log", self.data.get("log", {}))
        for key, why in log_config_problems(log_table):
            self.bad(f"log.{key}", why)
        store_table = self._table("store", self.data.get("store", {}))
        for key, why in store_config_problems(store_table):
            self.bad(f"store.{key}", why)
        if self.errors:
            raise self.errors[0] if len(self.errors) == 1 else ConfigErrors(self.errors)
        return GalaxyConfig(rig=name, root=self._root(root_s), groups=groups,
                            thresholds=thresholds, sim=sim, routing=routing, escalation=escalation, metrics=metrics,
                            log=parse_log_config(log_table),
                            store=parse_store_config(store_table, str(self.path or "galaxy.toml")),
                            source=self.path, origin=origin, key_lines=dict(self.lines.lines))

    def _root(self, root_s: str | None) -> Path | None:
        """``[rig] root``: a relative root is relative to the config file's directory."""
        if not root_s:
            return None
        root = Path(os.path.expanduser(root_s))
        if not root.is_absolute() and self.path is not None:
            root = Path(os.path.normpath(Path(self.path).absolute().parent / root))
        return root

    def _routing(self) -> tuple[RoutingConfig, EscalationConfig]:
        before = len(self.errors)
        raw_nodes = self.data.get("node", [])
        if not isinstance(raw_nodes, list):
            self.bad("node", "must be an array of tables: write each node as [[node]]")
        else:
            for i, node in enumerate(raw_nodes):
                if not isinstance(node, dict):
                    self.bad(f"node[{i}]", f"must be a table, got {type(node).__name__} {node!r}")
                    continue
                for key, why in rules.node_problems(node):
                    self.bad(f"node[{i}].{key}", why)
        for section, table_rules, defaults in (("routing", rules.ROUTING, RoutingConfig()),
                                               ("escalation", rules.ESCALATION, EscalationConfig())):
            table = self.data.get(section, {})
            if not isinstance(table, dict):
                self.bad(section, f"must be a table, got {type(table).__name__} {table!r}")
                continue
            for key, why in rules.problems(table, table_rules) + rules.order_problems(section, table, defaults):
                self.bad(f"{section}.{key}", why)
        if len(self.errors) > before:
            return RoutingConfig(), EscalationConfig()  # its own checks would repeat these without lines
        sub: dict[str, Any] = {k: self.data[k] for k in ("node", "routing", "escalation") if k in self.data}
        try:
            return parse_routing(sub, str(self.path) if self.path else "galaxy.toml")
        except NodeConfigError as exc:
            msg = str(exc).split(": ", 1)[-1]
            m = re.search(r"node #(\d+)", str(exc))
            key = (f"node[{int(m.group(1)) - 1}]" if m else "node") if "node" in str(exc) else (
                "escalation" if "[escalation]" in str(exc) else "routing")
            self.bad(key, msg)
            return RoutingConfig(), EscalationConfig()

    # -- sections
    def _group(self, i: int, g: Any) -> GroupConfig | None:
        key = f"group[{i}]"
        if not isinstance(g, dict):
            self.bad(key, f"must be a table, got {type(g).__name__} {g!r}")
            return None
        before = len(self.errors)
        t = g
        self._only(t, key, {"name", "gpus", "role", "preferred_classes", "backend", "endpoint", "models",
                            "tier", "ld_library_path", "env"})
        tier = t.get("tier")
        if tier is not None and (isinstance(tier, bool) or not isinstance(tier, int) or tier < 0):
            self.bad(f"{key}.tier", f"must be a non-negative integer, got {tier!r}")
        name = self._str(t, key, "name", None)
        if name is None and "name" not in t:
            self.bad(key, "every group needs a name")
        elif name is not None and not _NAME_RE.match(name):
            self.bad(f"{key}.name", f"{name!r} must be letters, digits, '_', '-', '.' (it names files)")
        gpus = t.get("gpus", [])
        if not isinstance(gpus, list) or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in gpus):
            self.bad(f"{key}.gpus", f"must be a list of GPU indexes like [0, 3], got {gpus!r}")
        elif len(set(gpus)) != len(gpus):
            self.bad(f"{key}.gpus", f"lists a GPU twice: {gpus!r}")
        role = self._choice(t, key, "role", ROLES, "worker")
        prefs = t.get("preferred_classes", [])
        if not isinstance(prefs, list) or any(p not in TASK_CLASSES for p in prefs):
            self.bad(f"{key}.preferred_classes", f"must be a list from {list(TASK_CLASSES)}, got {prefs!r}")
        backend = self._choice(t, key, "backend", BACKENDS, "none")
        endpoint = self._str(t, key, "endpoint", None)
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            self.bad(f"{key}.endpoint", f"must be an http(s) URL, got {endpoint!r}")
        models = self._str_map(t, key, "models")
        env = self._str_map(t, key, "env")
        ld_path = self._str(t, key, "ld_library_path", None)
        if len(self.errors) > before or name is None:
            return None
        return GroupConfig(
            name=name, gpus=tuple(gpus), role=role, preferred_classes=tuple(prefs), backend=backend,
            endpoint=endpoint, models=models, tier=tier, ld_library_path=ld_path, env=env)

    def _check_groups(self, groups: tuple[GroupConfig, ...]) -> None:
        seen_names: dict[str, int] = {}
        seen_gpus: dict[int, str] = {}
        for i, g in enumerate(groups):
            if g.name in seen_names:
                self.bad(f"group[{i}].name", f"duplicate group name {g.name!r}")
            seen_names[g.name] = i
            for gpu in g.gpus:
                if gpu in seen_gpus:
                    self.bad(f"group[{i}].gpus", f"GPU {gpu} is already in group {seen_gpus[gpu]!r}")
                seen_gpus[gpu] = g.name

    def _thresholds(self, t: dict[str, Any]) -> Thresholds:
        names = set(Thresholds.__dataclass_fields__)
        values: dict[str, Any] = {}
        for k in t:
            if k not in names:
                self.bad(f"thresholds.{k}", f"unknown threshold (known: {', '.join(sorted(names))})")
        base = Thresholds()
        checks = {k: rules.THRESHOLDS.get(k, rules.Num(integer=type(getattr(base, k)) is int)) for k in names}
        problems = dict(rules.problems({k: v for k, v in t.items() if k in names}, checks))
        for k, why in problems.items():
            self.bad(f"thresholds.{k}", why)
        for k, v in t.items():
            if k in names and k not in problems:
                values[k] = type(getattr(base, k))(v)
        th = Thresholds(**values)
        if th.temp_resume_c >= th.temp_hot_c:
            self.bad("thresholds.temp_resume_c",
                     f"must be below temp_hot_c ({th.temp_hot_c}) so the guard has hysteresis")
        for k, why in rules.order_problems("thresholds", values, base):
            self.bad(f"thresholds.{k}", why)
        return th

    def _sim(self, t: dict[str, Any]) -> SimConfig:
        self._only(t, "sim", set(SimConfig.__dataclass_fields__))
        base = SimConfig()
        kw: dict[str, Any] = {}
        problems = dict(rules.problems(t, rules.SIM))
        for k, why in problems.items():
            self.bad(f"sim.{k}", why)
        for k, v in t.items():
            if k not in SimConfig.__dataclass_fields__ or k in problems:
                continue
            want = type(getattr(base, k))
            kw[k] = self._str(t, "sim", k, None) if want is str else want(v)
        return SimConfig(**{k: v for k, v in kw.items() if v is not None})

    def _metrics(self, t: dict[str, Any]) -> MetricsConfig:
        self._only(t, "metrics", set(MetricsConfig.__dataclass_fields__))
        listen = t.get("listen", MetricsConfig().listen)
        why = listen_problem(listen)
        if why:
            self.bad("metrics.listen", why)
            return MetricsConfig()
        return MetricsConfig(listen=listen.strip())

    # -- helpers
    def _table(self, key: str, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            self.bad(key, f"must be a table, got {type(v).__name__} {v!r}")
            return {}
        return v

    def _only(self, t: Mapping[str, Any], key: str, allowed: set[str]) -> None:
        for k in t:
            if k not in allowed:
                self.bad(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(allowed))})")

    def _str(self, t: Mapping[str, Any], key: str, name: str, default: str | None) -> str | None:
        v = t.get(name, default)
        if v is not None and (not isinstance(v, str) or not v.strip()):
            self.bad(f"{key}.{name}", f"must be a non-empty string, got {v!r}")
            return None
        return v

    def _choice(self, t: Mapping[str, Any], key: str, name: str, choices: tuple[str, ...], default: str) -> str:
        v = t.get(name, default)
        if v not in choices:
            self.bad(f"{key}.{name}", f"must be one of {', '.join(choices)}, got {v!r}")
            return default
        return str(v)

    def _str_map(self, t: Mapping[str, Any], key: str, name: str) -> dict[str, str]:
        v = t.get(name, {})
        if not isinstance(v, dict):
            self.bad(f"{key}.{name}", f"must be a table of strings, got {v!r}")
            return {}
        for k, x in v.items():
            if not isinstance(x, str):
                self.bad(f"{key}.{name}.{k}", f"must be a string, got {x!r}")
        return {k: x for k, x in v.items() if isinstance(x, str)}


# ---------------------------------------------------------------- the rig's GPUs

def unseen_gpu_errors(config: GalaxyConfig, gpu_count: int, probe_kind: str) -> list[ConfigError]:
    """Groups that name a GPU the probe does not see (NVML on a real rig, or the simulated
    rig): such a worker would start on no card, or on another one. One error per group."""
    if probe_kind not in ("nvml", "simulated"):
        return []  # no GPU probe: nothing to check against (doctor says so)
    out = []
    for i, g in enumerate(config.groups):
        unseen = [x for x in g.gpus if x >= gpu_count]
        if unseen:
            key = f"group[{i}].gpus"
            seen = f"0-{gpu_count - 1}" if gpu_count else "none"
            out.append(ConfigError(f"group {g.name!r} names GPU(s) {unseen} but {probe_kind} sees "
                                   f"{gpu_count} GPU(s) ({seen})", path=config.source, key=key,
                                   line=config.key_lines.get(key)))
    return out
