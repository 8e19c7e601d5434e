#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/fuzz_targets for FUZZ_SECONDS each (default 15).
# The toolchain is stable, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz use its nightly flags.
# A crash fails the run; its input is left in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
# 15 s a target by default (`make test` passes 10): every parser of untrusted bytes has a
# target (filesystems, LVM, LUKS, probing, tables, rescue owner maps, boot repair, BCD,
# repository files, partclone, ntfsclone, Clonezilla folders, deploy streams), and
# together they fuzz for a few minutes, which keeps `make test` short enough to run on
# every change; a longer hunt is FUZZ_SECONDS=600 make fuzz.
secs=${FUZZ_SECONDS:-15}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz missing; run make setup" >&2; exit 1; }
# No sanitizer: the parsers are safe Rust, so a bug shows as a panic, which libFuzzer
# catches anyway; skipping ASan halves build time and doubles executions per second.
# -O with -a: optimised, but with debug assertions and overflow checks on, so an unchecked
# arithmetic overflow on a field read from disk is a crash here, as it is in the debug tests.
for src in fuzz_targets/*.rs; do
  t=$(basename "$src" .rs)
  corpus=corpus/$t
  mkdir -p "$corpus"
  # Every target starts from real on-disk structures made by the reference tools: without
  # them a 20 s run rarely gets past the first magic number.
  [[ -f seeds/$t.sh ]] || { echo "fuzz: target $t has no seed script seeds/$t.sh" >&2; exit 1; }
  bash "seeds/$t.sh" "$corpus"
  # libFuzzer cuts every input to 1 MiB unless told: an NTFS or FAT16 seed is bigger, and
  # cut short it is no filesystem at all. Allow the largest seed, and no more.
  max=$(find "$corpus" -name 'seed-*' -printf '%s\n' | sort -n | tail -n1)
  [[ -n $max ]] || { echo "fuzz: seeds/$t.sh wrote no seed-* file into $corpus" >&2; exit 1; }
  echo "fuzz: $t for ${secs}s (inputs up to $max bytes)"
  if ! cargo fuzz run --sanitizer none -O -a "$t" "$corpus" -- \
    -max_len="$max" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 2>&1 \
    | { grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' || true; }; then
    echo "fuzz: target $t FAILED (crash input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
done
echo "fuzz: ok"
