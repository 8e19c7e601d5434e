#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/fuzz_targets for FUZZ_SECONDS each (default 20).
# The toolchain is stable, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz use its nightly flags.
# A crash fails the run; its input is left in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${FUZZ_SECONDS:-20}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz missing; run make setup" >&2; exit 1; }
# No sanitizer: the parsers are safe Rust, so a bug shows as a panic, which libFuzzer
# catches anyway; skipping ASan halves build time and doubles executions per second.
for src in fuzz_targets/*.rs; do
  t=$(basename "$src" .rs)
  corpus=corpus/$t
  mkdir -p "$corpus"
  if [[ -x seeds/$t.sh ]]; then
    bash "seeds/$t.sh" "$corpus"
  fi
  echo "fuzz: $t for ${secs}s"
  if ! cargo fuzz run --sanitizer none -O "$t" "$corpus" -- \
    -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 2>&1 \
    | { grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' || true; }; then
    echo "fuzz: target $t FAILED (crash input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
done
echo "fuzz: ok"
