"""engine/ is a headless library: importing every module must not pull in textual or rich."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"

# httpx's package __init__ imports its optional command-line client (``httpx._main``), which
# imports rich and click whenever they are installed (textual brings rich). That is httpx's
# doing, not engine's: the probe blocks that one optional module so a rich import by engine
# code (or by anything else it pulls in) still shows. textual is checked with nothing blocked.
BLOCK_HTTPX_CLI = "sys.modules['httpx._main'] = None\n"

PROBE = """
import importlib, json, pkgutil, sys
@BLOCK@import engine
failed = {}
for mod in pkgutil.walk_packages(engine.__path__, "engine."):
    try:
        importlib.import_module(mod.name)
    except Exception as exc:  # a module's own optional dependency may be missing here
        failed[mod.name] = repr(exc)
ui = sorted(m for m in sys.modules if m.split(".")[0] in @LIBS@)
print(json.dumps({"ui": ui, "failed": failed, "count": sum(1 for m in sys.modules if m.startswith("engine"))}))
"""


def _probe(block: str, libs: tuple[str, ...]) -> dict:  # type: ignore[type-arg]
    code = PROBE.replace("@BLOCK@", block).replace("@LIBS@", repr(libs))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ENGINE.parent, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_importing_every_engine_module_loads_no_textual() -> None:
    result = _probe("", ("textual",))
    assert result["count"] > 10, result
    assert result["ui"] == [], f"engine imported textual: {result['ui'][:10]}"


def test_importing_every_engine_module_loads_no_rich() -> None:
    result = _probe(BLOCK_HTTPX_CLI, ("textual", "rich"))
    assert result["count"] > 10, result
    assert result["ui"] == [], f"engine imported UI modules: {result['ui'][:10]}"


def test_the_probe_would_notice_a_ui_import() -> None:
    """The same check, fed a module that does import rich, must flag it (the test can fail)."""
    out = subprocess.run([sys.executable, "-c", ("import rich.text, sys, json; "
                          "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'rich')))")],
                         capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) != []
