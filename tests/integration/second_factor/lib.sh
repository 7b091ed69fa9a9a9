# second_factor/lib.sh — what the second-factor tests (second_factor/test_*.sh) share,
# on top of ../lib.sh, which it sources: a test sources only this file.
#
# Real parts only: pam_start_confdir() with a private PAM directory holding the
# shipped pam/ktlstun stack (its users file path pointed at this test's), pam_oath,
# codes from oathtool, local users made with useradd (removed at exit), client
# certificates from a CA made here (the gated tunnels trust only it).

SF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SF_DIR/../lib.sh"

SF_REPO=$(cd "$SF_DIR/../../.." && pwd)
SF_SECRET=3132333435363738393031323334353637383930   # the RFC 4226 test key
SF_USERS=()
SF_USER=
SF_RC=0

for tool in oathtool useradd userdel; do
    command -v "$tool" >/dev/null || fail "$tool is needed (make deps installs it)"
done
[ -e /lib/x86_64-linux-gnu/security/pam_oath.so ] || [ -e /usr/lib/x86_64-linux-gnu/security/pam_oath.so ] ||
    [ -n "$(find /lib /usr/lib -name pam_oath.so 2>/dev/null | head -n 1)" ] ||
    fail "pam_oath.so is needed (libpam-oath)"

sf_cleanup() {
    local u
    for u in "${SF_USERS[@]}"; do
        userdel "$u" >/dev/null 2>&1 || true
    done
}
# lib.sh's cleanup reads $? first thing: hand it the test's status untouched.
trap 'sf_rc=$?; sf_cleanup; (exit $sf_rc); cleanup' EXIT

# sf_user NAME [useradd options]: a local user unique to this run; its name in SF_USER.
sf_user() {
    local name
    name="ksf$(printf '%05d' $(($$ % 100000)))$1"
    name=${name:0:32}
    useradd -M -N -s /usr/sbin/nologin -c "ktlstun second-factor test" "${@:2}" "$name" ||
        fail "useradd $name failed"
    SF_USERS+=("$name")
    SF_USER=$name
}

# sf_make_ca: $TEST_DIR/users-ca.pem and one key ($TEST_DIR/user.key) for every
# client certificate sf_cert makes (keygen is the slow part).
sf_make_ca() {
    local d=$TEST_DIR
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/users-ca.key" 2>/dev/null
    openssl req -x509 -new -key "$d/users-ca.key" -out "$d/users-ca.pem" -days 2 \
        -subj "/CN=ktlstun second-factor test users" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/user.key" 2>/dev/null
    cat >"$d/leaf.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = leaf
[dn]
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = $ENV::SF_SAN
EOF
}

# sf_cert NAME [SAN]: $TEST_DIR/NAME.pem with CN=NAME (SAN default email:NAME@example.com).
sf_cert() {
    SF_SAN=${2:-email:$1@example.com} openssl req -config "$TEST_DIR/leaf.cnf" -new \
        -key "$TEST_DIR/user.key" -subj "/CN=$1" -x509 -CA "$TEST_DIR/users-ca.pem" \
        -CAkey "$TEST_DIR/users-ca.key" -days 2 -out "$TEST_DIR/$1.pem" 2>/dev/null ||
        fail "cannot make a certificate for $1"
}

# sf_pam_dir DIR OATH_DIR: DIR/ktlstun is the shipped stack, reading the users' files
# from OATH_DIR instead of /etc/ktlstun/oath.
sf_pam_dir() {
    mkdir -p "$1" "$2"
    sed "s|/etc/ktlstun/oath/|$2/|" "$SF_REPO/pam/ktlstun" >"$1/ktlstun"
    grep -qF "usersfile=$2/\${USER}" "$1/ktlstun" || fail "pam/ktlstun no longer reads /etc/ktlstun/oath/\${USER}"
}

# sf_enrol OATH_DIR USER TOTP|HOTP: USER's pam_oath file with the test secret (the
# README's enrolment, minus the QR code).
sf_enrol() {
    if [ "$3" = TOTP ]; then
        printf 'HOTP/T30 %s - %s\n' "$2" "$SF_SECRET" >"$1/$2"
    else
        printf 'HOTP %s - %s 0\n' "$2" "$SF_SECRET" >"$1/$2"
    fi
    chmod 600 "$1/$2"
}

sf_totp() { oathtool --totp "$SF_SECRET"; }
sf_hotp() { oathtool --hotp -c "$1" "$SF_SECRET"; }

# sf_gated_tunnel NAME LISTEN TARGET ["KEY = VALUE"]...: a server tunnel section (as
# server_tunnel) that admits the users' certificates only after a second-factor login
# through the PAM stack in $TEST_DIR/pam.d, with identities mapped by users.map.
sf_gated_tunnel() {
    server_tunnel "$1" "$2" "$3" "ca = $TEST_DIR/users-ca.pem" "second_factor = pam" \
        "pam_confdir = $TEST_DIR/pam.d" "user_map = file:$TEST_DIR/users.map" "${@:4}"
}

# sf_client_tunnel NAME LISTEN_PORT SERVER_PORT CERT_NAME: a client tunnel section with
# CERT_NAME's certificate (made by sf_cert).
sf_client_tunnel() {
    client_tunnel "$1" "$2" "$3" "cert = $TEST_DIR/$4.pem" "key = $TEST_DIR/user.key"
}

# sf_alice_vpn ["KEY = VALUE"]...: the setup of the tests with one user: the users' CA,
# alice's certificate, a local user for her (SF_USER) enrolled for HOTP in
# $TEST_DIR/oath behind the shipped stack in $TEST_DIR/pam.d, users.map mapping
# cn:alice to her; an echo backend; and SF_CONF ($TEST_DIR/ktlstund.ini) with the gated
# tunnel [vpn] (the arguments added to it) in front of the backend and alice's client
# tunnel [c-alice] to it. [vpn]'s address in SF_VPN.
sf_alice_vpn() {
    local echo_port vpn_port client_port
    sf_make_ca
    sf_cert alice
    sf_user alice
    sf_pam_dir "$TEST_DIR/pam.d" "$TEST_DIR/oath"
    sf_enrol "$TEST_DIR/oath" "$SF_USER" HOTP
    printf 'cn:alice %s\n' "$SF_USER" >"$TEST_DIR/users.map"

    echo_port=$(free_port) vpn_port=$(free_port) client_port=$(free_port)
    start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
    SF_CONF="$TEST_DIR/ktlstund.ini"
    SF_VPN="127.0.0.1:$vpn_port"
    {
        global_section
        sf_gated_tunnel vpn "$vpn_port" "$echo_port" "$@"
        sf_client_tunnel c-alice "$client_port" "$vpn_port" alice
    } >"$SF_CONF"
}

# sf_login CONFIG TUNNEL ANSWER OUTFILE: `ktlstun login` with the answer on a pipe;
# exit status in SF_RC, stdout+stderr in OUTFILE.
sf_login() {
    SF_RC=0
    "$KTLSTUN" login "$2" -c "$1" --answer-fd 3 3<<<"$3" >"$4" 2>&1 </dev/null || SF_RC=$?
}

# sf_expect_login CONFIG TUNNEL ANSWER STATUS TEXT MESSAGE: the login exits STATUS and
# says TEXT.
sf_expect_login() {
    local out="$TEST_DIR/login.$RANDOM.out"
    sf_login "$1" "$2" "$3" "$out"
    [ "$SF_RC" = "$4" ] || fail "$6: ktlstun login exited $SF_RC, expected $4: $(cat "$out")"
    grep -q${SF_GREP_MODE:-F} -- "$5" "$out" || fail "$6: '$5' not in: $(cat "$out")"
}

# sf_expect_login_matching: sf_expect_login with MESSAGE an extended regular expression
# (for texts that carry a time, which moves while the test runs).
sf_expect_login_matching() {
    SF_GREP_MODE=E sf_expect_login "$@"
}

# sf_data ADDR CERT_NAME TOKEN: 0 when a data connection with CERT_NAME's certificate
# echoes TOKEN (openssl s_client; its stderr in $TEST_DIR/data.out.err).
sf_data() {
    tls_echo "$1" "$3" "$TEST_DIR/data.out" -CAfile "$PKI/ca.pem" -verify_return_error \
        -verify_hostname localhost -cert "$TEST_DIR/$2.pem" -key "$TEST_DIR/user.key"
}

# sf_expect_denied ADDR CERT_NAME MESSAGE: the data connection is refused with a TLS
# insufficient_security alert (the gate's "log in first", not the allow rules'
# access_denied).
sf_expect_denied() {
    if sf_data "$1" "$2" "denied-$RANDOM"; then
        fail "$3: data flowed"
    fi
    grep -q 'alert insufficient security' "$TEST_DIR/data.out.err" ||
        fail "$3: no insufficient_security alert: $(cat "$TEST_DIR/data.out.err")"
}
