#!/usr/bin/env bash
# Runs one benchmark in release mode: bench/run.sh delivery [--messages N] [--signing ed25519|rsa|both|none]
# Each benchmark runs mailgate beside a reference in the same run and prints the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: bench/run.sh delivery [args]}"
shift
bash scripts/install-test-peers.sh >/dev/null
exec cargo bench --bench "$name" -- --bench "$@"
