# shellcheck shell=bash
# Shared by the restore-and-boot tests (sourced): counters, timing, and the steps
# build → backup → restore → boot each of them runs, with their logs in $work.
# The sourcing script sets ROOT, BOOT, TIMEOUT, work, repo and keep_logs.
# shellcheck disable=SC2034,SC2154 # keep_logs is read by the sourcing script's trap; it sets work and repo

passed=0 failed=0
# The binary under test: $IRONCLONE, else a (cheap, incremental) debug build of this
# tree, so a stale release binary is never what gets tested.
if [[ -n ${IRONCLONE:-} ]]; then bin=$IRONCLONE
else
  (cd "$ROOT" && cargo build --quiet --bin ironclone) || { echo "FAIL: cannot build ironclone"; exit 1; }
  bin="$ROOT/target/debug/ironclone"
fi
ok() { passed=$((passed + 1)); echo "PASS: $*"; }
bad() { failed=$((failed + 1)); keep_logs=1; echo "FAIL: $*"; }
t() { local s=$SECONDS; "$@"; local rc=$?; LAST_SECS=$((SECONDS - s)); return $rc; }

build() { # build NAME SCRIPT ARGS...
  local name=$1; shift
  if t bash "$@" >"$work/$name.build.log" 2>&1; then echo "built $name in ${LAST_SECS}s"
  else bad "building $name"; cat "$work/$name.build.log"; return 1; fi
}

backup() { # backup SRC NAME
  if t "$bin" backup "$1" "$repo" --name "$2" >"$work/$2.backup.log" 2>&1; then
    echo "backed up $2 in ${LAST_SECS}s"
  else bad "backup $2"; cat "$work/$2.backup.log"; return 1; fi
}

# restore NAME OUT FACTOR_PERCENT [restore args...]: target = size*factor, rounded down to 1 MiB
restore() {
  local name=$1 out=$2 pct=$3 src_size=$4; shift 4
  local size=$((src_size * pct / 100 / 1048576 * 1048576))
  rm -f "$out"; truncate -s "$size" "$out"
  if t "$bin" restore "$repo" "$name" "$out" --yes --no-nvram --scratch "$work" "$@" >"$work/$(basename "$out").restore.log" 2>&1; then
    echo "restored $name onto $((size / 1048576)) MiB ($pct%) in ${LAST_SECS}s"
    sed 's/^/  /' "$work/$(basename "$out").restore.log"
  else
    bad "restore $name onto $pct% ($*)"; cat "$work/$(basename "$out").restore.log"; return 1
  fi
}

expect_boot() { # expect_boot LABEL DISK FW MARKER [boot-disk args...]
  local label=$1 disk=$2 fw=$3 marker=$4; shift 4
  if t bash "$BOOT" "$disk" --firmware "$fw" --marker "$marker" --timeout "$TIMEOUT" \
      --log "$work/$label.log" --snapshot "$@" >/dev/null 2>&1; then
    ok "$label boots ($fw, ${LAST_SECS}s)"
  else
    bad "$label did not boot ($fw), log $work/$label.log"; tail -5 "$work/$label.log"
  fi
}

expect_no_boot() { # negative control: the marker must not appear
  local label=$1 disk=$2 fw=$3 marker=$4; shift 4
  if t bash "$BOOT" "$disk" --firmware "$fw" --marker "$marker" --timeout 45 \
      --log "$work/$label.log" --snapshot "$@" >/dev/null 2>&1; then
    bad "$label booted but must not ($fw), log $work/$label.log"
  else
    # It must have got as far as the firmware trying this disk, or "not booting" proves nothing.
    local tried='Booting from Hard Disk'
    [[ $fw == uefi ]] && tried='BdsDxe'
    if grep -aq "$tried" "$work/$label.log"; then ok "$label does not boot ($fw, negative control, ${LAST_SECS}s)"
    else bad "$label: the firmware never tried the disk (no '$tried' in $work/$label.log)"; fi
  fi
}

