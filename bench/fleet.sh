#!/usr/bin/env bash
# make bench-fleet: what a shared PostgreSQL state store costs against the file store,
# in the same run, on loopback (root: it makes a local user for the logins).
#
#   bench/fleet.sh BUILD_DIR [--quick]
#
# For each store, a gated tunnel (second_factor = pam, the shipped PAM stack with
# pam_oath, HOTP) in front of an echo backend:
#   - file: one gateway, grants in its state_dir (state_store = file, the default);
#   - postgresql: two gateways sharing a PostgreSQL server of the run's own (a temp
#     dir, 127.0.0.1 and a unix socket only, TLS with client certificates, run as an
#     unprivileged user), the second one applying the grants the first publishes.
# Measured on the first gateway, the stores taking turns, REPS times each:
#   1. login latency: LOGINS `ktlstun login` runs with correct HOTP codes, p50 and p99;
#   2. data connections of a user holding a grant: bench/handshake_load, 4 in flight,
#      for SECONDS_HS seconds: handshakes/s and p50/p99 of one connection (connect,
#      full mTLS handshake, one byte echoed).
# Figures are medians over the repetitions; the table gives PostgreSQL ÷ file. The
# machine may be shared: the ratios are the point, not the absolute figures.
# --quick: 1 repetition, 10 logins, 1 s of handshakes (for trying the harness).
# Results: bench/results/fleet.md. Everything it starts, the user it makes and its
# temp dirs are removed at exit, failed or not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${1:?usage: bench/fleet.sh BUILD_DIR [--quick]}
shift
build=$(cd "$build" && pwd)
REPS=3 LOGINS=40 SECONDS_HS=5 QUICK=0
if [ "${1:-}" = --quick ]; then
    REPS=1 LOGINS=10 SECONDS_HS=1 QUICK=1
elif [ -n "${1:-}" ]; then
    echo "usage: bench/fleet.sh BUILD_DIR [--quick]" >&2
    exit 2
fi

[ "$(id -u)" = 0 ] || { echo "bench: the fleet figures need root (a local user for the logins)" >&2; exit 1; }
for f in ktlstund ktlstun tools/echo_server bench/handshake_load; do
    [ -x "$build/$f" ] || { echo "bench: $build/$f is missing (run make first)" >&2; exit 1; }
done
for cmd in openssl oathtool useradd setpriv python3; do
    command -v "$cmd" >/dev/null || { echo "bench: $cmd is not installed (make bench-fleet installs it)" >&2; exit 1; }
done

started=$(date +%s)
load_at_start=$(cut -d' ' -f1 /proc/loadavg)
work=$(mktemp -d /tmp/ktlstun-fleetbench.XXXXXX)
export KTLSTUND="$build/ktlstund" KTLSTUN="$build/ktlstun" TOOLS="$build/tools" SLOW=1
export PKI="$work/pki" TEST_DIR="$work/run"
mkdir -p "$TEST_DIR"
# The PKI takes a while on a busy machine: in a process group of its own, so that an
# interrupt ends all of it before its dir is removed.
setsid "$repo/tests/integration/pki.sh" "$PKI" >"$work/pki.out" 2>&1 </dev/null &
pki_pid=$!
pki_stop() {
    local i
    kill -TERM -- "-$pki_pid" 2>/dev/null || true
    wait "$pki_pid" 2>/dev/null || true
    # Its subshells outlive it by a moment and would write into a removed dir.
    for ((i = 0; i < 50; i++)); do
        pgrep -g "$pki_pid" >/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pki_pid" 2>/dev/null || true
    rm -rf "$work"
    exit 143
}
trap pki_stop TERM INT
if ! wait "$pki_pid"; then
    echo "bench: making the test PKI failed: $(tail -n 5 "$work/pki.out")" >&2
    rm -rf "$work"
    exit 1
fi
trap - TERM INT

# The integration tests' recipes: local users, pam_oath enrolment, gated tunnels,
# PostgreSQL servers. Their EXIT traps are replaced by bench_exit below.
# shellcheck source=tests/integration/second_factor/lib.sh
source "$repo/tests/integration/second_factor/lib.sh"
# shellcheck source=tests/integration/pg_lib.sh
source "$repo/tests/integration/pg_lib.sh"

# Whatever way the run ends: the daemons first (their PAM helpers run for the user),
# then the user, the PostgreSQL server and every temp dir.
bench_exit() {
    local rc=$? p
    trap - ERR EXIT
    term_started
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    sf_cleanup
    pg_cleanup
    cd /
    rm -rf "$work"
    exit "$rc"
}
trap bench_exit EXIT

note "setting up: test certificates, a PostgreSQL server, a local user enrolled for HOTP"
# Both stores durable on the same disk: the file store writes its state with fsync in
# $work (under /tmp), so the server's data dir goes there too and gets back the fsync
# that pg_lib.sh turns off for the tests (tmpfs, no flush would flatter PostgreSQL).
PG_TMP=$(dirname "$work")
pg_start_primary store
PG_PSQL_DB=postgres pg_psql store "ALTER SYSTEM SET fsync = on" "SELECT pg_reload_conf()" >/dev/null
for ((i = 0; i < 50; i++)); do
    [ "$(pg_psql store "SHOW fsync")" = on ] && break
    sleep 0.1
done
[ "$(pg_psql store "SHOW fsync")" = on ] || fail "PostgreSQL did not take fsync = on"
store_conninfo=$(pg_conninfo store)
sf_make_ca
sf_cert alice
sf_user alice
sf_pam_dir "$TEST_DIR/pam.d" "$TEST_DIR/oath"
sf_enrol "$TEST_DIR/oath" "$SF_USER" HOTP
printf 'cn:alice %s\n' "$SF_USER" >"$TEST_DIR/users.map"
echo_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
hotp_counter=0    # pam_oath remembers the last code: every login takes the next one

# gateway_conf STORE NAME: $TEST_DIR/STORE-NAME.ini, a gateway with the gated tunnel
# [vpn] in front of the echo backend and alice's client tunnel [c-alice] to it; fresh
# state and runtime dirs. Sets VPN_PORT.
gateway_conf() {
    local store=$1 name=$2 dir="$TEST_DIR/$1-$2" client_port
    local -a store_keys=()
    VPN_PORT=$(free_port) client_port=$(free_port)
    rm -rf "$dir"
    mkdir -p "$dir/state" "$dir/run"
    [ "$store" = file ] || store_keys=("state_store = $store_conninfo" "gateway_name = gw-$name")
    {
        ini_section global "log_level = info" "state_dir = $dir/state" "runtime_dir = $dir/run" \
            "workers = 2" "shutdown_timeout = 5" "${store_keys[@]}"
        # One source (127.0.0.1) opens every connection: the per-source rate limit
        # would measure itself.
        sf_gated_tunnel vpn "$VPN_PORT" "$echo_port" "handshake_rate_per_source = 0"
        sf_client_tunnel c-alice "$client_port" "$VPN_PORT" alice
    } >"$TEST_DIR/$store-$name.ini"
}

# one_round STORE REP: starts the store's gateways, measures, stops them; appends
# "STORE REP FIGURE VALUE" lines to $TEST_DIR/raw.
one_round() {
    local store=$1 rep=$2 conf pid_a pid_b='' port_a i t0 t1 out line kv
    gateway_conf "$store" a
    conf="$TEST_DIR/$store-a.ini" port_a=$VPN_PORT
    start_ktlstund "$conf" "$TEST_DIR/$store-a.log"
    pid_a=$KTLSTUND_PID
    if [ "$store" = postgresql ]; then
        gateway_conf "$store" b
        start_ktlstund "$TEST_DIR/$store-b.ini" "$TEST_DIR/$store-b.log"
        pid_b=$KTLSTUND_PID
        for i in a b; do
            wait_for_log "$TEST_DIR/$store-$i.log" "state store: connected to .* as gateway gw-$i" 10 1 ||
                fail "gateway $i did not connect to the state store"
        done
    fi

    : >"$TEST_DIR/login-ms"
    for ((i = 0; i < LOGINS; i++)); do
        t0=$(date +%s%N)
        sf_login "$conf" c-alice "$(sf_hotp "$hotp_counter")" "$TEST_DIR/login.out"
        t1=$(date +%s%N)
        hotp_counter=$((hotp_counter + 1))
        if [ "$SF_RC" != 0 ] || ! grep -qF "Access granted" "$TEST_DIR/login.out"; then
            fail "$store: login $i exited $SF_RC: $(cat "$TEST_DIR/login.out")"
        fi
        echo $(((t1 - t0) / 1000)) >>"$TEST_DIR/login-ms"    # microseconds
    done
    if [ -n "$pid_b" ]; then
        wait_for_log "$TEST_DIR/$store-b.log" 'state store: alice logged in through gateway gw-a' 10 1 ||
            fail "the second gateway never applied alice's grant"
    fi
    sort -n "$TEST_DIR/login-ms" | awk -v store="$store" -v rep="$rep" '
        { v[NR] = $1 }
        END {
            p50 = int((NR * 50 + 99) / 100); p99 = int((NR * 99 + 99) / 100)
            printf "%s %s login_p50_ms %.3f\n%s %s login_p99_ms %.3f\n",
                store, rep, v[p50] / 1000, store, rep, v[p99] / 1000
        }' >>"$TEST_DIR/raw"

    out=$("$build/bench/handshake_load" --connect "127.0.0.1:$port_a" --cert "$TEST_DIR/alice.pem" \
        --key "$TEST_DIR/user.key" --ca "$PKI/ca.pem" --server-name localhost \
        --concurrency 4 --duration "$SECONDS_HS" 2>"$TEST_DIR/hl.err") ||
        fail "$store: handshake_load failed: $out $(head -n 5 "$TEST_DIR/hl.err")"
    line=$(grep '^handshake_load:' <<<"$out")
    for kv in rate p50_ms p99_ms; do
        [[ $line =~ (^| )$kv=([0-9.]+) ]] || fail "handshake_load printed no $kv: $line"
        echo "$store $rep hs_$kv ${BASH_REMATCH[2]}" >>"$TEST_DIR/raw"
    done
    note "$store, round $rep: $(grep "^$store $rep " "$TEST_DIR/raw" | cut -d' ' -f3- | paste -sd' ')"

    stop_ktlstund "$pid_a"
    [ -z "$pid_b" ] || stop_ktlstund "$pid_b"
}

: >"$TEST_DIR/raw"
for ((rep = 1; rep <= REPS; rep++)); do
    # Taking turns, so that a noisy neighbour spreads over both stores.
    one_round file "$rep"
    one_round postgresql "$rep"
done

elapsed=$(($(date +%s) - started))
versions="$("$KTLSTUN" version), PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }')"
versions+=", $(openssl version | awk '{ print $1, $2 }')"
ktls="kernel TLS in use where offered"
if grep -q 'kernel TLS unavailable' "$TEST_DIR/file-a.log"; then
    ktls="no kernel TLS on this kernel: the gateways relayed in userspace"
fi
machine="$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r)"
python3 - "$TEST_DIR/raw" "$here/results/fleet.md" "$REPS" "$LOGINS" "$SECONDS_HS" "$QUICK" \
    "$elapsed" "$load_at_start" "$versions" "$machine" "$ktls" <<'EOF'
import statistics, sys, time
raw, out, reps, logins, seconds, quick, elapsed, load, versions, machine, ktls = sys.argv[1:]
runs = {}
for line in open(raw):
    store, rep, figure, value = line.split()
    runs.setdefault((store, figure), []).append(float(value))
rows = [("Login p50 (ms)", "login_p50_ms", "lower"), ("Login p99 (ms)", "login_p99_ms", "lower"),
        ("Gated handshakes/s, 4 in flight", "hs_rate", "higher"),
        ("Gated connection p50 (ms)", "hs_p50_ms", "lower"), ("Gated connection p99 (ms)", "hs_p99_ms", "lower")]
def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"
table = ["| Figure | file | PostgreSQL | PostgreSQL ÷ file |", "|---|---|---|---|"]
for title, key, better in rows:
    f, p = statistics.median(runs[("file", key)]), statistics.median(runs[("postgresql", key)])
    ratio = f"{p / f:.2f}×" if f > 0 else "–"
    table.append(f"| {title} ({better} is better) | {fmt(f)} | {fmt(p)} | {ratio} |")
each = ["| Figure | store | " + " | ".join(f"run {i + 1}" for i in range(int(reps))) + " |",
        "|---|---|" + "---|" * int(reps)]
for title, key, _ in rows:
    for store in ("file", "postgresql"):
        each.append(f"| {title} | {store} | " + " | ".join(fmt(v) for v in runs[(store, key)]) + " |")
stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
md = [f"# ktlstun second-factor state: PostgreSQL store against the file store — {stamp}", "",
      f"Machine: {machine}; {ktls}.  ", f"Versions: {versions}.  ",
      f"Gated tunnel (second_factor = pam, pam_oath HOTP, handshake_rate_per_source = 0) in front of "
      f"an echo backend, on loopback. "
      f"file: one gateway, state_store = file. PostgreSQL: two gateways sharing a local server "
      f"(TLS, client certificates, fsync on, its data on the same disk as the file store's state), "
      f"measured on the one the logins go through. "
      f"Logins: {logins} `ktlstun login` runs with correct HOTP codes, one after another. "
      f"Gated connections: bench/tools/handshake_load with the user's certificate while she holds "
      f"a grant, 4 in flight for {seconds} s; one connection = connect, full mTLS handshake, one byte echoed. "
      f"Medians of {reps} runs, the stores taking turns. The run took {elapsed} s; "
      f"load average when it started: {load}.", ""]
if quick == "1":
    md += ["**--quick run: for trying the harness, not for figures.**", ""]
md += table + ["", "Every run:", ""] + each + [""]
open(out, "w").write("\n".join(md))
print("\n".join(table))
print(f"(written to {out})")
EOF
