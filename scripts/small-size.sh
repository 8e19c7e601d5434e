#!/usr/bin/env bash
# Where the bytes of a small image go (issue 16 item 5): backs up the fixture of
# scripts/small-fixture.sh (or the ext4 image given) and compares it with
# `partclone.ext4 | zstd -T0 -3`, split into packs, record headers, index, manifest,
# config and directory entries, with the records stored raw counted. Sizes only; for
# times see scripts/bench.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${IRONCLONE:-}"
if [[ -z "$BIN" ]]; then
  for b in target/x86_64-unknown-linux-musl/release target/release target/debug; do
    [[ -x "$ROOT/$b/ironclone" ]] && { BIN="$ROOT/$b/ironclone"; break; }
  done
fi
[[ -x "$BIN" ]] || { echo "no ironclone binary; build one or set IRONCLONE" >&2; exit 1; }
IMG="${1:-}"
if [[ -z "$IMG" ]]; then
  bash "$ROOT/scripts/small-fixture.sh"
  IMG="$ROOT/build/small/ext4.img"
fi
W="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-small.XXXXXX")"
trap 'rm -rf "$W"' EXIT

partclone.ext4 -c -s "$IMG" -o - 2>"$W/partclone.log" | zstd -T0 -3 -q >"$W/peer.zst" ||
  { cat "$W/partclone.log" >&2; exit 1; }
"$BIN" backup "$IMG" "$W/repo" --name small >/dev/null 2>"$W/backup.log" ||
  { cat "$W/backup.log" >&2; exit 1; }

bytes() { find "$W/repo/$1" -type f -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }'; }
peer=$(stat -c %s "$W/peer.zst")
packs=$(bytes packs)
total=$(du -sb --apparent-size "$W/repo" | cut -f1)
files=$(bytes .)
python3 - "$W/repo" "$peer" "$packs" "$total" "$files" "$(bytes index)" "$(bytes images)" \
  "$(bytes config)" <<'PY'
import glob, json, subprocess, sys
repo, peer, packs, total, files, index, manifest, config = sys.argv[1], *map(int, sys.argv[2:])
def load(f):  # index files are zstd-compressed JSON from format 2
    return json.loads(subprocess.run(["zstd", "-dcqf", f], check=True, capture_output=True).stdout)
recs = [e for f in glob.glob(f"{repo}/index/*.json") for e in load(f)["entries"]]
raw = [e for e in recs if e["compression"] == "none"]
# A frame record's header is 56 bytes and 4 per chunk; a chunk record's 52.
headers = 16 * len(glob.glob(f"{repo}/packs/*/*.pack")) + sum(
    56 + 4 * e["members"] if e.get("members") else 52 for e in recs)
print(f"partclone.ext4 | zstd -3   {peer:>11}")
print(f"ironclone packs            {packs:>11}  {packs / peer:.4f} of the peer")
print(f"  stored chunk bytes       {packs - headers:>11}  ({len(recs)} records, {len(raw)} raw, "
      f"{sum(e['raw_len'] for e in raw)} raw bytes)")
print(f"  pack and record headers  {headers:>11}")
print(f"index files                {index:>11}")
print(f"manifest                   {manifest:>11}")
print(f"config                     {config:>11}")
print(f"directories (du counts)    {total - files:>11}")
print(f"repository (du -sb)        {total:>11}  {total / peer:.4f} of the peer")
PY
