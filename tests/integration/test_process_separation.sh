#!/usr/bin/env bash
# The workers and the PAM helper run as two users, as under the shipped unit: ktlstund
# starts as the workers' user with only CAP_SETUID and CAP_SETGID (the unit's ambient
# capabilities), the helper becomes pam_user and every process ends with no
# capability. A process running as the workers' user then cannot read a one-time
# password secret, cannot write the lock state, is refused by the admin socket that
# `ktlstun unlock` uses (and `ktlstun unlock` does not believe a worker that takes
# that socket's path), and a worker's view of the grants table is read-only (the
# unit test test_grants checks that mprotect() cannot make it writable).
#
# The users stand in for ktlstun and ktlstun-pam (sysusers.d/ktlstun.conf): made
# here, pam's in the workers' group as there, removed at exit; the files are laid
# out as tmpfiles.d/ktlstun.conf lays them out.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/lib.sh"

[ "$(id -u)" = 0 ] || fail "this test needs root (it makes users and starts ktlstund as one)"
for tool in oathtool useradd groupadd setpriv; do
    command -v "$tool" >/dev/null || fail "$tool is needed"
done
[ -n "$(find /lib /usr/lib -name pam_oath.so -path '*security*' 2>/dev/null | head -n 1)" ] ||
    fail "pam_oath.so is needed (libpam-oath)"

suffix=$(printf '%05d' $(($$ % 100000)))
wuser="ksep${suffix}w"   # the workers' user (ktlstun)
puser="ksep${suffix}p"   # the helper's user (ktlstun-pam)
person="ksep${suffix}a"  # the local account alice's certificate maps to
unit_root=$(mktemp -d /tmp/ktlstun-separation.XXXXXX)
remove_users() {
    local u
    stop_started_as "$wuser" "$puser"
    for u in "$person" "$puser" "$wuser"; do
        userdel "$u" >/dev/null 2>&1 || true
        groupdel "$u" >/dev/null 2>&1 || true
    done
    rm -rf "$unit_root"
}
trap 'rc=$?; remove_users; (exit $rc); cleanup' EXIT
groupadd "$wuser" || fail "cannot make group $wuser"
useradd -M -N -g "$wuser" -s /usr/sbin/nologin "$wuser" || fail "cannot make $wuser"
groupadd "$puser" || fail "cannot make group $puser"
useradd -M -N -g "$puser" -G "$wuser" -s /usr/sbin/nologin "$puser" || fail "cannot make $puser"
useradd -M -N -s /usr/sbin/nologin "$person" || fail "cannot make $person"
wuid=$(id -u "$wuser") puid=$(id -u "$puser")

# etc/ root:W 0750 (config, keys, users.map root:W 0640); etc/pam.d the shipped stack;
# etc/oath root:P 0770 with PERSON P:P 0600; state/ P 0700; run/ W 0750.
chmod 0755 "$unit_root"
etc="$unit_root/etc"
mkdir -p "$etc/oath" "$etc/pam.d" "$unit_root/state" "$unit_root/run"
for f in server.pem server.key alice.pem alice.key ca.pem; do
    cp "$PKI/$f" "$etc/$f"
done
secret=3132333435363738393031323334353637383930
sed "s|/etc/ktlstun/oath/|$etc/oath/|" "$repo/pam/ktlstun" >"$etc/pam.d/ktlstun"
echo "HOTP $person - $secret" >"$etc/oath/$person"
echo "cn:alice $person" >"$etc/users.map"
back_port=$(free_port) server_port=$(free_port) client_port=$(free_port)
start_echo "127.0.0.1:$back_port" "$TEST_DIR/echo.log"
conf="$etc/ktlstun.ini"
{
    global_section "state_dir = $unit_root/state" "runtime_dir = $unit_root/run" "pam_user = $puser"
    server_tunnel front "$server_port" "$back_port" "cert = server.pem" "key = server.key" "ca = ca.pem" \
        "allow_cn = alice" "second_factor = pam" "pam_confdir = pam.d" "user_map = file:users.map"
    client_tunnel back "$client_port" "$server_port" "cert = alice.pem" "key = alice.key" "ca = ca.pem"
} >"$conf"
chown -R "root:$wuser" "$etc"
chmod 0750 "$etc" "$etc/pam.d"
chmod 0640 "$etc"/*.pem "$etc"/*.key "$etc"/*.ini "$etc"/*.map
chmod 0644 "$etc/pam.d/ktlstun"
chown "root:$puser" "$etc/oath"
chmod 0770 "$etc/oath"
chown "$puser:$puser" "$etc/oath/$person" "$unit_root/state"
chmod 0600 "$etc/oath/$person"
chmod 0700 "$unit_root/state"
chown "$wuser:$wuser" "$unit_root/run"
chmod 0750 "$unit_root/run"

# As the unit starts it: User=W, AmbientCapabilities= and CapabilityBoundingSet=
# CAP_SETUID CAP_SETGID, NoNewPrivileges=, UMask=0077.
wrapper="$TEST_DIR/unit-like-ktlstund"
cat >"$wrapper" <<EOF
#!/bin/sh
umask 0077
exec setpriv --reuid=$wuser --regid=$wuser --init-groups --no-new-privs \
    --inh-caps=-all,+setuid,+setgid --ambient-caps=-all,+setuid,+setgid \
    --bounding-set=-all,+setuid,+setgid -- "$KTLSTUND" "\$@"
EOF
chmod +x "$wrapper"
log="$TEST_DIR/daemon.log"
KTLSTUND="$wrapper" start_ktlstund "$conf" "$log"
daemon=$KTLSTUND_PID

# status_field PID FIELD: the first value of FIELD: in /proc/PID/status.
status_field() { awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/status"; }
# uids PID: real, effective, saved and filesystem uid.
uids() { awk '$1 == "Uid:" { print $2 ":" $3 ":" $4 ":" $5 }' "/proc/$1/status"; }

note "who runs as whom, with which capabilities"
helper=$(pgrep -P "$daemon" -x ktlstund-pam)
spawner=$(pgrep -P "$daemon" -x ktlstund-spawn)
[ -n "$helper" ] || fail "no ktlstund-pam child of $daemon: $(pgrep -a -P "$daemon")"
[ -n "$spawner" ] || fail "no ktlstund-spawn child of $daemon: $(pgrep -a -P "$daemon")"
workers=$(workers_of "$conf")
[ "$(wc -l <<<"$workers")" = 2 ] || fail "expected 2 workers, got: $workers"
assert_eq "$(uids "$daemon")" "$wuid:$wuid:$wuid:$wuid" "the supervisor's uids"
for p in "$helper" "$spawner"; do
    assert_eq "$(uids "$p")" "$puid:$puid:$puid:$puid" "uids of $(cat "/proc/$p/comm") $p"
done
for w in $workers; do
    assert_eq "$(uids "$w")" "$wuid:$wuid:$wuid:$wuid" "worker $w uids"
done
for p in "$daemon" "$helper" "$spawner" $workers; do
    for set in CapEff CapPrm CapInh CapAmb; do
        assert_eq "$(status_field "$p" "$set")" 0000000000000000 "$set of $(cat "/proc/$p/comm") $p"
    done
done

note "the right code, then a wrong one: a grant, and a failure on record in the lock state"
login() {  # CODE: ktlstun login through [back], answering CODE
    "$KTLSTUN" login back -c "$conf" --answer-fd 3 3<<<"$1" >>"$TEST_DIR/login.out" 2>&1
}
login "$(oathtool -c 0 "$secret")" || fail "ktlstun login with the right code: $(tail -n 3 "$TEST_DIR/login.out")"
rc=0
login 000000 || rc=$?
assert_eq "$rc" 1 "ktlstun login with a wrong code"
state="$unit_root/state/lockout.state"
[ -f "$state" ] || fail "the helper wrote no lock state"
assert_eq "$(stat -c '%U %a' "$state")" "$puser 600" "owner and mode of the lock state"
assert_eq "$(stat -c '%U %a' "$etc/oath/$person")" "$puser 600" "owner and mode of the users file pam_oath rewrote"
plain_echo "127.0.0.1:$client_port" "through-the-gate" || fail "no echo through the gated tunnel"

note "as the workers' user: the OTP secret, the lock state and the admin socket are out of reach"
as_worker() { setpriv --reuid="$wuser" --regid="$wuser" --clear-groups -- "$@"; }
as_worker true || fail "cannot run a command as $wuser"
if as_worker cat "$etc/oath/$person" >"$TEST_DIR/stolen" 2>/dev/null; then
    fail "$wuser read the one-time password secret: $(cat "$TEST_DIR/stolen")"
fi
before=$(sha256sum <"$state")
if as_worker sh -c "echo 'front identity alice 0 0 0 0' >>'$state'" 2>/dev/null; then
    fail "$wuser wrote the lock state file"
fi
if as_worker sh -c "printf 'ktlstun-lockout 1\n' >'$state.new' && mv '$state.new' '$state'" 2>/dev/null; then
    fail "$wuser replaced the lock state file"
fi
assert_eq "$(sha256sum <"$state")" "$before" "the lock state after the attempts"
# The socket is the workers' user's file here (bound before the helper's drop), so a
# worker can connect: the helper's own check (SO_PEERCRED) must refuse it.
rc=0
as_worker "$KTLSTUN" unlock alice -c "$conf" >"$TEST_DIR/unlock-as-worker.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "$wuser unlocked through the admin socket: $(cat "$TEST_DIR/unlock-as-worker.out")"
assert_contains "$(cat "$TEST_DIR/unlock-as-worker.out")" "only root may change second-factor locks" \
    "the helper's answer to $wuser"
grep -q 'alice' "$state" || fail "alice's failure count left the state file: $(cat "$state")"
# Root still may.
"$KTLSTUN" unlock alice -c "$conf" >"$TEST_DIR/unlock.out" 2>&1 ||
    [ $? = 1 ] || fail "root's ktlstun unlock failed: $(cat "$TEST_DIR/unlock.out")"
assert_log "$TEST_DIR/unlock.out" "alice" "root's unlock answer"

note "a worker that takes the admin socket's path is not believed"
# /run/ktlstun is the workers' user's, so it can replace the socket; what it answers
# must not reach the administrator as the helper's word.
sock="$unit_root/run/second-factor.sock"
as_worker rm -f "$sock" || fail "$wuser could not remove $sock (then this check tests nothing)"
spawn "$TEST_DIR/fake-helper.out" setpriv --reuid="$wuser" --regid="$wuser" --clear-groups -- \
    socat "UNIX-LISTEN:$sock,type=5,fork" SYSTEM:"echo ok; echo unlocked alice"
for ((i = 0; i < 50 * SLOW; i++)); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "the fake helper did not listen: $(cat "$TEST_DIR/fake-helper.out")"
rc=0
"$KTLSTUN" unlock alice -c "$conf" >"$TEST_DIR/unlock-fake.out" 2>&1 || rc=$?
assert_eq "$rc" 2 "root's ktlstun unlock against a worker's socket"
assert_contains "$(cat "$TEST_DIR/unlock-fake.out")" "neither root nor the PAM helper's user" \
    "root's ktlstun unlock against a worker's socket"
kill "$SPAWN_PID" 2>/dev/null || true

note "the grants table: read-only in every worker, writable in the helper only"
# grants_mapping PID: the permissions of PID's mappings of the grants memfd.
grants_mapping() { awk '/memfd:ktlstun-grants/ { print $2 }' "/proc/$1/maps"; }
for w in $workers; do
    assert_eq "$(grants_mapping "$w")" "r--s" "worker $w's grants mapping"
    for fd in "/proc/$w/fd"/*; do
        case $(readlink "$fd") in
            *ktlstun-grants*) fail "worker $w still holds the grants memfd ($fd)" ;;
        esac
    done
done
assert_eq "$(grants_mapping "$helper")" "rw-s" "the helper's grants mapping"

stop_ktlstund "$daemon"
