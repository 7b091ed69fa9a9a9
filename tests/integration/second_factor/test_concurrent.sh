#!/usr/bin/env bash
# Second factor, logins at the same time, as an attacker with a stolen certificate runs
# them: twenty `ktlstun-auth/1` logins of one identity started together, then nineteen
# wrong codes answered at once and the right code a second later. One PAM conversation
# per identity and per local user at a time: the other nineteen are refused ("another
# login for this identity is in progress") and count nothing, and a second certificate
# of the same user waits for the first one's login. A right code is not granted when
# the address was locked by other identities' failures while its attempt ran, and its
# success leaves that lock (and its one alert) in place.
source "$(dirname "$0")/lib.sh"

sf_make_ca
for name in alice laptop phone carol dave erin; do
    sf_cert "$name"
done
sf_user alice; u_alice=$SF_USER
sf_user bob; u_bob=$SF_USER
sf_user carol; u_carol=$SF_USER
sf_user dave; u_dave=$SF_USER
sf_user erin; u_erin=$SF_USER
oath="$TEST_DIR/oath"
sf_pam_dir "$TEST_DIR/pam.d" "$oath"
for u in "$u_alice" "$u_bob" "$u_carol" "$u_dave" "$u_erin"; do
    sf_enrol "$oath" "$u" HOTP
done
cat >"$TEST_DIR/users.map" <<EOF
cn:alice   $u_alice
cn:laptop  $u_bob
cn:phone   $u_bob
cn:carol   $u_carol
cn:dave    $u_dave
cn:erin    $u_erin
EOF

echo_port=$(free_port) p_vpn=$(free_port) p_users=$(free_port) p_nat=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    sf_gated_tunnel vpn "$p_vpn" "$echo_port" "max_failures = 3" "lockout = 1m"
    sf_gated_tunnel users "$p_users" "$echo_port" "max_failures = 3" "lockout = 1m"
    sf_gated_tunnel nat "$p_nat" "$echo_port" "max_failures = 3" "lockout = 1m"
} >"$conf"
# The client side, in a file only `ktlstun login` reads.
clients="$TEST_DIR/clients.ini"
{
    sf_client_tunnel c-alice 1 "$p_vpn" alice
    sf_client_tunnel c-laptop 2 "$p_users" laptop
    sf_client_tunnel c-phone 3 "$p_users" phone
    sf_client_tunnel c-carol 4 "$p_nat" carol
    sf_client_tunnel c-dave 5 "$p_nat" dave
    sf_client_tunnel c-erin 6 "$p_nat" erin
} >"$clients"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

declare -A FED PID
# held NAME TUNNEL: `ktlstun login TUNNEL` in the background (output in NAME.out),
# reading its answers from a fifo that `answer NAME CODE` writes.
held() {
    spawn_fed "$1" "exec '$KTLSTUN' login '$2' -c '$clients' --answer-fd 0"
    FED[$1]=$FED_FD
    PID[$1]=$SPAWN_PID
}
# in_pam NAME: 0 once NAME's login shows pam_oath's prompt, 1 when it ended without.
in_pam() {
    local i
    for ((i = 0; i < 200 * SLOW; i++)); do
        grep -q 'One-time password' "$TEST_DIR/$1.out" && return 0
        alive "${PID[$1]}" || return 1
        sleep 0.05
    done
    fail "$1: neither a prompt nor an end: $(cat "$TEST_DIR/$1.out")"
}
answer() { printf '%s\n' "$2" >&"${FED[$1]}"; }
# ended NAME: NAME's exit status (it must end soon) in ENDED.
ended() {
    ENDED=0
    wait_exit "${PID[$1]}" "$(scale 20)" || ENDED=$?
}

note "twenty logins of alice at once: nineteen wrong codes together, the right one a second later"
names=()
for ((i = 1; i <= 20; i++)); do
    held "a$i" c-alice
    names+=("a$i")
done
in_pam_names=()
for n in "${names[@]}"; do
    if in_pam "$n"; then
        in_pam_names+=("$n")
    fi
done
[ "${#in_pam_names[@]}" -ge 1 ] || fail "no login of alice reached PAM: $(cat "$TEST_DIR/a1.out")"
last=${in_pam_names[-1]}
wrong=0
for n in "${in_pam_names[@]}"; do
    [ "$n" = "$last" ] && continue
    wrong=$((wrong + 1))
    answer "$n" "$(printf '1%05d' "$wrong")"
done
sleep 1
answer "$last" "$(sf_hotp 0)"
ended "$last"
rc=$ENDED
refused=0
for n in "${names[@]}"; do
    [ "$n" = "$last" ] && continue
    ended "$n"
    if grep -q 'another login for this identity is in progress' "$TEST_DIR/$n.out"; then
        assert_eq "$ENDED" 3 "exit status of a login refused as concurrent"
        refused=$((refused + 1))
    fi
done
locked=$("$KTLSTUN" unlock --list -c "$conf" | grep -c '^vpn identity alice until' || true)
note "${#in_pam_names[@]} PAM conversations, $wrong wrong codes, right code: exit $rc" \
    "($(tail -n 1 "$TEST_DIR/$last.out")), alice locked: $locked, refused as concurrent: $refused"
if [ "$wrong" -ge 3 ] && [ "$rc" = 0 ]; then
    fail "the right code was granted after $wrong wrong codes in one round (lock left: $locked)"
fi
[ "$wrong" -lt 3 ] || [ "$locked" = 1 ] || fail "$wrong wrong codes left no lock"
assert_eq "${#in_pam_names[@]}" 1 "PAM conversations of one identity at a time"
assert_eq "$refused" 19 "logins refused as concurrent"
assert_eq "$rc" 0 "the one login in PAM, with the right code"
assert_log "$log" 'second-factor failure: tunnel=vpn identity="alice" .*failures=- reason="another login for this identity is in progress"' \
    "concurrent login logged"
assert_no_log "$log" 'second-factor failure: tunnel=vpn identity="alice" .*failures=[0-9]' \
    "a refused concurrent login counted as a failure"

note "a second certificate of the same user waits for the first one's login"
held laptop c-laptop
in_pam laptop || fail "laptop's login did not reach PAM: $(cat "$TEST_DIR/laptop.out")"
held phone c-phone
if in_pam phone; then
    fail "two PAM conversations for user $u_bob at once (laptop and phone)"
fi
ended phone
assert_eq "$ENDED" 3 "exit status of the second certificate's login"
grep -q 'another login for this user is in progress' "$TEST_DIR/phone.out" ||
    fail "no clear refusal for the second certificate: $(cat "$TEST_DIR/phone.out")"
answer laptop "$(sf_hotp 0)"
ended laptop
assert_eq "$ENDED" 0 "laptop's login"
sf_expect_login "$clients" c-phone "$(sf_hotp 1)" 0 "Access granted" "phone once laptop is done"

note "a right code whose address was locked meanwhile is not granted, and the lock stays"
held erin c-erin
in_pam erin || fail "erin's login did not reach PAM: $(cat "$TEST_DIR/erin.out")"
for code in 111111 222222; do
    sf_expect_login "$clients" c-carol "$code" 1 "Wrong code" "carol's wrong code"
done
sf_expect_login "$clients" c-dave 333333 1 "Locked" "dave's wrong code locks the address"
assert_log "$log" 'second-factor lock: tunnel=nat identity="dave" .* lock=source level=1' "address lock"
answer erin "$(sf_hotp 0)"
ended erin
[ "$ENDED" != 0 ] || fail "erin was granted although her address was locked while her attempt ran"
grep -q 'Locked: too many failed attempts from this address' "$TEST_DIR/erin.out" ||
    fail "erin was not told about the address lock: $(cat "$TEST_DIR/erin.out")"
"$KTLSTUN" unlock --list -c "$conf" | grep -q '^nat source 127\.0\.0\.1 until' ||
    fail "erin's right code lifted the address lock"
sf_expect_denied "127.0.0.1:$p_nat" erin "data for erin"
sleep 0.5
assert_eq "$(log_count "$log" 'second-factor lock: tunnel=nat ')" 1 "alerts for the one lock"
stop_ktlstund "$KTLSTUND_PID"
