#!/usr/bin/env bash
# The one test command (README, .ci/run): installs the real peers the tests talk to when
# they are missing, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-peers.sh
cargo test "$@"
