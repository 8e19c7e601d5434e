# shellcheck shell=bash
# Sourced by the seed scripts that need a real repository (repo.sh, deploy.sh): the
# `ironclone` they run, and the small FAT disk they back up. Both want the same disk (a
# compressible and an incompressible file give a pack with zstd and stored records), so
# it is made in one place.
# The binary is $IRONCLONE, or the crate's debug build (cargo builds it when needed).
# Needs: $root (the repository's top folder) and a fail MESSAGE WHAT function.
ironclone() {
  if [[ -n ${IRONCLONE:-} ]]; then
    "$IRONCLONE" "$@"
  else
    cargo run -q --locked --manifest-path "${root:?}/Cargo.toml" --bin ironclone -- "$@"
  fi
}

# small_fat_disk DIR: DIR/disk, a 1 MiB FAT12 filesystem holding DIR/text (100 kB of one
# letter) and DIR/noise (50 kB random).
small_fat_disk() {
  local dir=$1 log
  truncate -s 1M "$dir/disk"
  log=$(mkfs.fat -F 12 "$dir/disk" 2>&1) || fail "$log" mkfs.fat
  head -c 100000 /dev/zero | tr '\0' 'z' >"$dir/text"
  head -c 50000 /dev/urandom >"$dir/noise"
  log=$(mcopy -i "$dir/disk" "$dir/text" "$dir/noise" :: 2>&1) || fail "$log" mcopy
}
