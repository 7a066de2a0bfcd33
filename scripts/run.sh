#!/usr/bin/env bash
# Runs Kaunter on this Debian/Ubuntu machine: installs what is missing, uses $DATABASE_URL or
# starts a private PostgreSQL in .run/pg, migrates, seeds a demo business ("Klinik Demo", branch
# KL01) the first time, starts the sync server on http://127.0.0.1:8787 and opens two desk
# windows (Desk 1 and Desk 2, each with its own local database and keyring entry) with the
# enrolment codes printed below. Ctrl-C stops the desks and the server; the data stays in .run/.
#
# Environment: DATABASE_URL (a PostgreSQL URL of a role that may create roles and tables),
# KAUNTER_LISTEN (default 127.0.0.1:8787), KAUNTER_DESKS (how many desk windows, default 2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KAUNTER_ROOT"
mkdir -p "$KAUNTER_RUN_DIR"

ensure_packages
ensure_ui_packages

if [ -n "${DATABASE_URL:-}" ]; then
    pg_answers "$DATABASE_URL" || die "cannot connect to DATABASE_URL"
    export KAUNTER_DATABASE_URL="$DATABASE_URL"
else
    start_private_postgres
    psql "$KAUNTER_PG_URL" -qAtc "SELECT 1 FROM pg_database WHERE datname = 'kaunter'" | grep -q 1 \
        || psql "$KAUNTER_PG_URL" -qc "CREATE DATABASE kaunter" >/dev/null
    export KAUNTER_DATABASE_URL
    KAUNTER_DATABASE_URL=$(pg_url_with_db "$KAUNTER_PG_URL" kaunter)
fi
export KAUNTER_LISTEN=${KAUNTER_LISTEN:-127.0.0.1:8787}
port=${KAUNTER_LISTEN##*:}
server_url="http://127.0.0.1:$port"
desks=${KAUNTER_DESKS:-2}

log "Building the desk window and the binaries (the first build takes a few minutes)"
npm --prefix ui run --silent build
cargo build --locked --workspace --bins --features kaunter-desktop/custom-protocol
server="$KAUNTER_ROOT/target/debug/sync-server"
desktop="$KAUNTER_ROOT/target/debug/kaunter-desktop"

"$server" migrate
demo="$KAUNTER_RUN_DIR/demo-business.json"
if [ ! -s "$demo" ] || ! grep -q "$(printf %s "$KAUNTER_DATABASE_URL" | sha256sum | cut -c1-16)" "$demo"; then
    log "Seeding the demo business"
    created=$("$server" admin create-business --name "Klinik Demo" --branch "Kuala Lumpur" --branch-code KL01)
    # A perpetual PRO licence, as a bank transfer an operator records, so the demo never runs
    # into the end of its trial.
    demo_tenant=$(printf %s "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant_id"])')
    "$server" admin record-payment --tenant "$demo_tenant" --plan PRO --cycle ONE_TIME \
        --reference demo-licence >/dev/null
    printf '{"database":"%s","business":%s}\n' \
        "$(printf %s "$KAUNTER_DATABASE_URL" | sha256sum | cut -c1-16)" "$created" >"$demo"
fi
tenant=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["business"]["tenant_id"])' "$demo")
branch=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["business"]["branch_id"])' "$demo")

if wait_for_port "$port" 0; then
    die "something already listens on port $port (another run?); stop it or set KAUNTER_LISTEN"
fi
"$server" serve >>"$KAUNTER_RUN_DIR/server.log" 2>&1 &
server_pid=$!
pids=("$server_pid")
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
wait_for_port "$port" 30 || die "the sync server did not start (see .run/server.log)"
log "Sync server: $server_url (log: .run/server.log)"

# A fresh enrolment code per desk, for a desk that shows its set-up screen (an enrolled desk
# opens straight to its patients and the code simply expires unused).
for number in $(seq 1 "$desks"); do
    code=$("$server" admin enrolment-code --tenant "$tenant" --branch "$branch" --ttl-hours 24)
    log "Desk $number: if it asks, server address $server_url, enrolment code $code"
done

# The desks keep their data keys in the OS keyring. Without a desktop session (no D-Bus), a
# private gnome-keyring in .run/keyring stands in, so the keys survive between runs. Without a
# display, the windows open in a virtual one (Xvfb).
wrappers=()
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
    log "No D-Bus session: the desks use a private keyring in .run/keyring"
    export KEYRING_HOME="$KAUNTER_RUN_DIR/keyring" KAUNTER_SESSION_LOG="$KAUNTER_RUN_DIR/session.log"
    wrappers+=(in_private_keyring)
fi
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    log "No display: the desks open in a virtual one (Xvfb); the sync server is yours to use"
    wrappers+=(xvfb-run -a)
fi
log "Running. Close the desk windows or press Ctrl-C to stop."
"${wrappers[@]}" "$KAUNTER_ROOT/scripts/desks.sh" "$desktop" "$desks"
