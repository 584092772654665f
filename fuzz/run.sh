#!/usr/bin/env bash
# Fuzzes the bounce parser for a given time: fuzz/run.sh SECONDS [TARGET]
#
# cargo-fuzz drives libFuzzer (coverage-guided) on fuzz_targets/bounce_parse.rs,
# which feeds any bytes to mailgate::bounce::try_parse and treats a caught panic as a crash.
# The corpus starts from the Sisimai mail in tests/corpus/sisimai/maildir (copied into
# fuzz/corpus/TARGET, which grows as libFuzzer finds new paths and is kept between runs;
# crashes land in fuzz/artifacts/TARGET).
#
# Why RUSTC_BOOTSTRAP=1: cargo-fuzz (0.13) builds the target with AddressSanitizer through
# `-Zsanitizer=address`, an unstable flag that stable rustc refuses ("the option `Z` is only
# accepted on the nightly compiler"); its SanitizerCoverage flags are stable -C options.
# The project's toolchain is stable 1.95 and no other can be fetched on a new machine.
# RUSTC_BOOTSTRAP=1 makes stable rustc accept -Z flags, as the compiler's own bootstrap
# does; the ASan runtime (librustc-stable_rt.asan.a) ships with stable's rust-std. It is
# set for this script's cargo only, never for the project's own build or tests.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:?usage: fuzz/run.sh SECONDS [TARGET]}"
target="${2:-bounce_parse}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: installing cargo-fuzz (cargo install cargo-fuzz)"
  cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1

# Seed the corpus with the real bounces, once (libFuzzer adds its finds beside them).
corpus="corpus/$target"
mkdir -p "$corpus" "artifacts/$target"
if [ -z "$(ls -A "$corpus")" ]; then
  for f in ../tests/corpus/sisimai/maildir/*/*; do
    cp "$f" "$corpus/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
  done
fi

# -O: optimised (with debug assertions), as the parser runs in release.
# -max_len: the largest seed is ~72 KiB; allow mutations past it.
# -timeout: one input taking over 10 s is reported as a hang.
# -fork=1 -ignore_crashes=1: fuzz in a child process and keep going after a crash, so the
#   run lasts the time asked for and saves every crash it finds, not just the first.
#   FUZZ_STOP_AT_CRASH=1 stops at the first one instead (in process, with final stats).
# Replay saved inputs (e.g. fuzz/regressions/TARGET) after a fix:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O TARGET regressions/TARGET/* (from fuzz/)
cargo fuzz build -O "$target"
mode=(-fork=1 -ignore_crashes=1)
[ "${FUZZ_STOP_AT_CRASH:-0}" = 1 ] && mode=(-print_final_stats=1)
status=0
cargo fuzz run -O "$target" "$corpus" -- \
  -max_total_time="$seconds" -max_len=131072 -timeout=10 -rss_limit_mb=2048 \
  "${mode[@]}" || status=$?

crashes=$(find "artifacts/$target" -type f | wc -l)
echo "fuzz/run.sh: $target ran ${seconds}s; corpus $(ls "$corpus" | wc -l) inputs; $crashes crash/timeout/oom inputs in fuzz/artifacts/$target"
[ "$crashes" -gt 0 ] && status=1
exit "$status"
