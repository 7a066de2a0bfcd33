# Shared by scripts/run.sh, scripts/test.sh and .ci/run: system packages and PostgreSQL.
# Source it; it defines functions only.

KAUNTER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KAUNTER_RUN_DIR="$KAUNTER_ROOT/.run"

log() { printf '\033[1;36m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[1;31mError: %s\033[0m\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"; fi
}

# Debian/Ubuntu packages the desk app, its tests and the server need.
KAUNTER_APT_PACKAGES=(
    build-essential pkg-config curl wget file
    libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
    libdbus-1-dev gnome-keyring libsecret-tools dbus-x11
    xvfb xauth webkit2gtk-driver
    chromium chromium-driver fonts-liberation
    postgresql postgresql-client
    python3-venv
)

ensure_packages() {
    local missing=()
    for package in "${KAUNTER_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "Installing system packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    command -v cargo >/dev/null || die "Rust is missing: install it with rustup (https://rustup.rs), 1.95 or newer."
    command -v npm >/dev/null || die "Node.js 20+ with npm is missing: install it (e.g. apt-get install nodejs npm)."
}

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
    echo "$dir"
}

pg_answers() { psql "$1" -qAtc 'select 1' >/dev/null 2>&1; }

# Sets KAUNTER_PG_URL to a superuser URL of a running cluster's maintenance database:
#  1. $KAUNTER_PG_URL if given;
#  2. the machine's cluster on 127.0.0.1:5432 when it accepts the postgres user (started with
#     pg_ctlcluster if it is installed but down);
#  3. otherwise a private cluster in .run/pg on port 55432, made on first use.
ensure_postgres() {
    if [ -n "${KAUNTER_PG_URL:-}" ]; then
        pg_answers "$KAUNTER_PG_URL" || die "cannot connect to KAUNTER_PG_URL"
        return
    fi
    local system_url="postgres://postgres@127.0.0.1:5432/postgres"
    if ! pg_answers "$system_url" && command -v pg_lsclusters >/dev/null; then
        local version
        version=$(pg_lsclusters -h 2>/dev/null | awk '$2 == "main" && $3 == 5432 {print $1; exit}')
        if [ -n "$version" ] && [ "$(id -u)" = 0 ]; then
            log "Starting the machine's PostgreSQL $version cluster"
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
            for _ in $(seq 1 30); do pg_answers "$system_url" && break; sleep 0.5; done
        fi
    fi
    if pg_answers "$system_url"; then
        KAUNTER_PG_URL=$system_url
        export KAUNTER_PG_URL
        return
    fi
    start_private_postgres
}

start_private_postgres() {
    local bin data port=55432 owner
    bin=$(pg_bin)
    data="$KAUNTER_RUN_DIR/pg"
    mkdir -p "$KAUNTER_RUN_DIR"
    # initdb refuses to run as root: the cluster then belongs to the postgres system user.
    if [ "$(id -u)" = 0 ]; then owner=postgres; else owner=$(id -un); fi
    run_as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    if [ ! -f "$data/PG_VERSION" ]; then
        log "Creating a private PostgreSQL cluster in $data"
        mkdir -p "$data"
        [ "$(id -u)" = 0 ] && chown postgres: "$data"
        run_as_owner "$bin/initdb" -D "$data" -U "$owner" --auth=trust -E UTF8 >/dev/null
    fi
    local url="postgres://$owner@127.0.0.1:$port/postgres"
    if ! pg_answers "$url"; then
        log "Starting the private PostgreSQL cluster on port $port"
        run_as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
            -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
    fi
    pg_answers "$url" || die "the private PostgreSQL cluster did not start (see $data/server.log)"
    KAUNTER_PG_URL=$url
    export KAUNTER_PG_URL
}

# Replaces the database name in a postgres:// URL.
pg_url_with_db() { echo "${1%/*}/$2"; }

# A database of its own for one test run, on the cluster at KAUNTER_PG_URL: sets `database` to
# <prefix>_<random> and exports KAUNTER_DATABASE_URL for it. Set `database=""` before the
# script's EXIT trap, and call drop_scratch_database from that trap.
create_scratch_database() {
    database="$1_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    psql "$KAUNTER_PG_URL" -qc "CREATE DATABASE $database" >/dev/null
    export KAUNTER_DATABASE_URL
    KAUNTER_DATABASE_URL=$(pg_url_with_db "$KAUNTER_PG_URL" "$database")
}

# Drops the database create_scratch_database made, if it made one; never fails.
drop_scratch_database() {
    [ -n "${database:-}" ] || return 0
    psql "$KAUNTER_PG_URL" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
}

ensure_tauri_driver() {
    command -v tauri-driver >/dev/null && return
    log "Installing tauri-driver"
    cargo install tauri-driver --locked --quiet
}

# Schemathesis (PyPI), pinned: the API fuzzing step (scripts/api-fuzz.sh) runs it.
KAUNTER_SCHEMATHESIS_VERSION=4.32.5

# The schemathesis command, in a virtual environment of the project's own (.run/venv), so
# neither the system's Python nor the developer's packages are touched.
schemathesis_command() {
    echo "$KAUNTER_RUN_DIR/venv/bin/st"
}

ensure_schemathesis() {
    local st
    st=$(schemathesis_command)
    if [ -x "$st" ] && "$st" --version 2>/dev/null | grep -qF "$KAUNTER_SCHEMATHESIS_VERSION"; then
        return
    fi
    log "Installing schemathesis $KAUNTER_SCHEMATHESIS_VERSION into .run/venv"
    mkdir -p "$KAUNTER_RUN_DIR"
    python3 -m venv "$KAUNTER_RUN_DIR/venv" \
        || die "could not make a Python virtual environment (apt-get install python3-venv)"
    "$KAUNTER_RUN_DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$KAUNTER_SCHEMATHESIS_VERSION" \
        || die "could not install schemathesis $KAUNTER_SCHEMATHESIS_VERSION from PyPI"
}

ensure_nextest() {
    command -v cargo-nextest >/dev/null && return
    log "Installing cargo-nextest"
    cargo install cargo-nextest --locked --quiet
}

# Installs ui/node_modules from the lock file when it is missing or the lock file changed.
ensure_ui_packages() {
    local stamp="$KAUNTER_ROOT/ui/node_modules/.kaunter-lock"
    if [ ! -f "$stamp" ] || ! cmp -s "$KAUNTER_ROOT/ui/package-lock.json" "$stamp"; then
        log "Installing the front-end's npm packages"
        npm ci --prefix "$KAUNTER_ROOT/ui" --no-audit --no-fund --loglevel=error
        cp "$KAUNTER_ROOT/ui/package-lock.json" "$stamp"
    fi
}

# A free TCP port on 127.0.0.1 (the kernel's pick; free when asked, used right after).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something accepts TCP connections on 127.0.0.1:$1 (at most $2 seconds).
wait_for_port() {
    local port=$1 seconds=${2:-30}
    for _ in $(seq 1 $((seconds * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Runs "$@" inside a private D-Bus session with its own unlocked gnome-keyring (Secret Service),
# whose files live under $KEYRING_HOME (default: a new temporary folder). A developer's own
# keyring is never touched, and KAUNTER_PRIVATE_KEYRING_SESSION=1 tells tests they may write.
# The session's daemons chatter on stderr: that goes to $KAUNTER_SESSION_LOG (default: nowhere),
# while "$@" keeps this shell's stderr.
in_private_keyring() {
    local home=${KEYRING_HOME:-$(mktemp -d)}
    mkdir -p "$home"
    {
        XDG_DATA_HOME="$home" dbus-run-session -- bash -c '
            eval "$(printf kaunter | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null
            export KAUNTER_PRIVATE_KEYRING_SESSION=1
            exec 2>&3 3>&-
            exec "$@"' kaunter-keyring "$@" 2>>"${KAUNTER_SESSION_LOG:-/dev/null}"
    } 3>&2
}
