#!/usr/bin/env bash
# Head office's pages end to end: a fresh database, two businesses, the real sync server
# serving the built front-end (--web-dir ui/dist) on a free port, then real headless Chromium
# driven by playwright-core (ui/e2e/office.test.mjs). Called by scripts/test.sh, which has
# already built the server and the front-end and made sure PostgreSQL is up (KAUNTER_PG_URL);
# run alone it finds a PostgreSQL itself.
#
# Business A signs itself up (POST /v1/signup: its ADMIN is who signs in), gets a second branch,
# two enrolment codes and a bank transfer recorded with `admin record-payment`; business B is
# made with `admin create-business` and has a desk and a payment of its own, none of which may
# appear on A's page. The test enrols the desks, has them report, and opens a clinical record in
# an emergency through the API.
#
# Usage: scripts/e2e-office.sh <sync-server binary>
# Leaves the server log in .run/e2e-office/; the test prints where its screenshots are (a new
# temporary folder unless KAUNTER_E2E_SCREENSHOT_DIR names one).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
server_binary=${1:?usage: e2e-office.sh <sync-server binary>}
[ -x "$server_binary" ] || die "no sync server at $server_binary"
web_dir="$KAUNTER_ROOT/ui/dist"
[ -f "$web_dir/office.html" ] || die "no $web_dir/office.html: build the front-end first (npm --prefix ui run build)"
chromium=${KAUNTER_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || die "no Chromium at $chromium (apt-get install chromium)"
[ -n "${KAUNTER_PG_URL:-}" ] || ensure_postgres
ensure_ui_packages

out="$KAUNTER_RUN_DIR/e2e-office"
rm -rf "$out"
mkdir -p "$out"
database=""
server_pid=""
cleanup() {
    set +e
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    drop_scratch_database
}
trap cleanup EXIT

create_scratch_database kt_e2e_office
"$server_binary" migrate 2>>"$out/server.log"

json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# Business B, made by an operator: a branch, a desk's enrolment code and a payment of its own.
export KAUNTER_OTHER_BUSINESS_NAME="Syarikat Lain Ipoh Sdn Bhd"
export KAUNTER_OTHER_BRANCH_NAME="Cawangan Rahsia Ipoh"
export KAUNTER_OTHER_PAYMENT_REFERENCE="b-only-transfer-7731"
other=$("$server_binary" admin create-business --name "$KAUNTER_OTHER_BUSINESS_NAME" \
    --branch "$KAUNTER_OTHER_BRANCH_NAME" --branch-code IPH9 2>>"$out/server.log")
export KAUNTER_OTHER_TENANT_ID
KAUNTER_OTHER_TENANT_ID=$(json_field "$other" tenant_id)
other_branch=$(json_field "$other" branch_id)
export KAUNTER_OTHER_ENROL_CODE
KAUNTER_OTHER_ENROL_CODE=$("$server_binary" admin enrolment-code --tenant "$KAUNTER_OTHER_TENANT_ID" \
    --branch "$other_branch" --ttl-hours 1 2>>"$out/server.log")
"$server_binary" admin record-payment --tenant "$KAUNTER_OTHER_TENANT_ID" --plan STARTER --cycle MONTHLY \
    --reference "$KAUNTER_OTHER_PAYMENT_REFERENCE" >/dev/null 2>>"$out/server.log"

port=$(free_port)
export KAUNTER_LISTEN="127.0.0.1:$port"
export KAUNTER_SERVER_URL="http://127.0.0.1:$port"
"$server_binary" --web-dir "$web_dir" serve >>"$out/server.log" 2>&1 &
server_pid=$!
wait_for_port "$port" 30 || die "the sync server did not start (see $out/server.log)"

# Business A signs itself up: the only way a business gets a head-office login today
# (`admin create-business` makes none).
export KAUNTER_BUSINESS_NAME="Klinik Pejabat E2E"
export KAUNTER_BRANCH_NAME="Cawangan Utama KL"
export KAUNTER_SECOND_BRANCH_NAME="Cawangan Petaling Jaya"
export KAUNTER_ADMIN_SLUG=klinik-pejabat-e2e KAUNTER_ADMIN_EMAIL=admin@klinik-pejabat-e2e.my
export KAUNTER_ADMIN_PASSWORD="kuda merah lompat tinggi"
business=$(python3 - "$KAUNTER_SERVER_URL" <<'PY'
import json, os, sys, urllib.request
body = {"business_name": os.environ["KAUNTER_BUSINESS_NAME"], "slug": os.environ["KAUNTER_ADMIN_SLUG"],
        "industry": "HEALTHCARE", "email": "pejabat@klinik-pejabat-e2e.my", "phone": "03-2145 8899",
        "address_line1": "12, Jalan Tun Razak", "address_line2": "", "postcode": "50400",
        "city": "Kuala Lumpur", "state": "W.P. Kuala Lumpur",
        "branch_name": os.environ["KAUNTER_BRANCH_NAME"], "admin_name": "Pentadbir Pejabat",
        "admin_email": os.environ["KAUNTER_ADMIN_EMAIL"],
        "admin_password": os.environ["KAUNTER_ADMIN_PASSWORD"], "language": "en"}
request = urllib.request.Request(sys.argv[1] + "/v1/signup", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(request) as response:
    print(response.read().decode())
PY
)
export KAUNTER_TENANT_ID
KAUNTER_TENANT_ID=$(json_field "$business" tenant_id)
branch=$(json_field "$business" branch_id)
second=$("$server_binary" admin add-branch --tenant "$KAUNTER_TENANT_ID" \
    --name "$KAUNTER_SECOND_BRANCH_NAME" --code PJ02 2>>"$out/server.log")
second_branch=$(json_field "$second" branch_id)
export KAUNTER_ENROL_CODE_1 KAUNTER_ENROL_CODE_2
KAUNTER_ENROL_CODE_1=$("$server_binary" admin enrolment-code --tenant "$KAUNTER_TENANT_ID" \
    --branch "$branch" --ttl-hours 1 2>>"$out/server.log")
KAUNTER_ENROL_CODE_2=$("$server_binary" admin enrolment-code --tenant "$KAUNTER_TENANT_ID" \
    --branch "$second_branch" --ttl-hours 1 2>>"$out/server.log")
# A bank transfer for a year of GROWTH at a discount: RM 1,234.56 on the page.
export KAUNTER_PAYMENT_REFERENCE="office-e2e-transfer-001" KAUNTER_PAYMENT_AMOUNT_SEN=123456
"$server_binary" admin record-payment --tenant "$KAUNTER_TENANT_ID" --plan GROWTH --cycle YEARLY \
    --amount-sen "$KAUNTER_PAYMENT_AMOUNT_SEN" --reference "$KAUNTER_PAYMENT_REFERENCE" \
    >/dev/null 2>>"$out/server.log"

# Screenshots go to a new temporary folder the test names (KAUNTER_E2E_SCREENSHOT_DIR chooses
# another).
export KAUNTER_CHROMIUM="$chromium"
log "Driving head office's page in Chromium (server $KAUNTER_SERVER_URL)"
node --test "$KAUNTER_ROOT/ui/e2e/office.test.mjs"
log "Head-office end-to-end passed (server log: $out/server.log)"
