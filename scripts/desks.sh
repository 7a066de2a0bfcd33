#!/usr/bin/env bash
# Opens N desk windows of one built desk app, each with its own data folder (.run/desk-N) and
# keyring profile, and waits for them all to close. Used by scripts/run.sh.
# Usage: scripts/desks.sh <kaunter-desktop binary> <N>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
desktop=${1:?usage: desks.sh <kaunter-desktop binary> <N>}
count=${2:-2}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for number in $(seq 1 "$count"); do
    KAUNTER_DATA_DIR="$KAUNTER_RUN_DIR/desk-$number" KAUNTER_KEYRING_PROFILE="demo-desk-$number" \
        "$desktop" >>"$KAUNTER_RUN_DIR/desk-$number.log" 2>&1 &
    pids+=("$!")
done
wait "${pids[@]}"
