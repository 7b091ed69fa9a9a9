#!/usr/bin/env bash
# More reloads than the supervisor once had room to remember, each leaving a worker
# that drains a live connection: every old generation stays valid until its last
# worker is gone (under ASan a generation freed too early is a use after free), and
# the daemon keeps serving.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

RELOADS=70
port=$(free_port)
echo_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section "workers = 1" "shutdown_timeout = 30"
    server_tunnel echo "$port" "$echo_port"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

# One client process makes the reloads and holds the connections: a SIGHUP, the
# outcome in the log (a refusal fails), then a connection through the tunnel that
# echoes a line and stays open, so that it is the new generation's worker that holds it
# (openssl s_client and grep run per reload took most of this test's time).
cat >"$TEST_DIR/holder.py" <<'PY'
import os, re, signal, socket, ssl, sys, time
port, pid, log, reloads, limit = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ca, cert, key = sys.argv[6:9]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
outcome = re.compile(r"notice: reloaded configuration|error: reload refused")
held = []

def fail(why):
    print("FAIL " + why, flush=True)
    sys.exit(1)

def alive():
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

def outcomes():
    with open(log, errors="replace") as f:
        return [line for line in f if outcome.search(line)]

def hold(i):
    token = b"held-%d\n" % i
    try:
        tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=limit),
                              server_hostname="localhost")
        tls.sendall(token)
        got = b""
        while not got.endswith(b"\n"):
            chunk = tls.recv(64)
            if not chunk:
                break
            got += chunk
    except (OSError, ssl.SSLError) as e:
        fail("connection %d did not open: %s" % (i, e))
    if got != token:
        fail("connection %d echoed %r" % (i, got))
    held.append(tls)

hold(0)
for i in range(1, reloads + 1):
    before = len(outcomes())
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + limit
    while len(outcomes()) <= before:
        if not alive():
            fail("ktlstund died after SIGHUP %d" % i)
        if time.monotonic() > deadline:
            fail("no reload outcome logged after SIGHUP %d" % i)
        time.sleep(0.01)
    if "reload refused" in outcomes()[-1]:
        fail("reload %d refused" % i)
    hold(i)
print("held %d" % len(held), flush=True)
sys.stdin.read()   # the connections stay open until the test closes this input
PY

note "$RELOADS reloads, each generation's worker left draining a live connection"
spawn_fed holder "exec python3 '$TEST_DIR/holder.py' $port $pid '$log' $RELOADS $(scale 10) \
    '$PKI/ca.pem' '$PKI/alice.pem' '$PKI/alice.key'"
holder=$SPAWN_PID
wait_for_log "$TEST_DIR/holder.out" "^held $((RELOADS + 1))\$" $((RELOADS * $(scale 10))) 1 "$holder" ||
    fail "the reloads and held connections did not all succeed: $(cat "$TEST_DIR/holder.out")"
alive "$pid" || fail "ktlstund died during the reloads"

note "the old workers finish as their connections end; the daemon keeps serving"
exec {FED_FD}>&-
wait_exit "$holder" "$(scale 10)" || fail "the holder did not exit: $(cat "$TEST_DIR/holder.out")"
wait_for_log "$log" "info: audit tunnel=echo " "$(scale 30)" $((RELOADS + 1)) "$pid" ||
    fail "not every held connection ended with an audit line"
# Workers keep the name ktlstund; the PAM helper and its launcher have their own.
workers() { pgrep -c -P "$pid" -x ktlstund || true; }
for ((i = 0; i < 100; i++)); do
    [ "$(workers)" -le 1 ] && break   # the current generation's worker
    sleep 0.1
done
[ "$(workers)" -le 1 ] || fail "old workers did not exit: $(pgrep -a -P "$pid" -x ktlstund | head)"
alive "$pid" || fail "ktlstund died while its old workers exited"
client_args alice
tls_echo "127.0.0.1:$port" after-the-reloads "$TEST_DIR/after.out" "${CLIENT_ARGS[@]}" ||
    fail "no echo after the reloads: $(cat "$TEST_DIR/after.out")"
stop_ktlstund "$pid"
