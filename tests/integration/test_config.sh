#!/usr/bin/env bash
# ktlstund -t / ktlstun check-config: good config → 0 and "is ok"; each kind of bad
# config → 1 with "FILE:LINE: [section] key: reason"; every problem is reported at once;
# relative paths are taken from the config file's directory; version strings agree.
source "$(dirname "$0")/lib.sh"

mkdir -p conf
cp "$PKI"/server.pem "$PKI"/server.key "$PKI"/ca.pem "$PKI"/crl.pem conf/
port=$(free_port)
target=$(free_port)

# write_conf FILE EXTRA_LINES...: a server tunnel [web] using relative paths, then the
# extra lines appended inside [web] (so their line numbers are known: see line_of).
write_conf() {
    local file=$1
    shift
    {
        global_section
        server_tunnel web "$port" "$target" "cert = server.pem" "key = server.key" "ca = ca.pem" "crl = crl.pem" \
            "allow_cn = alice, bob" "handshake_timeout = 5s" "idle_timeout = 5m"
        # Written as they are, after the section: a key given twice must stay twice.
        local line
        for line in "$@"; do
            echo "$line"
        done
    } >"$file"
}
line_of() { grep -n -F -x -- "$2" "$1" | head -n 1 | cut -d: -f1; }

# check_bad FILE "ERE"...: both front ends exit 1 and print every ERE on stderr.
check_bad() {
    local file=$1 rc out tool
    shift
    for tool in "$KTLSTUND -t -c" "$KTLSTUN check-config -c"; do
        rc=0
        out=$($tool "$file" 2>&1 >/dev/null) || rc=$?
        [ "$rc" = 1 ] || fail "$tool $(basename "$file") exited $rc, expected 1 (stderr: $out)"
        local re
        for re in "$@"; do
            grep -qE -- "$re" <<<"$out" || fail "$tool $(basename "$file"): no error matching /$re/ in: $out"
        done
    done
}
esc() { sed 's/[][\.*^$/+?(){}|]/\\&/g' <<<"$1"; }

# ---- good config: relative paths from the config's directory, checked from elsewhere
good="$TEST_DIR/conf/good.ini"
write_conf "$good"
out=$(cd / && "$KTLSTUND" -t -c "$good" 2>"$TEST_DIR/good.err") || fail "ktlstund -t good.ini failed: $(cat "$TEST_DIR/good.err")"
assert_contains "$out" "configuration $good is ok" "ktlstund -t stdout"
out=$(cd / && "$KTLSTUN" check-config -c "$good" 2>"$TEST_DIR/good.err") || fail "ktlstun check-config good.ini failed: $(cat "$TEST_DIR/good.err")"
assert_contains "$out" "configuration $good is ok" "ktlstun check-config stdout"
[ -z "$(ss -Hltn "sport = :$port")" ] || fail "-t left a listener on $port"

# every key of config.h in one file is accepted (ktls = require only where the kernel
# can offload: elsewhere -t refuses it, see test_config_check.sh)
full="$TEST_DIR/conf/full.ini"
out_ktls=auto
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && out_ktls=require
{
    global_section
    cat <<EOF
[full]
mode = server
listen = 127.0.0.1:$port
target = unix:$TEST_DIR/backend.sock
cert = server.pem
key = server.key
ca = $PKI/cadir
crl = crl.pem
allow_cn = alice, *.example.com
allow_ou = eng
allow_dns = *.example.com, **.example.org
allow_uri = spiffe://example.com/*
allow_email = alice@example.com
pin_sha256 = $(cat "$PKI/alice.spki")
tls_min_version = 1.3
ciphersuites = TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256
ciphers = ECDHE-ECDSA-AES256-GCM-SHA384
groups = X25519:P-256
ktls = off
handshake_timeout = 30
idle_timeout = 1h30m
max_connections = 100

[out]
mode = client
listen = [::1]:$target
target = 127.0.0.1:$port
cert = $PKI/alice.pem
key = $PKI/alice.key
ca = ca.pem
server_name = localhost
tls_min_version = 1.2
ktls = $out_ktls
EOF
} >"$full"
"$KTLSTUND" -t -c "$full" >"$TEST_DIR/full.out" 2>&1 || fail "full.ini refused: $(cat "$TEST_DIR/full.out")"

# ---- unknown key
f="$TEST_DIR/conf/unknown.ini"
write_conf "$f" "bogus_key = 1"
n=$(line_of "$f" "bogus_key = 1")
check_bad "$f" "^$(esc "$f"):$n: \[web\] bogus_key: "

# ---- bad duration
f="$TEST_DIR/conf/duration.ini"
write_conf "$f"
sed -i 's/^idle_timeout = 5m$/idle_timeout = 5x/' "$f"
n=$(line_of "$f" "idle_timeout = 5x")
check_bad "$f" "^$(esc "$f"):$n: \[web\] idle_timeout: "

# ---- missing file
f="$TEST_DIR/conf/missing.ini"
write_conf "$f"
sed -i 's|^cert = server.pem$|cert = does-not-exist.pem|' "$f"
n=$(line_of "$f" "cert = does-not-exist.pem")
check_bad "$f" "^$(esc "$f"):$n: \[web\] cert: "

# ---- missing CRL file, bad address, bad mode, bad ktls, bad tls_min_version, unknown
#      global key, duplicate key: all in one file, all reported
f="$TEST_DIR/conf/many.ini"
write_conf "$f" "ktls = sometimes" "tls_min_version = 1.1" "handshake_timeout = 5s"
sed -i 's|^crl = crl.pem$|crl = /nonexistent/crl.pem|; s|^listen = .*|listen = 127.0.0.1|; s|^mode = server$|mode = sideways|' "$f"
sed -i 's|^workers = .*|&\nfrobnicate = yes|' "$f"
check_bad "$f" \
    "^$(esc "$f"):$(line_of "$f" "crl = /nonexistent/crl.pem"): \[web\] crl: " \
    "^$(esc "$f"):$(line_of "$f" "listen = 127.0.0.1"): \[web\] listen: " \
    "^$(esc "$f"):$(line_of "$f" "mode = sideways"): \[web\] mode: " \
    "^$(esc "$f"):$(line_of "$f" "ktls = sometimes"): \[web\] ktls: " \
    "^$(esc "$f"):$(line_of "$f" "tls_min_version = 1.1"): \[web\] tls_min_version: " \
    "^$(esc "$f"):$(line_of "$f" "frobnicate = yes"): \[global\] frobnicate: " \
    "^$(esc "$f"):[0-9]+: \[web\] handshake_timeout: "

# ---- missing required key (no target)
f="$TEST_DIR/conf/notarget.ini"
write_conf "$f"
sed -i '/^target = /d' "$f"
check_bad "$f" "^$(esc "$f"):[0-9]+: \[web\] target: "

# ---- a NUL byte at the start of the allow_cn line: libiniparser reads an empty line,
#      so without the check the tunnel silently admits every certificate of its CA
f="$TEST_DIR/conf/nul.ini"
write_conf "$f"
n=$(line_of "$f" "allow_cn = alice, bob")
sed -i 's/^allow_cn = alice, bob$/\x00&/' "$f"
[ "$(grep -c -a -P '^\x00allow_cn = ' "$f")" = 1 ] || fail "nul.ini: the NUL byte was not written"
check_bad "$f" "^$(esc "$f"):$n: \[web\] NUL byte at column 1 "

# ---- a value that is not UTF-8, and a quote that is never closed
f="$TEST_DIR/conf/text.ini"
write_conf "$f"
sed -i 's/^allow_cn = alice, bob$/allow_cn = alice, b\xf6b/' "$f"
printf 'ciphers = "ECDHE+AESGCM\n' >>"$f"
check_bad "$f" \
    "^$(esc "$f"):$(grep -n -a '^allow_cn = ' "$f" | cut -d: -f1): \[web\] allow_cn: value is not valid UTF-8 " \
    "^$(esc "$f"):$(grep -n -a '^ciphers = ' "$f" | cut -d: -f1): \[web\] ciphers: value opens a quote "

# ---- the config file itself missing
rc=0
"$KTLSTUND" -t -c "$TEST_DIR/conf/absent.ini" >/dev/null 2>"$TEST_DIR/absent.err" || rc=$?
assert_eq "$rc" 1 "ktlstund -t on a missing file"
grep -qF "$TEST_DIR/conf/absent.ini" "$TEST_DIR/absent.err" || fail "missing config not named: $(cat "$TEST_DIR/absent.err")"

# ---- versions
v1=$("$KTLSTUN" version) || fail "ktlstun version failed"
v2=$("$KTLSTUND" -V) || fail "ktlstund -V failed"
[[ $v1 =~ ^ktlstun\ [0-9][0-9A-Za-z.+~-]*$ ]] || fail "ktlstun version printed '$v1'"
assert_eq "$v2" "$v1" "ktlstund -V and ktlstun version"

# ---- key that does not match the certificate (last: -t checks certificates and keys
#      too, and its errors must carry FILE:LINE like every other)
f="$TEST_DIR/conf/wrongkey.ini"
write_conf "$f"
sed -i "s|^key = server.key$|key = $PKI/alice.key|" "$f"
check_bad "$f" "^$(esc "$f"):[0-9]+: \[web\] (key|cert): "

note "config checks ok"
