# test_unit_security.sh — the shipped systemd unit: its hardening rating, its
# validity, and whether its sandbox lets the daemon do what it does.
#
#   1. `systemd-analyze security --offline=true` rates units/ktlstund.service 2.0 or
#      lower (the required rating), both by --threshold and by the printed figure; a
#      stripped copy of the unit must fail the same check, or the check proves nothing.
#   2. The settings the daemon relies on are there (Type=notify, the directories,
#      UMask, only CAP_SETUID and CAP_SETGID, ...): the rating alone would not notice
#      them going.
#   3. A real ktlstund run as the unit runs it (an unprivileged user holding only
#      CAP_SETUID and CAP_SETGID, no new privileges, the file layout of
#      tmpfiles.d/ktlstun.conf: group-readable keys, pam_oath's users file in the PAM
#      helper's own directory, the lock state the helper's) works: the PAM helper
#      runs as its own user, every process ends with no capability, a failed and a
#      successful one-time-password login through pam_oath, server and client
#      tunnels carrying data, a reload, a stop. Every system call it makes
#      (strace) is allowed by the unit's SystemCallFilter=, and so is every call of
#      the kTLS path this kernel cannot show (setsockopt TCP_ULP/SOL_TLS,
#      sendmsg/recvmsg with record-type cmsgs, splice, pipe2).
#   4. `systemd-analyze verify` (offline) accepts the service, both socket units
#      and the Sockets= drop-in, installed with `make install`, without a warning.
#
# Needs systemd-analyze (Debian package systemd), strace, libpam-oath and oathtool.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/lib.sh"

unit="$repo/units/ktlstund.service"
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (apt-get install systemd)"
command -v strace >/dev/null || fail "strace missing (apt-get install strace)"
command -v oathtool >/dev/null || fail "oathtool missing (apt-get install oathtool)"
pam_oath=$(find /lib /usr/lib -name pam_oath.so -path '*security*' 2>/dev/null | head -n 1)
[ -n "$pam_oath" ] || fail "pam_oath.so missing (apt-get install libpam-oath)"

# --- 1. the rating --------------------------------------------------------------

# exposure UNITFILE: prints the overall exposure figure (e.g. 1.2) systemd-analyze
# gives UNITFILE; fails when there is none.
exposure() {
    local out figure
    out=$(systemd-analyze security --offline=true --no-pager "$1" 2>&1) || true
    figure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p' <<<"$out")
    [ -n "$figure" ] || fail "no exposure figure for $1: $out"
    echo "$figure"
}

figure=$(exposure "$unit")
note "systemd-analyze security rates ktlstund.service $figure (limit: 2.0)"
awk -v f="$figure" 'BEGIN { exit !(f <= 2.0) }' || fail "ktlstund.service is rated $figure, above 2.0"
systemd-analyze security --offline=true --threshold=20 --no-pager "$unit" >"$TEST_DIR/security.out" 2>&1 ||
    fail "systemd-analyze security --threshold=20 refused ktlstund.service: $(tail -n 3 "$TEST_DIR/security.out")"

# The same checks on the unit without its sandbox must fail, or they test nothing.
stripped="$TEST_DIR/ktlstund.service"
sed -n '/^\[Unit\]/,/^\[Service\]/p; /^Type=/p; /^ExecStart=/p' "$unit" >"$stripped"
weak=$(exposure "$stripped")
awk -v f="$weak" 'BEGIN { exit !(f > 2.0) }' || fail "the stripped unit is rated $weak: the check cannot fail"
if systemd-analyze security --offline=true --threshold=20 --no-pager "$stripped" >/dev/null 2>&1; then
    fail "--threshold=20 accepted the stripped unit (rated $weak)"
fi
note "without its sandbox the unit rates $weak and fails the check"

# Network tunnels: units/examples/network.conf adds CAP_NET_ADMIN, /dev/net/tun and
# netlink, nothing else; the service with it stays within 2.1 (its comment says so).
network_dropin="$repo/units/examples/network.conf"
with_network="$TEST_DIR/network/ktlstund.service"
mkdir -p "$TEST_DIR/network"
{ cat "$unit"; echo; cat "$network_dropin"; } >"$with_network"
assert_eq "$(grep -E '^[A-Za-z]+=' "$network_dropin" | sort | tr '\n' ' ')" \
    "AmbientCapabilities=CAP_NET_ADMIN CapabilityBoundingSet=CAP_NET_ADMIN DeviceAllow=/dev/net/tun rw DevicePolicy=closed PrivateDevices=no RestrictAddressFamilies=AF_NETLINK " \
    "network.conf grants what network tunnels need and nothing else"
network_figure=$(exposure "$with_network")
note "with network.conf the service rates $network_figure"
awk -v f="$network_figure" 'BEGIN { exit !(f <= 2.1) }' || fail "ktlstund.service with network.conf is rated $network_figure, above 2.1"

# --- 2. settings the daemon depends on -----------------------------------------

# setting KEY: the values of KEY= in the unit, one per line.
setting() { sed -n "s/^$1=//p" "$unit"; }

expect_setting() {  # KEY VALUE: KEY= has exactly VALUE (its last assignment)
    assert_eq "$(setting "$1" | tail -n 1)" "$2" "ktlstund.service $1="
}
expect_setting Type notify
expect_setting NotifyAccess main
expect_setting WatchdogSec 30s
expect_setting Restart on-failure
expect_setting KillMode mixed
expect_setting User ktlstun
expect_setting Group ktlstun
expect_setting RuntimeDirectory ktlstun
expect_setting ConfigurationDirectory ktlstun
expect_setting UMask 0077
# What the start needs to run the PAM helper as its own user, and nothing else.
expect_setting CapabilityBoundingSet "CAP_SETUID CAP_SETGID"
expect_setting AmbientCapabilities "CAP_SETUID CAP_SETGID"
expect_setting PrivateUsers no
# systemd would hand a StateDirectory= to User= (the workers' user): the lock state
# is the helper's, from tmpfiles.d.
assert_eq "$(setting StateDirectory)" "" "StateDirectory= (the lock state is not ktlstun's)"
expect_setting NoNewPrivileges yes
expect_setting ProtectSystem strict
expect_setting SystemCallArchitectures native
expect_setting SystemCallErrorNumber EPERM
assert_eq "$(setting ExecStart)" "/usr/sbin/ktlstund -f" "ExecStart="
assert_eq "$(setting ExecStartPre)" "/usr/sbin/ktlstund -t" "ExecStartPre= (config test)"
# shellcheck disable=SC2016 # $MAINPID is systemd's, literally
assert_contains "$(setting ExecReload | tr '\n' '|')" '/bin/kill -HUP $MAINPID' "ExecReload= sends SIGHUP"
assert_eq "$(setting ReadWritePaths)" "-/etc/ktlstun/oath -/var/lib/ktlstun" \
    "ReadWritePaths= (pam_oath's directory and the lock state's only)"
families=" $(setting RestrictAddressFamilies | tail -n 1) "
for family in AF_INET AF_INET6 AF_UNIX; do
    assert_contains "$families" " $family " "RestrictAddressFamilies="
done
# The tunnel type that needs no kernel module loading must not get it back.
assert_not_contains "$(setting ProtectKernelModules)" no "ProtectKernelModules="

# The directories the unit creates are the daemon's defaults.
config_h=$(cat "$repo"/daemon/config/*.c)
grep -q '#define DEFAULT_STATE_DIR "/var/lib/ktlstun"' <<<"$config_h" || fail "state_dir default moved: update ReadWritePaths="
grep -q '#define DEFAULT_RUNTIME_DIR "/run/ktlstun"' <<<"$config_h" || fail "runtime_dir default moved: update RuntimeDirectory="
grep -q '#define CONFIG_DEFAULT_PATH "/etc/ktlstun/ktlstun.ini"' "$repo/daemon/config/config.h" ||
    fail "the default config path moved: update ConfigurationDirectory="

# --- 3. the system call filter against a real run -------------------------------

# expand NAME...: the system calls NAME stands for (groups expanded, recursively).
declare -A expanded_group=()
expand() {
    local name line
    for name in "$@"; do
        if [[ $name != @* ]]; then
            echo "$name"
            continue
        fi
        [ -n "${expanded_group[$name]:-}" ] && continue
        expanded_group[$name]=1
        while read -r line; do
            case $line in
                '' | '#'* | "$name") ;;
                @*) expand "$line" ;;
                *) echo "$line" ;;
            esac
        done < <(systemd-analyze syscall-filter --no-pager "$name")
    done
}

# The unit's filter, as systemd builds it: the first SystemCallFilter= decides allow
# or deny list; later ones add (allow) or remove (~) calls.
declare -A allowed=()
first=1
while read -r value; do
    deny=0
    if [[ $value == "~"* ]]; then
        deny=1
        value=${value#\~}
    fi
    [ "$first" = 1 ] && [ "$deny" = 1 ] && fail "SystemCallFilter= starts with a deny list: this check expects an allow list"
    first=0
    expanded_group=()
    # shellcheck disable=SC2086 # a list of names
    for call in $(expand $value); do
        if [ "$deny" = 1 ]; then unset "allowed[$call]"; else allowed[$call]=1; fi
    done
done < <(setting SystemCallFilter)
[ "${#allowed[@]}" -gt 100 ] || fail "the unit's SystemCallFilter= expands to only ${#allowed[@]} calls"
# systemd always lets these through (systemd.exec(5), SystemCallFilter=).
for call in execve exit exit_group getrlimit rt_sigreturn sigreturn; do allowed[$call]=1; done

# The kTLS path, which this kernel (no tls module) cannot show in the trace below,
# pam_oath's rewrite of its users file, and the switch to the helper's user.
for call in setsockopt getsockopt sendmsg recvmsg splice pipe2 accept4 epoll_wait \
            epoll_ctl signalfd4 prctl socket connect getrandom fchown \
            setgroups setresgid setresuid capset capget; do
    [ -n "${allowed[$call]:-}" ] || fail "SystemCallFilter= denies $call, which the daemon needs"
done
# ...and a call the filter must deny, or the expansion above proves nothing.
for call in init_module finit_module mount ptrace process_vm_readv setrlimit chown chroot; do
    [ -z "${allowed[$call]:-}" ] || fail "SystemCallFilter= allows $call"
done

# LeakSanitizer stops the world with ptrace at exit, which strace would prevent: the
# sanitizer build makes the same run untraced.
traced=1
grep -qa __asan_init "$KTLSTUND" && traced=0

back_port=$(free_port)
server_port=$(free_port)
client_port=$(free_port)
start_echo "127.0.0.1:$back_port" "$TEST_DIR/echo.log"

# The layout the unit, sysusers.d and tmpfiles.d/ktlstun.conf make, with
# nobody:nogroup standing in for ktlstun:ktlstun and a user made here (in group
# nogroup, removed at exit) for ktlstun-pam (the test's own directory is root's and
# private, so this one lives beside it):
#   etc/            root:G 0750   config and keys root:G 0640
#   etc/oath/       root:P 0770   USER P:P 0600 (pam_oath rewrites it)
#   state/          P:P 0700      the lock state
#   run/            U:G 0750
# The server tunnel asks for a one-time password, so the PAM helper, a PAM
# transaction and pam_oath's rewrite of its users file run under the trace too.
run_as_user=nobody
run_as_group=nogroup
pam_as_user="kus$(printf '%05d' $(($$ % 100000)))pam"
unit_root=$(mktemp -d /tmp/ktlstun-unit-security.XXXXXX)
remove_unit_root() {
    stop_started_as "$pam_as_user"
    rm -rf "$unit_root"
    userdel "$pam_as_user" >/dev/null 2>&1 || true
    groupdel "$pam_as_user" >/dev/null 2>&1 || true
}
trap 'rc=$?; remove_unit_root; (exit $rc); cleanup' EXIT
groupadd "$pam_as_user" || fail "cannot make group $pam_as_user"
useradd -M -N -g "$pam_as_user" -G "$run_as_group" -s /usr/sbin/nologin "$pam_as_user" ||
    fail "cannot make the helper's user $pam_as_user"
chmod 0755 "$unit_root"
etc="$unit_root/etc"
mkdir -p "$etc/oath" "$etc/pam.d" "$unit_root/state" "$unit_root/run"
for f in server.pem server.key alice.pem alice.key ca.pem crl.pem; do
    cp "$PKI/$f" "$etc/$f"
done
oath_secret=3132333435363738393031323334353637383930
# The shipped stack, pointed at this test's OATH directory.
sed "s|/etc/ktlstun/oath/|$etc/oath/|" "$repo/pam/ktlstun" >"$etc/pam.d/ktlstun"
grep -qF "usersfile=$etc/oath/\${USER}" "$etc/pam.d/ktlstun" || fail "pam/ktlstun no longer names /etc/ktlstun/oath/\${USER}"
grep -q '^account *required *pam_localuser.so' "$etc/pam.d/ktlstun" || fail "pam/ktlstun's account check needs root"
conf="$etc/ktlstun.ini"
# Paths relative to the config's directory, as in /etc/ktlstun. pam_localuser: the
# mapped user must exist here.
{
    global_section "state_dir = $unit_root/state" "runtime_dir = $unit_root/run" "pam_user = $pam_as_user"
    server_tunnel front "$server_port" "$back_port" "cert = server.pem" "key = server.key" "ca = ca.pem" \
        "crl = crl.pem" "allow_cn = alice" "second_factor = pam" "pam_confdir = pam.d" "user_map = file:users.map"
    client_tunnel back "$client_port" "$server_port" "cert = alice.pem" "key = alice.key" "ca = ca.pem"
} >"$conf"
echo "cn:alice $run_as_user" >"$etc/users.map"
echo "HOTP $run_as_user - $oath_secret" >"$etc/oath/$run_as_user"
chown -R "root:$run_as_group" "$etc"
chmod 0750 "$etc" "$etc/pam.d"
chmod 0640 "$etc"/*.pem "$etc"/*.key "$etc"/*.ini "$etc"/*.map
chmod 0644 "$etc/pam.d/ktlstun"
chown "root:$pam_as_user" "$etc/oath"
chmod 0770 "$etc/oath"
chown "$pam_as_user:$pam_as_user" "$etc/oath/$run_as_user" "$unit_root/state"
chown "$run_as_user:$run_as_group" "$unit_root/run"
chmod 0600 "$etc/oath/$run_as_user"
chmod 0700 "$unit_root/state"
chmod 0750 "$unit_root/run"

# The daemon as the unit runs it: an unprivileged user whose only capabilities are
# CAP_SETUID and CAP_SETGID (ambient, and all the bounding set holds), no new
# privileges, UMask=0077, and systemd's default soft descriptor limit (so the daemon
# raises it as it will there).
trace="$TEST_DIR/strace.out"
strace_prefix=""
[ "$traced" = 1 ] && strace_prefix="strace -f -qq -o $trace --"
wrapper="$TEST_DIR/unit-like-ktlstund"
cat >"$wrapper" <<EOF
#!/bin/sh
umask 0077
ulimit -S -n 1024
exec $strace_prefix setpriv --reuid=$run_as_user --regid=$run_as_group --clear-groups \
    --no-new-privs --inh-caps=-all,+setuid,+setgid --ambient-caps=-all,+setuid,+setgid \
    --bounding-set=-all,+setuid,+setgid -- "$KTLSTUND" "\$@"
EOF
chmod +x "$wrapper"
KTLSTUND="$wrapper" start_ktlstund "$conf" "$TEST_DIR/daemon.log"
tracer=$KTLSTUND_PID
daemon=$tracer
if [ "$traced" = 1 ]; then
    # Signals go to the daemon (strace's child), not to strace.
    daemon=$(pgrep -P "$tracer" | head -n 1)
    [ -n "$daemon" ] || fail "no ktlstund under strace $tracer"
fi
assert_eq "$(awk '/^Uid:/ { print $2 ":" $3 ":" $4 ":" $5 }' "/proc/$daemon/status")" \
    "$(id -u "$run_as_user"):$(id -u "$run_as_user"):$(id -u "$run_as_user"):$(id -u "$run_as_user")" \
    "the traced daemon's uids"
# Every process ends with no capability; the helper is its own user.
helper=$(pgrep -P "$daemon" -x ktlstund-pam)
[ -n "$helper" ] || fail "no PAM helper under $daemon: $(pgrep -a -P "$daemon")"
assert_eq "$(awk '/^Uid:/ { print $2 ":" $3 ":" $4 ":" $5 }' "/proc/$helper/status")" \
    "$(id -u "$pam_as_user"):$(id -u "$pam_as_user"):$(id -u "$pam_as_user"):$(id -u "$pam_as_user")" \
    "the PAM helper's uids"
for p in $(pgrep -P "$daemon") "$daemon"; do
    for set in CapEff CapPrm CapAmb; do
        assert_eq "$(awk -v f="$set:" '$1 == f { print $2 }' "/proc/$p/status")" 0000000000000000 \
            "$set of $(cat "/proc/$p/comm") $p"
    done
done

# A wrong code (counted, lockout state written), then the right one.
login() {  # CODE: ktlstun login through [back], answering CODE
    "$KTLSTUN" login back -c "$conf" --answer-fd 3 3<<<"$1" >>"$TEST_DIR/login.out" 2>&1
}
rc=0
login 000000 || rc=$?
assert_eq "$rc" 1 "ktlstun login with a wrong code"
login "$(oathtool -c 0 "$oath_secret")" || fail "ktlstun login with the right code: $(tail -n 3 "$TEST_DIR/login.out")"
grep -qP "^HOTP\t$run_as_user\t-\t[0-9a-f]+\t0\t" "$etc/oath/$run_as_user" ||
    fail "pam_oath did not record the used counter: $(cat "$etc/oath/$run_as_user")"
assert_eq "$(stat -c '%U:%G %a' "$etc/oath/$run_as_user")" "$pam_as_user:$pam_as_user 600" \
    "owner and mode of the users file pam_oath rewrote"
[ -z "$(find "$etc/oath" -name "$run_as_user.*")" ] || fail "pam_oath left $(ls "$etc/oath")"
plain_echo "127.0.0.1:$client_port" "through-both-tunnels" || fail "no echo through the client and server tunnels"
reload_outcome=$(reload "$daemon" "$TEST_DIR/daemon.log")
assert_eq "$reload_outcome" reloaded "SIGHUP under strace"
plain_echo "127.0.0.1:$client_port" "after-reload" || fail "no echo after the reload"
client_args alice
tls_echo "127.0.0.1:$server_port" "direct-tls" "$TEST_DIR/s_client.out" "${CLIENT_ARGS[@]}" ||
    fail "no echo through the server tunnel"
kill -TERM "$daemon"
rc=0
wait_exit "$tracer" "$(scale 20)" || rc=$?
assert_eq "$rc" 0 "ktlstund's exit status after SIGTERM"
if [ "$traced" = 0 ]; then
    note "sanitizer build: ran untraced (the normal build's run checks the system calls)"
    exit 0
fi

# Only the daemon's own calls: from its execve on (setpriv's capset and prctl
# before it are the test's doing, not the daemon's).
daemon_calls=$(awk -v bin="$KTLSTUND" '
    !seen && index($0, "execve(\"" bin "\"") && / = 0$/ { seen = 1; next }
    seen && match($0, /^[0-9]+ +[a-z0-9_]+\(/) {
        line = substr($0, RSTART, RLENGTH - 1); sub(/^[0-9]+ +/, "", line); print line
    }' "$trace" | sort -u)
[ -n "$daemon_calls" ] || fail "strace saw no system call of ktlstund (trace: $(head -c 300 "$trace"))"
grep -qx setsockopt <<<"$daemon_calls" || fail "the traced run made no setsockopt: it did not exercise the tunnels"
# The reason SystemCallFilter= lets fchown back in: pam_oath called it.
grep -qx fchown <<<"$daemon_calls" || fail "pam_oath made no fchown: is the filter's exception still needed?"
denied=()
for call in $daemon_calls; do
    [ -n "${allowed[$call]:-}" ] || denied+=("$call")
done
[ "${#denied[@]}" = 0 ] || fail "ktlstund made system calls ktlstund.service denies: ${denied[*]}"
note "ktlstund made $(wc -w <<<"$daemon_calls") distinct system calls; the unit allows them all"

# --- 4. systemd-analyze verify on the installed units ---------------------------

# Installed under a private prefix so that ExecStart= names a binary that exists
# here (verify checks it); DESTDIR=/ keeps make from creating the user on this host.
root="$TEST_DIR/root"
build=$(dirname "$KTLSTUND")
env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$repo" --no-print-directory install \
    DESTDIR=/ PREFIX="$root/usr" SYSCONFDIR="$root/etc" BUILD="$build" \
    -o "$build/ktlstund" -o "$build/ktlstun" >"$TEST_DIR/install.out" 2>&1 ||
    fail "make install for verify failed: $(tail -n 5 "$TEST_DIR/install.out")"
units="$root/usr/lib/systemd/system"
assert_eq "$(sed -n 's/^ExecStart=//p' "$units/ktlstund.service")" "$root/usr/sbin/ktlstund -f" \
    "installed ExecStart= follows PREFIX"
cp "$root/usr/share/doc/ktlstun/examples/systemd/ktlstund-ssh.socket" "$units/"
mkdir -p "$units/ktlstund.service.d"
cp "$root/usr/share/doc/ktlstun/examples/systemd/sockets.conf" "$units/ktlstund.service.d/"
verify() {
    (cd / && MANPATH="$root/usr/share/man" systemd-analyze verify "$@") >"$TEST_DIR/verify.out" 2>&1
}
verify "$units/ktlstund.service" "$units/ktlstund.socket" "$units/ktlstund-ssh.socket" ||
    fail "systemd-analyze verify failed: $(cat "$TEST_DIR/verify.out")"
[ ! -s "$TEST_DIR/verify.out" ] || fail "systemd-analyze verify warns: $(cat "$TEST_DIR/verify.out")"
# A misspelt setting must make it speak, or its silence above proves nothing.
sed -i 's/^ProtectSystem=/ProtectSytem=/' "$units/ktlstund.service"
verify "$units/ktlstund.service" || true
grep -q "Unknown key 'ProtectSytem'" "$TEST_DIR/verify.out" ||
    fail "systemd-analyze verify did not notice a misspelt key: $(cat "$TEST_DIR/verify.out")"
note "systemd-analyze verify: service, both sockets and the Sockets= drop-in are clean"
