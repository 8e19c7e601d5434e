#!/usr/bin/env bash
# Seeds of repo_crypt: seeds/repo.sh's tiny FAT disk backed up into an encrypted
# repository (a key slot, a pack of sealed records, a sealed index file and manifest).
# The repository's master key is random, so the target cannot open these seals; they
# seed the framing (slot JSON, nonce and tag lengths, record headers), and the target's
# fixed key explores the rest.
set -euo pipefail
SEED_ENCRYPT=1 exec bash "$(dirname "$0")/repo.sh" "$1"
