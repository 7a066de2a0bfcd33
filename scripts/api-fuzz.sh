#!/usr/bin/env bash
# Schemathesis against the real sync server: a fresh database, the server on a free port, a
# signed-up clinic with an enrolled desk and a logged-in ADMIN, then every operation of the
# served OpenAPI document (GET /v1/openapi.json) with generated valid and invalid requests.
# Fails on any 5xx, any status the document does not list, any body that does not match its
# schema, and any answer that is not JSON. Called by scripts/test.sh, which has built the
# server and made sure PostgreSQL is up (KAUNTER_PG_URL).
#
# Usage: scripts/api-fuzz.sh <sync-server binary> [examples per operation, default 25]
# Leaves the server log and schemathesis's reports in .run/api-fuzz/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
server_binary=${1:?usage: api-fuzz.sh <sync-server binary> [examples]}
examples=${2:-25}
[ -x "$server_binary" ] || die "no sync server at $server_binary"
: "${KAUNTER_PG_URL:?KAUNTER_PG_URL must name a PostgreSQL superuser URL}"
st=$(schemathesis_command)
[ -x "$st" ] || die "schemathesis is missing (python3 -m pip install schemathesis==$KAUNTER_SCHEMATHESIS_VERSION)"

out="$KAUNTER_RUN_DIR/api-fuzz"
rm -rf "$out" && mkdir -p "$out"
database=""
server_pid=""
cleanup() {
    set +e
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    drop_scratch_database
}
trap cleanup EXIT

create_scratch_database kt_fuzz
port=$(free_port)
export KAUNTER_LISTEN="127.0.0.1:$port"
# The payment webhooks configured, as in production: fuzzed deliveries then meet the signature
# checks (400) rather than the "not configured" answer (503).
export KAUNTER_STRIPE_WEBHOOK_SECRET="whsec_kaunter_api_fuzz" KAUNTER_FPX_WEBHOOK_SECRET="fpx_kaunter_api_fuzz"
base="http://127.0.0.1:$port"
"$server_binary" serve >"$out/server.log" 2>&1 &
server_pid=$!
wait_for_port "$port" 60 || die "the sync server did not start (see $out/server.log)"

# The credentials every generated request carries: a desk's bearer token, and an ADMIN's
# session cookie with its CSRF token. (Routes ignore the credential kind they do not use.)
credentials=$(python3 - "$base" "$server_binary" <<'PY'
import json, subprocess, sys, urllib.request
base, server = sys.argv[1], sys.argv[2]
def call(method, path, body=None, headers=None):
    request = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request) as response:
        return response, json.loads(response.read() or b"null")
password = "kuda merah lompat tinggi"
_, created = call("POST", "/v1/signup", {
    "business_name": "Klinik Fuzz", "slug": "klinik-fuzz", "industry": "HEALTHCARE",
    "email": "pejabat@klinikfuzz.my", "phone": "03-2145 8899",
    "address_line1": "12, Jalan Tun Razak", "postcode": "50400", "city": "Kuala Lumpur",
    "state": "W.P. Kuala Lumpur", "branch_name": "Cawangan Utama", "admin_name": "Pentadbir",
    "admin_email": "admin@klinikfuzz.my", "admin_password": password})
code = subprocess.run([server, "admin", "enrolment-code", "--tenant", created["tenant_id"],
                       "--branch", created["branch_id"], "--ttl-hours", "1"],
                      check=True, capture_output=True, text=True).stdout.strip()
_, desk = call("POST", "/v1/enrol", {"code": code, "device_name": "Kaunter fuzz",
                                     "rotating_credentials": True})
response, session = call("POST", "/v1/auth/login", {"business": "klinik-fuzz",
    "email": "admin@klinikfuzz.my", "password": password})
cookie = response.headers["Set-Cookie"].split(";")[0]
print(desk["device_token"])
print(cookie)
print(session["csrf_token"])
PY
)
token=$(sed -n 1p <<<"$credentials")
cookie=$(sed -n 2p <<<"$credentials")
csrf=$(sed -n 3p <<<"$credentials")

# Two passes: the security setting would turn the ADMIN's session into a set-up-only one and
# starve every other operation, so it runs on its own after the rest. Logging out would end the
# session; it is covered by tests/auth.rs. Seeded, so a failure replays with the same command.
fuzz() {
    local name=$1
    shift
    log "Schemathesis ($name): $base/v1/openapi.json, up to $examples examples an operation"
    if ! "$st" --no-color run "$base/v1/openapi.json" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases examples,coverage,fuzzing \
        --max-examples "$examples" \
        --seed 20261201 \
        --workers 1 \
        --request-timeout 30 \
        -H "Authorization: Bearer $token" \
        -H "Cookie: $cookie" \
        -H "X-CSRF-Token: $csrf" \
        --report junit --report-junit-path "$out/junit-$name.xml" \
        "$@" 2>&1 | tee "$out/schemathesis-$name.log"; then
        grep -E "ERROR|panicked|request failed" "$out/server.log" | tail -n 20 >&2 || true
        die "schemathesis ($name) found problems (see $out/schemathesis-$name.log and $out/server.log)"
    fi
}
fuzz main --exclude-path /v1/auth/logout --exclude-path /v1/settings/security
fuzz settings --include-path /v1/settings/security
log "Schemathesis passed"
