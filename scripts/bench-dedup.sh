#!/usr/bin/env bash
# Issue 19's dedup table (`make bench` runs it after scripts/bench.sh): ironclone, restic
# and borg each back up, into one fresh repository per tool, the three images of
# scripts/dedup-fixtures.sh in turn: A (first backup), B (A after a day of use), C (a
# second machine: A's files written in another order on a fresh filesystem); for ext4 and
# NTFS. Prints a markdown table of what each backup added (du -sb --apparent-size of the
# repository before and after) and the goal checks against the reference figures.
#
# Usage: bench-dedup.sh [FS_SIZE [DATA_MB]]   (the fixtures' size, default 3G and 881)
# IRONCLONE names the binary (default: the musl release build, as scripts/bench.sh).
# restic (default compression) and borg (zstd,3, no encryption) read the raw image from
# stdin, as a user without an imaging tool would run them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${IRONCLONE:-$ROOT/target/x86_64-unknown-linux-musl/release/ironclone}"
[[ -x $BIN ]] || { echo "bench-dedup: no ironclone at $BIN; make build or set IRONCLONE" >&2; exit 1; }
for t in restic borg zstd; do
  command -v "$t" >/dev/null || { echo "bench-dedup: $t missing; run make setup" >&2; exit 1; }
done
SIZE="${1:-3G}"
DATA_MB="${2:-881}"
FX="$(bash "$ROOT/scripts/dedup-fixtures.sh" "$SIZE" "$DATA_MB")"
W="$(mktemp -d "${TMPDIR:-/tmp}/ironclone-dedup-bench.XXXXXX")"
trap 'rm -rf "$W"' EXIT

# The peers keep caches and keys under $HOME; give them a throw-away one.
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$W/restic-cache"
export BORG_BASE_DIR="$W/borg-home" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes

now() { date +%s.%N; }
size() { du -sb --apparent-size "$1" | cut -f1; }
quiet() { # quiet CMD...: run with output kept in a log, shown if it fails
  "$@" >"$W/log" 2>&1 || { echo "bench-dedup: $* failed:" >&2; cat "$W/log" >&2; exit 1; }
}

init() { # init TOOL REPO
  case $1 in
  ironclone) mkdir -p "$2" ;;
  restic) quiet restic -r "$2" init ;;
  borg) quiet borg init -e none "$2" ;;
  esac
}
backup() { # backup TOOL REPO NAME IMG
  case $1 in
  ironclone) quiet "$BIN" backup "$4" "$2" --name "$3" ;;
  restic) quiet restic -r "$2" backup --stdin --stdin-filename disk.img <"$4" ;;
  borg) quiet borg create --compression zstd,3 "$2::$3" - <"$4" ;;
  esac
}

TOOLS="ironclone restic borg"
declare -A ADD SECS
for fs in ext4 ntfs; do
  cat "$FX/$fs-"{a,b,c}.img >/dev/null
  for tool in $TOOLS; do
    repo="$W/$tool-$fs"
    init "$tool" "$repo"
    for name in a b c; do
      sync
      before=$(size "$repo")
      s=$(now)
      backup "$tool" "$repo" "$name" "$FX/$fs-$name.img"
      e=$(now)
      ADD[$tool.$fs.$name]=$(($(size "$repo") - before))
      SECS[$tool.$fs.$name]=$(python3 -c "print(f'{$e - $s:.1f}')")
    done
    rm -rf "$repo"
  done
done

ref() { sed -n "s/^$2=//p" "$FX/$1.ref"; } # ref FS KEY: one reference figure, bytes
mb() { python3 -c "print(f'{$1 / 1e6:.1f} MB')"; }
ratio() { # ratio NUM DEN MAX: NUM/DEN and whether it meets the goal
  python3 -c "r = $1 / $2; print(f'{r:.2f} ' + ('ok' if r <= $3 else 'MISSED'))"
}
echo
echo "## Dedup (issue 19): $SIZE filesystems holding $DATA_MB MB of /usr files"
for fs in ext4 ntfs; do
  changed_raw=$(ref "$fs" changed_raw)
  changed_zstd=$(ref "$fs" changed_zstd)
  partclone_zstd=$(ref "$fs" partclone_zstd)
  peer=partclone.extfs
  [[ $fs == ntfs ]] && peer=partclone.ntfs
  echo
  echo "| $fs | first backup | + day of use | + second machine |"
  echo "|---|---|---|---|"
  for tool in $TOOLS; do
    echo "| $tool | $(mb "${ADD[$tool.$fs.a]}"), ${SECS[$tool.$fs.a]} s |" \
      "+$(mb "${ADD[$tool.$fs.b]}"), ${SECS[$tool.$fs.b]} s |" \
      "+$(mb "${ADD[$tool.$fs.c]}"), ${SECS[$tool.$fs.c]} s |"
  done
  echo "| changed 4 KiB blocks A→B: raw / zstd -3 | | $(mb "$changed_raw") / $(mb "$changed_zstd") | |"
  echo "| $peer -c \\| zstd -T0 -3 | $(mb "$partclone_zstd") | | |"
  echo
  echo "| $fs goal | ${TOOLS// / | } |"
  echo "|---|---|---|---|"
  line() { # line LABEL IMAGE DEN MAX: what IMAGE added over DEN ("first": the tool's own)
    local out="| $1 |" tool den
    for tool in $TOOLS; do
      den=$3
      [[ $den == first ]] && den=${ADD[$tool.$fs.a]}
      out+=" $(ratio "${ADD[$tool.$fs.$2]}" "$den" "$4") |"
    done
    echo "$out"
  }
  line "second machine / first ≤ 0.10" c first 0.10
  line "day of use / changed blocks zstd ≤ 1.5" b "$changed_zstd" 1.5
  line "first / partclone\\|zstd ≤ 1.0" a "$partclone_zstd" 1.0
done
