#!/usr/bin/env bash
# Runs Kaunter's whole test suite on a Debian/Ubuntu machine: installs what is missing, makes sure
# a PostgreSQL is up (the machine's on 127.0.0.1:5432, or a private one), then
#   1. rustfmt --check, the front-end's typecheck, unit tests and build;
#   2. clippy -D warnings over every crate and target;
#   3. every Rust test with nextest (real PostgreSQL, real HTTP, real SQLite files);
#   4. the real OS keyring backend inside a private Secret Service session;
#   5. the built desktop app in a real window (Xvfb) driven by tauri-driver + WebKitWebDriver
#      against the real sync server;
#   6. head office's pages, served by the real sync server, in real headless Chromium
#      (playwright-core);
#   7. schemathesis against the running sync server and its OpenAPI document.
# Any failure stops the run with a non-zero exit. Extra arguments go to `cargo nextest run`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KAUNTER_ROOT"

ensure_packages
ensure_nextest
ensure_tauri_driver
ensure_postgres
export KAUNTER_TEST_PG_URL="$KAUNTER_PG_URL"
ensure_ui_packages
ensure_schemathesis

# The desktop app serves ui/dist from inside its binary, as a release does; every cargo step
# below uses the same feature set so nothing is compiled twice.
CARGO_FEATURES=(--workspace --locked --features kaunter-desktop/custom-protocol)

log "1/7 Formatting and the front-end"
cargo fmt --all -- --check
npm --prefix ui run --silent build
npm --prefix ui test --silent

log "2/7 clippy -D warnings"
cargo clippy "${CARGO_FEATURES[@]}" --all-targets -- -D warnings

log "3/7 Rust tests (nextest)"
cargo build "${CARGO_FEATURES[@]}" --all-targets
cargo nextest run "${CARGO_FEATURES[@]}" --no-fail-fast "$@"

log "4/7 The OS keyring backend (private Secret Service session)"
in_private_keyring cargo nextest run "${CARGO_FEATURES[@]}" \
    --ignore-default-filter -E 'binary(os_keyring)'

log "5/7 The desktop app in a real window"
"$KAUNTER_ROOT/scripts/e2e-desktop.sh" "$KAUNTER_ROOT/target/debug/kaunter-desktop" \
    "$KAUNTER_ROOT/target/debug/sync-server"

log "6/7 The head-office pages in real Chromium"
"$KAUNTER_ROOT/scripts/e2e-office.sh" "$KAUNTER_ROOT/target/debug/sync-server"

log "7/7 The HTTP API against its OpenAPI document (schemathesis)"
"$KAUNTER_ROOT/scripts/api-fuzz.sh" "$KAUNTER_ROOT/target/debug/sync-server"

log "All tests passed"
