# pg_lib.sh — PostgreSQL and HAProxy for the tests of the shared state store, on
# loopback. Sourced after lib.sh: `source "$(dirname "$0")/lib.sh"`, then this file.
#
# Every server is the test's own: a cluster made with initdb in a temp dir of its own
# (PG_ROOT, ktlstun-pg.XXXXXX in /dev/shm or /tmp), listening on 127.0.0.1 at a free
# port and on a unix socket in that dir, never the system's cluster or config. TCP
# connections are TLS only and authenticated by client certificate (CN = database
# user); the test's own psql reaches each server as postgres over its unix socket.
# PostgreSQL refuses to run as root: when the test runs as root, initdb, pg_ctl (so the
# servers) and pg_basebackup run as PG_RUN_USER (default nobody) through setpriv, and
# PG_ROOT belongs to that user.
#
# Layout: PG_ROOT/NAME/{data,tls,postgres.log} and the socket PG_ROOT/NAME/.s.PGSQL.PORT;
# the CA and client certificates in PG_CERTS (pg_make_certs). Per server NAME (letters,
# digits, _), exported: PG_PORT_NAME, PG_SOCKET_DIR_NAME, PG_DATA_NAME.
# The EXIT trap set here stops every server started here (immediate) and removes
# PG_ROOT, the servers' logs copied into TEST_DIR first (run.sh keeps a failed test's
# dir), then runs lib.sh's cleanup; a test that sets its own EXIT trap calls
# pg_cleanup in it.

PG_ROOT=
PG_CERTS=
PG_RUN_USER=${PG_RUN_USER:-nobody}
PG_RUN_GROUP=     # PG_RUN_USER's group, when the test is root
if [ "$EUID" = 0 ]; then
    PG_RUN_GROUP=$(id -g "$PG_RUN_USER" 2>/dev/null) || fail "PG_RUN_USER $PG_RUN_USER does not exist"
fi
PG_SERVERS=()     # every NAME pg_start_primary or pg_start_standby made
# A test's connection settings are its own: none from the environment.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE \
    PGSSLMODE PGSSLCERT PGSSLKEY PGSSLROOTCERT PGSSLCRL PGTARGETSESSIONATTRS PGOPTIONS PGCONNECT_TIMEOUT

# pg_bin: prints the directory of the PostgreSQL server programs (PG_BIN when set, else
# the highest version under /usr/lib/postgresql); fails the test when there is none.
pg_bin() {
    local d best=
    if [ -n "${PG_BIN:-}" ]; then
        [ -x "$PG_BIN/pg_ctl" ] || fail "PG_BIN=$PG_BIN has no pg_ctl"
        echo "$PG_BIN"
        return 0
    fi
    best=$(for d in /usr/lib/postgresql/*/bin; do
               [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ] && echo "$d"
           done | sort -t/ -k5,5n | tail -n 1)
    [ -n "$best" ] || fail "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl):" \
        "make deps installs the package postgresql (TEST_PACKAGES)"
    echo "$best"
}
PG_BIN=$(pg_bin) || exit 1

# pg_as COMMAND...: runs COMMAND as the user the servers run as (PG_RUN_USER when the
# test is root, else the test's user), in PG_ROOT (the test's dir may be closed to it).
pg_as() {
    if [ "$EUID" = 0 ]; then
        (cd "${PG_ROOT:-/}" && setpriv --reuid="$PG_RUN_USER" --regid="$PG_RUN_GROUP" \
            --clear-groups -- env HOME="${PG_ROOT:-/}" "$@")
    else
        (cd "${PG_ROOT:-/}" && "$@")
    fi
}

# pg_root: makes PG_ROOT once (owned by the servers' user when the test is root), in
# PG_TMP: /dev/shm when it has 1 GiB free (initdb and base backups take seconds on a
# busy disk, tenths on tmpfs), else /tmp.
pg_root() {
    local tmp=${PG_TMP:-}
    [ -z "$PG_ROOT" ] || return 0
    if [ -z "$tmp" ]; then
        tmp=/tmp
        if [ -d /dev/shm ] && [ -w /dev/shm ] &&
            [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -ge 1048576 ]; then
            tmp=/dev/shm
        fi
    fi
    PG_ROOT=$(mktemp -d "$tmp/ktlstun-pg.XXXXXX")
    pg_own "$PG_ROOT"
}

# pg_name NAME: fails unless NAME can be part of a variable name.
pg_name() {
    [[ $1 =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || fail "pg_lib: server name '$1' is not letters, digits and _"
}

# pg_var KIND NAME: the value of PG_KIND_NAME (KIND PORT, SOCKET_DIR or DATA); fails the
# test when NAME was never started.
pg_var() {
    local var="PG_$1_$2"
    [ -n "${!var:-}" ] || fail "pg_lib: no server named '$2'"
    echo "${!var}"
}

# pg_client_cert DIR CN: DIR/CN.crt and DIR/CN.key (mode 0600), a client certificate
# with CN (the database user it logs in as) signed by the CA pg_make_certs made in DIR.
pg_client_cert() {
    local dir=$1 cn=$2
    (
        umask 077
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$cn.key" &&
            openssl req -new -key "$dir/$cn.key" -subj "/CN=$cn" -out "$dir/$cn.csr" &&
            openssl x509 -req -in "$dir/$cn.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
                -days 2 -sha256 -extfile "$dir/ext.cnf" -extensions client -out "$dir/$cn.crt"
    ) >"$dir/$cn.log" 2>&1 || fail "could not make the client certificate $cn in $dir: $(cat "$dir/$cn.log")"
}

# pg_make_certs DIR: a CA of its own (DIR/ca.pem, DIR/ca.key), the servers' certificate
# DIR/server.crt (SAN DNS:localhost, IP:127.0.0.1) and the client certificates
# DIR/ktlstun.crt (the gateways' user) and DIR/replicator.crt (the standbys'); keys
# DIR/NAME.key, mode 0600 (libpq refuses a key others may read). Sets PG_CERTS=DIR.
pg_make_certs() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/ext.cnf" <<'EOF'
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
    (
        umask 077
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" &&
            openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=ktlstun state store test CA" -days 2 \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
                -out "$dir/ca.pem" &&
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/server.key" &&
            openssl req -new -key "$dir/server.key" -subj "/CN=localhost" -out "$dir/server.csr" &&
            openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
                -days 2 -sha256 -extfile "$dir/ext.cnf" -extensions server -out "$dir/server.crt"
    ) >"$dir/ca.log" 2>&1 || fail "could not make the test CA and server certificate in $dir: $(cat "$dir/ca.log")"
    chmod 0644 "$dir/ca.pem"
    pg_client_cert "$dir" ktlstun
    pg_client_cert "$dir" replicator
    PG_CERTS=$(cd "$dir" && pwd)
}

# pg_own PATH...: PATHs (recursively) belong to the servers' user when the test is root.
pg_own() {
    [ "$EUID" != 0 ] || chown -R "$PG_RUN_USER:$PG_RUN_GROUP" "$@"
}

# pg_server_dir NAME: makes PG_ROOT/NAME, the servers' user's, for a new server NAME.
pg_server_dir() {
    pg_name "$1"
    pg_root
    [ ! -e "$PG_ROOT/$1" ] || fail "pg_lib: a server named '$1' exists already"
    mkdir "$PG_ROOT/$1"
    pg_own "$PG_ROOT/$1"
}

# pg_tls NAME FILE...: copies FILEs (names in PG_CERTS) into PG_ROOT/NAME/tls, mode
# 0600 and the servers' user's: PostgreSQL and libpq want a key owned by the user that
# reads it (or root) and closed to others.
pg_tls() {
    local name=$1 f
    shift
    mkdir -p "$PG_ROOT/$name/tls"
    for f in "$@"; do
        install -m 0600 "$PG_CERTS/$f" "$PG_ROOT/$name/tls/$f"
    done
    pg_own "$PG_ROOT/$name/tls"
}

# pg_settings NAME PORT: the settings block appended to NAME's postgresql.conf (the
# last value of a setting wins, so a standby's block overrides what its base backup
# brought from the primary).
pg_settings() {
    local dir="$PG_ROOT/$1"
    cat <<EOF

# ---- pg_lib.sh: server $1
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$dir'
ssl = on
ssl_cert_file = '$dir/tls/server.crt'
ssl_key_file = '$dir/tls/server.key'
ssl_ca_file = '$dir/tls/ca.pem'
fsync = off
wal_level = replica
max_wal_senders = 4
hot_standby = on
log_connections = on
log_line_prefix = '%m [%p] %q%u@%d '
shared_buffers = 16MB
max_connections = 50
EOF
}

# pg_hba: the only ways in: the test's psql as postgres on the unix socket, and TLS with
# a client certificate whose CN is the user, for sessions and replication alike.
pg_hba() {
    cat <<'EOF'
# pg_lib.sh: TLS with a client certificate (CN = user) or the local superuser; nothing else.
local     all          postgres                 trust
hostssl   all          all       127.0.0.1/32   cert
hostssl   replication  all       127.0.0.1/32   cert
EOF
}

# pg_register NAME PORT: records NAME's port, socket dir and data dir (PG_PORT_NAME,
# PG_SOCKET_DIR_NAME, PG_DATA_NAME, exported) and that cleanup must stop it.
pg_register() {
    export "PG_PORT_$1=$2" "PG_SOCKET_DIR_$1=$PG_ROOT/$1" "PG_DATA_$1=$PG_ROOT/$1/data"
    PG_SERVERS+=("$1")
    DAEMON_LOGS+=("$PG_ROOT/$1/postgres.log")
}

# pg_start NAME: starts NAME's server (again) on its data dir and waits until it accepts
# connections (pg_ctl -w); its log is PG_ROOT/NAME/postgres.log.
pg_start() {
    local data
    data=$(pg_var DATA "$1")
    pg_as "$PG_BIN/pg_ctl" start -w -t "$(scale 30)" -D "$data" -l "$PG_ROOT/$1/postgres.log" >/dev/null ||
        fail "PostgreSQL $1 did not start: $(tail -n 20 "$PG_ROOT/$1/postgres.log" 2>/dev/null)"
}

# pg_stop NAME [MODE]: stops NAME's server with pg_ctl stop -m MODE (fast unless given,
# or immediate) and waits until it is gone.
pg_stop() {
    local data
    data=$(pg_var DATA "$1")
    pg_as "$PG_BIN/pg_ctl" stop -w -t "$(scale 30)" -m "${2:-fast}" -D "$data" >/dev/null ||
        fail "PostgreSQL $1 did not stop (-m ${2:-fast})"
}

# pg_start_primary NAME: a new cluster NAME (initdb as the servers' user, superuser
# postgres, every method "reject" until pg_hba replaces them) on 127.0.0.1 at a free
# port, started; with the role ktlstun (LOGIN) owning the database ktlstun, and the
# role replicator (LOGIN REPLICATION) for standbys. Makes the certificates first when
# pg_make_certs has not run ($TEST_DIR/pg-certs).
pg_start_primary() {
    local name=$1 port dir
    pg_server_dir "$name"
    [ -n "$PG_CERTS" ] || pg_make_certs "$TEST_DIR/pg-certs"
    port=$(free_port)
    dir="$PG_ROOT/$name"
    pg_as "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=reject --no-sync --no-instructions \
        -E UTF8 --locale=C >"$TEST_DIR/initdb-$name.log" 2>&1 ||
        fail "initdb for $name failed: $(tail -n 20 "$TEST_DIR/initdb-$name.log")"
    pg_tls "$name" server.crt server.key ca.pem
    pg_settings "$name" "$port" | pg_as tee -a "$dir/data/postgresql.conf" >/dev/null
    pg_hba | pg_as tee "$dir/data/pg_hba.conf" >/dev/null
    pg_register "$name" "$port"
    pg_start "$name"
    PG_PSQL_DB=postgres pg_psql "$name" "CREATE ROLE ktlstun LOGIN" "CREATE DATABASE ktlstun OWNER ktlstun" \
        "CREATE ROLE replicator LOGIN REPLICATION" >/dev/null
}

# pg_start_standby NAME PRIMARY: a hot standby NAME of the running PRIMARY: a base
# backup taken over TLS as replicator with its client certificate (pg_basebackup -R
# writes the same connection as primary_conninfo), its own free port and socket,
# started; pg_wait_replicated tells when it has caught up.
pg_start_standby() {
    local name=$1 primary=$2 port dir pport conn
    pport=$(pg_var PORT "$primary")
    pg_server_dir "$name"
    port=$(free_port)
    dir="$PG_ROOT/$name"
    pg_tls "$name" server.crt server.key ca.pem replicator.crt replicator.key
    conn="host=127.0.0.1 port=$pport user=replicator sslmode=verify-full sslrootcert=$dir/tls/ca.pem"
    conn+=" sslcert=$dir/tls/replicator.crt sslkey=$dir/tls/replicator.key connect_timeout=5"
    conn+=" application_name=$name"
    pg_as "$PG_BIN/pg_basebackup" -D "$dir/data" -R -X stream -c fast --no-sync -d "$conn" \
        >"$TEST_DIR/basebackup-$name.log" 2>&1 ||
        fail "pg_basebackup of $primary for $name failed: $(tail -n 20 "$TEST_DIR/basebackup-$name.log")"
    pg_settings "$name" "$port" | pg_as tee -a "$dir/data/postgresql.conf" >/dev/null
    pg_register "$name" "$port"
    pg_start "$name"
}

# pg_wait_replicated NAME PRIMARY: waits (10 s, scaled) until standby NAME has replayed
# PRIMARY's WAL up to PRIMARY's LSN at the time of the call.
pg_wait_replicated() {
    local lsn i
    lsn=$(pg_psql "$2" "SELECT pg_current_wal_lsn()")
    for ((i = 0; i < $(scale 10) * 20; i++)); do
        [ "$(pg_psql "$1" "SELECT coalesce(pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn, false)")" = t ] && return 0
        sleep 0.05
    done
    fail "standby $1 has not replayed $2's WAL up to $lsn"
}

# pg_promote NAME: promotes standby NAME and waits until it is a primary (pg_ctl
# promote -w).
pg_promote() {
    local data
    data=$(pg_var DATA "$1")
    pg_as "$PG_BIN/pg_ctl" promote -w -t "$(scale 30)" -D "$data" >/dev/null || fail "promoting $1 failed"
}

# pg_psql NAME SQL...: runs each SQL (one psql -c each, so each is its own transaction)
# as postgres over NAME's unix socket, in database PG_PSQL_DB (default ktlstun);
# prints the tuples only, unaligned, '|' between columns. Stops at the first error
# with psql's status (the ERR trap fails the test unless the caller checks it).
pg_psql() {
    local name=$1 port sock db=${PG_PSQL_DB:-ktlstun} sql
    local -a args=()
    port=$(pg_var PORT "$name")
    sock=$(pg_var SOCKET_DIR "$name")
    shift
    for sql in "$@"; do
        args+=(-c "$sql")
    done
    "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d "$db" "${args[@]}"
}

# pg_conninfo NAME...: the libpq connection string a gateway uses to reach the servers
# NAME... as ktlstun: TLS verified against the test CA for 127.0.0.1, the ktlstun
# client certificate, connect_timeout=2; with several NAMEs, one host and port each in
# order and target_session_attrs=read-write (libpq takes the first that accepts writes).
pg_conninfo() {
    local name hosts='' ports='' extra=''
    for name in "$@"; do
        hosts+=${hosts:+,}127.0.0.1
        ports+=${ports:+,}$(pg_var PORT "$name")
    done
    if [ $# -gt 1 ]; then
        extra=" target_session_attrs=read-write"
    fi
    echo "host=$hosts port=$ports dbname=ktlstun user=ktlstun sslmode=verify-full" \
        "sslrootcert=$PG_CERTS/ca.pem sslcert=$PG_CERTS/ktlstun.crt sslkey=$PG_CERTS/ktlstun.key" \
        "connect_timeout=2$extra"
}

# pg_allow_local NAME OS_USER: lets processes of OS_USER in as ktlstun (database
# ktlstun) over NAME's unix socket, by peer authentication mapped to ktlstun, for
# gateways that cannot reach 127.0.0.1 (in a network namespace). PG_ROOT becomes
# traversable (o+x) so that a process without CAP_DAC_OVERRIDE (a root-owned helper
# that gave up its capabilities) reaches the socket; the servers' own dirs keep their
# modes. Reloads NAME and returns once OS_USER, without capabilities, gets in.
pg_allow_local() {
    local name=$1 user=$2 data port sock uid gid i
    data=$(pg_var DATA "$name")
    port=$(pg_var PORT "$name")
    sock=$(pg_var SOCKET_DIR "$name")
    uid=$(id -u "$user") || fail "pg_lib: no user $user"
    gid=$(id -g "$user")
    echo "pg_lib_local  $user  ktlstun" | pg_as tee -a "$data/pg_ident.conf" >/dev/null
    echo "local  ktlstun  ktlstun  peer map=pg_lib_local" | pg_as tee -a "$data/pg_hba.conf" >/dev/null
    chmod o+x "$PG_ROOT"
    pg_as "$PG_BIN/pg_ctl" reload -D "$data" >/dev/null || fail "reloading PostgreSQL $name failed"
    # The reload is asynchronous: wait until the new rules let the user in.
    for ((i = 0; i < $(scale 10) * 20; i++)); do
        setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all -- \
            "$PG_BIN/psql" -XAtq -h "$sock" -p "$port" -U ktlstun -d ktlstun -c "SELECT 1" \
            >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    fail "PostgreSQL $name does not let $user in as ktlstun over its unix socket $sock"
}

# pg_cleanup: run from the EXIT trap; idempotent. Stops every server still running
# (pg_ctl stop -m immediate, then SIGKILL to a postmaster that stays), copies their
# logs into TEST_DIR and removes PG_ROOT.
pg_cleanup() {
    local name data pid
    for name in "${PG_SERVERS[@]}"; do
        data="$PG_ROOT/$name/data"
        if [ -f "$data/postmaster.pid" ]; then
            pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
            if ! pg_as "$PG_BIN/pg_ctl" stop -w -t 5 -m immediate -D "$data" >/dev/null 2>&1 &&
                [ -n "$pid" ]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        cp "$PG_ROOT/$name/postgres.log" "$TEST_DIR/postgres-$name.log" 2>/dev/null || true
    done
    PG_SERVERS=()
    if [ -n "$PG_ROOT" ]; then
        rm -rf "$PG_ROOT"
        PG_ROOT=
    fi
}

# haproxy_tcp_start [--check] NAME LISTEN_PORT BACKEND_PORT...: HAProxy in TCP mode on
# 127.0.0.1:LISTEN_PORT, round robin over 127.0.0.1:BACKEND_PORT... (with --check,
# health-checked every 200 ms, out after one failed check); in the foreground under
# spawn, config, log and pid file in $TEST_DIR/haproxy-NAME/. Returns once it listens;
# sets HAPROXY_PID.
haproxy_tcp_start() {
    local check='' name listen port i=0 dir
    if [ "$1" = --check ]; then
        check=" check inter 200ms fall 1 rise 1"
        shift
    fi
    name=$1 listen=$2
    shift 2
    command -v haproxy >/dev/null || fail "haproxy is not installed (TEST_PACKAGES has haproxy)"
    dir="$TEST_DIR/haproxy-$name"
    mkdir -p "$dir"
    {
        echo "global"
        echo "    log stdout format raw local0"
        echo "defaults"
        echo "    mode tcp"
        echo "    log global"
        echo "    option tcplog"
        echo "    timeout connect 2s"
        echo "    timeout client 30s"
        echo "    timeout server 30s"
        echo "listen $name"
        echo "    bind 127.0.0.1:$listen"
        echo "    balance roundrobin"
        for port in "$@"; do
            i=$((i + 1))
            echo "    server b$i 127.0.0.1:$port$check"
        done
    } >"$dir/haproxy.cfg"
    haproxy -c -q -f "$dir/haproxy.cfg" >"$dir/check.log" 2>&1 ||
        fail "haproxy $name: config refused: $(cat "$dir/check.log")"
    spawn "$dir/haproxy.log" haproxy -db -f "$dir/haproxy.cfg"
    HAPROXY_PID=$SPAWN_PID
    echo "$HAPROXY_PID" >"$dir/haproxy.pid"
    DAEMON_LOGS+=("$dir/haproxy.log")
    wait_listening "$listen" || fail "haproxy $name did not listen on $listen: $(cat "$dir/haproxy.log")"
}

# haproxy_tcp_stop NAME: ends the HAProxy haproxy_tcp_start NAME started (SIGTERM, then
# SIGKILL after 5 s, scaled).
haproxy_tcp_stop() {
    local pid
    pid=$(cat "$TEST_DIR/haproxy-$1/haproxy.pid" 2>/dev/null) || fail "no haproxy named $1"
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" "$(scale 5)" || true
    rm -f "$TEST_DIR/haproxy-$1/haproxy.pid"
}

# lib.sh's cleanup reads $? first thing: hand it the test's status untouched. A test
# killed by run.sh's timeout (SIGTERM) exits through the same trap: the servers run in
# a session of their own (pg_ctl), beyond the process group run.sh kills.
trap 'pg_rc=$?; pg_cleanup; (exit $pg_rc); cleanup' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
