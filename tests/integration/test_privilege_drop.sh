#!/usr/bin/env bash
# Workers drop to [global] user/group and cannot get root back; the PAM helper and its
# launcher drop to pam_user; the parent keeps root for reloads; a worker killed with
# SIGKILL is replaced while connections on the other worker keep flowing.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "this test needs root (it checks the drop from root)"
user=nobody
group=nogroup
getent group "$group" >/dev/null || group=nobody
uid=$(id -u "$user")
gid=$(getent group "$group" | cut -d: -f3)

echo_port=$(free_port)
port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
# The PAM helper gets a user of its own, neither root nor the workers'.
pam_user=daemon
pam_uid=$(id -u "$pam_user") || fail "no user $pam_user on this system"
{
    global_section "user = $user" "group = $group" "pam_user = $pam_user"
    server_tunnel echo "$port" "$echo_port"
} >"$conf"
# The parent creates runtime_dir for its workers only when it is missing; the
# unprivileged workers must be able to reach it.
rm -rf "$TEST_DIR/run"
chmod o+x "$TEST_DIR" "$(dirname "$TEST_DIR")"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
assert_eq "$(stat -c %u "$TEST_DIR/run")" "$uid" "runtime_dir owner"

workers=$(workers_of "$conf")
assert_eq "$(echo "$workers" | wc -l)" 2 "workers answering status"
for w in $workers; do
    st="/proc/$w/status"
    assert_eq "$(awk '/^Uid:/ {print $2,$3,$4,$5}' "$st")" "$uid $uid $uid $uid" "worker $w uids"
    assert_eq "$(awk '/^Gid:/ {print $2,$3,$4,$5}' "$st")" "$gid $gid $gid $gid" "worker $w gids"
    assert_eq "$(awk '/^Groups:/ {print $2}' "$st")" "$gid" "worker $w supplementary groups"
    assert_eq "$(awk '/^CapEff:/ {print $2}' "$st")" 0000000000000000 "worker $w effective caps"
    assert_eq "$(awk '/^CapPrm:/ {print $2}' "$st")" 0000000000000000 "worker $w permitted caps"
    assert_eq "$(awk '/^NoNewPrivs:/ {print $2}' "$st")" 1 "worker $w no_new_privs"
done
assert_eq "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" 0 "parent keeps root"
for name in ktlstund-pam ktlstund-spawn; do
    p=$(pgrep -P "$pid" -x "$name") || fail "no $name child of $pid"
    assert_eq "$(awk '/^Uid:/ {print $2,$3,$4,$5}' "/proc/$p/status")" "$pam_uid $pam_uid $pam_uid $pam_uid" "$name uids"
    assert_eq "$(awk '/^CapPrm:/ {print $2}' "/proc/$p/status")" 0000000000000000 "$name permitted caps"
    assert_eq "$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$p/status")" 1 "$name no_new_privs"
done

# Hold one connection open, find its worker, kill the other one.
client_args alice
spawn_fed held "exec openssl s_client -connect 127.0.0.1:$port -quiet -no_ign_eof ${CLIENT_ARGS[*]}"
held=$SPAWN_PID held_fd=$FED_FD
printf 'one\n' >&"$held_fd"
wait_for_log "$TEST_DIR/held.out" '^one$' 5 || fail "held connection got no echo"
holder=$("$KTLSTUN" status --json -c "$conf" | jq -r '.workers[] | select(.connections > 0) | .pid')
[ -n "$holder" ] || fail "no worker reports the held connection"
other=$(echo "$workers" | grep -vx "$holder")
kill -KILL "$other"
assert_log "$log" "worker $other killed by signal 9" "killed worker not noticed"
assert_log "$log" "replacing worker $other" "killed worker not replaced"
wait_worker_replaced "$conf" "$other" 2 || true
assert_eq "$(workers_of "$conf" | wc -l)" 2 "workers after the replacement"
printf 'two\n' >&"$held_fd"
wait_for_log "$TEST_DIR/held.out" '^two$' 5 || fail "the held connection stopped flowing when its neighbour died"
tls_echo "127.0.0.1:$port" "new-$RANDOM" "$TEST_DIR/new.out" "${CLIENT_ARGS[@]}" \
    || fail "new connections not served after the replacement"
exec {held_fd}>&-
wait_exit "$held" 10 || true
stop_ktlstund "$pid"
