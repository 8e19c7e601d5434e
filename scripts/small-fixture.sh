#!/usr/bin/env bash
# Builds the small-partition fixture of issue 16 item 5 once: a 431 MiB ext4 (sparse
# file) with about 113 MiB of files (as df counts them): Python sources and /usr/bin
# binaries picked in a stable order, with 24 MiB of seeded random files among them.
# Output: build/small/ext4.img. Idempotent. scripts/small-size.sh compares image sizes
# on it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build/small"
mkdir -p "$OUT"

pick() { # pick LIMIT_BYTES NAME_GLOB DIR...: files under DIRs, sorted, until LIMIT
  local lim=$1 glob=$2; shift 2
  find "$@" -xdev -type f -size +0 -name "$glob" -printf '%s %p\n' 2>/dev/null |
    sort -k2 | awk -v lim="$lim" '!done { if (t + $1 > lim) { done = 1; next } t += $1; print $2 }'
}

if [[ ! -f "$OUT/data.done" ]]; then
  rm -rf "$OUT/data"
  mkdir -p "$OUT/data"
  pick $((36 << 20)) '*.py' /usr/lib/python3 /usr/lib/python3.11 >"$OUT/text.txt"
  pick $((55 << 20)) '*' /usr/bin >"$OUT/bin.txt"
  cat "$OUT/text.txt" "$OUT/bin.txt" | tar -cf - -T - 2>/dev/null | tar -xf - -C "$OUT/data"
  # Incompressible files (as photos or archives would be) of several sizes, dropped
  # into the text and binary folders so that chunks mix them with the rest.
  python3 - "$OUT/data" <<'PY'
import os, random, sys
r = random.Random(16)
dirs = sorted(d for d, _, files in os.walk(sys.argv[1]) if files)
total, i = 0, 0
while total < 24 << 20:
    n = r.choice([64 << 10, 200 << 10, 512 << 10, 1 << 20, 3 << 20])
    with open(os.path.join(r.choice(dirs), f"blob{i}.bin"), "wb") as f:
        f.write(r.randbytes(n))
    total, i = total + n, i + 1
PY
  touch "$OUT/data.done"
fi

if [[ ! -f "$OUT/ext4.img" ]]; then
  truncate -s 431M "$OUT/ext4.img.tmp"
  mkfs.ext4 -q -F -L small -d "$OUT/data" "$OUT/ext4.img.tmp"
  mv "$OUT/ext4.img.tmp" "$OUT/ext4.img"
fi
dumpe2fs -h "$OUT/ext4.img" 2>/dev/null |
  awk -F: '/^Block count/ { n = $2 } /^Free blocks/ { f = $2 } /^Block size/ { b = $2 }
    END { printf "small ext4: %.1f of %.1f MiB in use (files, inode tables, journal)\n",
      (n - f) * b / 1048576, n * b / 1048576 }'
