#!/usr/bin/env bash
# The desktop end-to-end test: a fresh database, the real sync server on a free port, a new
# business with an enrolment code, then the built desk app in a virtual X display driven by
# tauri-driver + WebKitWebDriver (ui/e2e/desktop.test.mjs). Called by scripts/test.sh, which has
# already built both binaries and made sure PostgreSQL is up (KAUNTER_PG_URL).
#
# Usage: scripts/e2e-desktop.sh <kaunter-desktop binary> <sync-server binary>
# Leaves screenshots of the window (at the end, and while read-only) and the server log in
# .run/e2e/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
desktop_binary=${1:?usage: e2e-desktop.sh <kaunter-desktop binary> <sync-server binary>}
server_binary=${2:?usage: e2e-desktop.sh <kaunter-desktop binary> <sync-server binary>}
[ -x "$desktop_binary" ] || die "no desktop app at $desktop_binary"
[ -x "$server_binary" ] || die "no sync server at $server_binary"
: "${KAUNTER_PG_URL:?KAUNTER_PG_URL must name a PostgreSQL superuser URL}"

out="$KAUNTER_RUN_DIR/e2e"
mkdir -p "$out"
work=$(mktemp -d)
database=""
server_pid=""
cleanup() {
    set +e
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    drop_scratch_database
    rm -rf "$work"
}
trap cleanup EXIT

create_scratch_database kt_e2e
port=$(free_port)
export KAUNTER_LISTEN="127.0.0.1:$port"
# The server verifies Stripe's webhook with this secret; the test signs its payment with it.
export KAUNTER_STRIPE_WEBHOOK_SECRET="whsec_kaunter_e2e_$database"

"$server_binary" serve >"$out/server.log" 2>&1 &
server_pid=$!
wait_for_port "$port" 30 || die "the sync server did not start (see $out/server.log)"

# The business signs itself up (its ADMIN is who sets a desk PIN later in the test).
export KAUNTER_ADMIN_SLUG=klinik-e2e KAUNTER_ADMIN_EMAIL=admin@klinik-e2e.my
export KAUNTER_ADMIN_PASSWORD="kuda merah lompat tinggi"
business=$(python3 - "http://127.0.0.1:$port" <<'PY'
import json, os, sys, urllib.request
body = {"business_name": "Klinik E2E", "slug": os.environ["KAUNTER_ADMIN_SLUG"],
        "industry": "HEALTHCARE", "email": "pejabat@klinik-e2e.my", "phone": "03-2145 8899",
        "address_line1": "12, Jalan Tun Razak", "postcode": "50400", "city": "Kuala Lumpur",
        "state": "W.P. Kuala Lumpur", "branch_name": "Main", "admin_name": "Pentadbir E2E",
        "admin_email": os.environ["KAUNTER_ADMIN_EMAIL"],
        "admin_password": os.environ["KAUNTER_ADMIN_PASSWORD"]}
request = urllib.request.Request(sys.argv[1] + "/v1/signup", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(request) as response:
    print(response.read().decode())
PY
)
tenant=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tenant_id"])' "$business")
branch=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["branch_id"])' "$business")
# The test ends the business's trial (psql as superuser on KAUNTER_DATABASE_URL) and pays for it.
export KAUNTER_TENANT_ID="$tenant"
code=$("$server_binary" admin enrolment-code --tenant "$tenant" --branch "$branch" --ttl-hours 1)
# A second desk of the same branch, played by the test itself over HTTP.
code_2=$("$server_binary" admin enrolment-code --tenant "$tenant" --branch "$branch" --ttl-hours 1)

driver_port=$(free_port)
native_port=$(free_port)
export KAUNTER_APP_BINARY="$desktop_binary"
export KAUNTER_SERVER_URL="http://127.0.0.1:$port"
export KAUNTER_ENROL_CODE="$code"
export KAUNTER_ENROL_CODE_2="$code_2"
export KAUNTER_WEBDRIVER_URL="http://127.0.0.1:$driver_port"
export KAUNTER_E2E_SCREENSHOT="$out/desktop.png"
# What the app reads: a fresh data folder and keyring profile, and a quick sync loop.
export KAUNTER_DATA_DIR="$work/desk"
export KAUNTER_KEYRING_PROFILE="e2e-$database"
export KAUNTER_SYNC_INTERVAL_SECS=2
export KAUNTER_EXPORT_DIR="$work/exports"
export KEYRING_HOME="$work/keyring" KAUNTER_SESSION_LOG="$out/session.log"
: >"$KAUNTER_SESSION_LOG"
export DRIVER_PORT=$driver_port NATIVE_PORT=$native_port OUT=$out
native_driver=$(command -v WebKitWebDriver) || die "WebKitWebDriver is missing (apt-get install webkit2gtk-driver)"
export NATIVE_DRIVER=$native_driver

log "Driving the desk app (server $KAUNTER_SERVER_URL, WebDriver port $driver_port)"
in_private_keyring xvfb-run -a --server-args="-screen 0 1400x1000x24" bash -c '
    set -euo pipefail
    source "$0"
    tauri-driver --port "$DRIVER_PORT" --native-port "$NATIVE_PORT" --native-driver "$NATIVE_DRIVER" \
        >"$OUT/tauri-driver.log" 2>&1 &
    driver=$!
    trap "kill $driver 2>/dev/null || true" EXIT
    wait_for_port "$DRIVER_PORT" 30 || die "tauri-driver did not start (see $OUT/tauri-driver.log)"
    node --test "$KAUNTER_ROOT/ui/e2e/desktop.test.mjs"
' "$KAUNTER_ROOT/scripts/lib.sh"
log "Desktop end-to-end passed; screenshot in $out/desktop.png"
