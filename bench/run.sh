#!/usr/bin/env bash
# Runs one benchmark in release mode:
#   bench/run.sh delivery [--messages N] [--signing ed25519|rsa|both|none] [--no-fsync] [--progress]
#                         [--store sled|postgres|both] [--nodes N]
#     (beside smtp-source → smtp-sink and a private Postfix relay, which needs root;
#      --store postgres starts a throwaway PostgreSQL cluster unless MAILGATE_BENCH_PG_URL
#      names a server; --nodes N adds N nodes on one PostgreSQL database)
#   bench/run.sh pages [--seconds S] [--connections N]
#   bench/run.sh bounces [--rounds N]
# Each benchmark runs mailgate beside a reference in the same run and prints the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: bench/run.sh delivery|pages|bounces [args]}"
shift
bash scripts/install-test-peers.sh >/dev/null
# Benchmark peers (not test peers), installed here only when missing.
case "$name" in
  pages)
    command -v wrk >/dev/null 2>&1 || {
      echo "bench/run.sh: installing wrk (Debian)"
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
    } ;;
  bounces)
    "${PYTHON:-python3}" -c 'import flufl.bounce' >/dev/null 2>&1 || {
      echo "bench/run.sh: installing flufl.bounce (PyPI) for ${PYTHON:-python3}"
      "${PYTHON:-python3}" -m pip install -q flufl.bounce
    } ;;
esac
exec cargo bench --bench "$name" -- --bench "$@"
