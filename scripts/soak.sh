#!/usr/bin/env bash
# Soak test (README, "Security limits"): one server under mixed load with random
# SIGKILLs and a slowloris client; prints acknowledged, delivered, lost, duplicates,
# journeys, 5xx, peak RSS and descriptors. Not part of `cargo test`.
#   scripts/soak.sh [--minutes 10] [--kill-min 30] [--kill-max 90] [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-peers.sh
profile=release
pass=()
for a in "$@"; do
    if [ "$a" = "--debug" ]; then profile=debug; else pass+=("$a"); fi
done
if [ "$profile" = release ]; then cargo build --release; else cargo build; fi
exec python3 scripts/soak.py --binary "target/$profile/mailgate" "${pass[@]}"
