#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
# Debian tools the real-terminal, real-speech, real-Prometheus and real-browser tests drive (the
# package 'prometheus' also gives promtool; 'chromium' opens `galaxy web` headless; 'redis-server' serves
# the Redis store's tests, each on its own port and data directory).
need=()
for tool in tmux espeak-ng sox prometheus chromium redis-server; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
# command:package where they differ (systemd-analyze verifies the unit of `galaxy service install`)
for pair in systemd-analyze:systemd; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    echo "warning: could not install ${need[*]}; the tests that drive them will be skipped with a reason" >&2
  fi
fi
# Quality gates first (pyproject.toml [tool.ruff] and [tool.mypy]: strict on engine/ and galaxy_tui/);
# a finding fails the run before any test (ruff and mypy come with the dev extra).
.venv/bin/ruff check .
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -q "$@"
