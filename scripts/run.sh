#!/usr/bin/env bash
# Runs Kaunter on this Debian/Ubuntu machine: installs what is missing, uses $DATABASE_URL or
# starts a private PostgreSQL in .run/pg, migrates, starts the sync server on
# http://127.0.0.1:8787 (which also serves head office's pages there, from ui/dist), signs up a
# demo business ("Klinik Demo", branch "Kuala Lumpur", with a head-office login printed below)
# the first time, and opens two desk windows (Desk 1 and Desk 2, each with its own local
# database and keyring entry) with the enrolment codes printed below. Ctrl-C stops the desks and
# the server; the data stays in .run/.
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

if wait_for_port "$port" 0; then
    die "something already listens on port $port (another run?); stop it or set KAUNTER_LISTEN"
fi
"$server" --web-dir "$KAUNTER_ROOT/ui/dist" serve >>"$KAUNTER_RUN_DIR/server.log" 2>&1 &
server_pid=$!
pids=("$server_pid")
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
wait_for_port "$port" 30 || die "the sync server did not start (see .run/server.log)"
log "Sync server: $server_url (log: .run/server.log)"

# The demo business signs itself up as any business does (POST /v1/signup), which also makes
# its head-office ADMIN: `admin create-business` makes no login.
demo="$KAUNTER_RUN_DIR/demo-business.json"
database_key=$(printf %s "$KAUNTER_DATABASE_URL" | sha256sum | cut -c1-16)
if [ ! -s "$demo" ] || ! grep -q "$database_key" "$demo"; then
    log "Seeding the demo business"
    created=$(python3 - "$server_url" <<'PY'
import json, sys, urllib.error, urllib.request
body = {"business_name": "Klinik Demo", "slug": "klinik-demo", "industry": "HEALTHCARE",
        "email": "pejabat@klinik-demo.my", "phone": "03-2145 8899",
        "address_line1": "12, Jalan Tun Razak", "address_line2": "", "postcode": "50400",
        "city": "Kuala Lumpur", "state": "W.P. Kuala Lumpur", "branch_name": "Kuala Lumpur",
        "admin_name": "Pentadbir Demo", "admin_email": "admin@klinik-demo.my",
        "admin_password": "kaunter demo 2026", "language": "en"}
request = urllib.request.Request(sys.argv[1] + "/v1/signup", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
try:
    with urllib.request.urlopen(request) as response:
        print(response.read().decode())
except urllib.error.HTTPError as error:
    sys.exit(f"signing up the demo business failed: {error.code} {error.read().decode()}")
PY
) || die "could not sign up the demo business (an older demo in this database? start from a fresh one; for the private cluster, remove .run/pg)"
    # A perpetual PRO licence, as a bank transfer an operator records, so the demo never runs
    # into the end of its trial.
    demo_tenant=$(printf %s "$created" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenant_id"])')
    "$server" admin record-payment --tenant "$demo_tenant" --plan PRO --cycle ONE_TIME \
        --reference demo-licence >/dev/null
    printf '{"database":"%s","business":%s,"login":{"business":"klinik-demo","email":"admin@klinik-demo.my","password":"kaunter demo 2026"}}\n' \
        "$database_key" "$created" >"$demo"
fi
tenant=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["business"]["tenant_id"])' "$demo")
branch=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["business"]["branch_id"])' "$demo")
login=$(python3 -c '
import json, sys
login = json.load(open(sys.argv[1])).get("login")
print("business ID {business}, e-mail {email}, password \"{password}\"".format(**login) if login
      else "none: this demo was seeded before head-office logins; start from a fresh database (for the private cluster, remove .run/pg)")
' "$demo")
log "Head office: open $server_url/ in a browser; sign in with $login"

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
