#!/usr/bin/env bash
# Second factor from a browser (browser_login = yes): a browser without a grant gets
# the login page instead of the alert, with its security headers (CSP, no framing, no
# caching, no referrer) and a CSRF token; the same PAM conversation, counting and
# login log as `ktlstun login`; one form per prompt on a two-prompt stack; a wrong code
# shows the form again and counts, max_failures locks; a forged token is 403 and
# counts nothing; the way back is a local path only. Clients that offer no http/1.1,
# and tunnels without browser_login, still get the insufficient_security alert.
# End to end in Debian's Chromium (headless, driven by ChromeDriver over WebDriver
# with curl and jq): its client certificate from an NSS database, selected by the
# managed policy AutoSelectCertificateForUrls (removed at exit); wrong code, right
# code, the backend's page. The login page's screenshot is saved in the test's
# directory (and copied to $KTLSTUN_SCREENSHOT_DIR when set).
source "$(dirname "$0")/lib.sh"

for tool in chromium chromedriver certutil pk12util python3; do
    command -v "$tool" >/dev/null || fail "$tool is needed (chromium chromium-driver libnss3-tools python3)"
done
client="$(dirname "$0")/web_client.py"

sf_make_ca
for name in alice bob carol dave erin frank; do
    sf_cert "$name"
done
sf_user alice; u_alice=$SF_USER
sf_user bob; u_bob=$SF_USER
sf_user carol; u_carol=$SF_USER
sf_user dave; u_dave=$SF_USER
sf_user erin; u_erin=$SF_USER
sf_user frank; u_frank=$SF_USER
oath="$TEST_DIR/oath"
sf_pam_dir "$TEST_DIR/pam.d" "$oath"
for u in "$u_alice" "$u_bob" "$u_carol" "$u_dave" "$u_erin" "$u_frank"; do
    sf_enrol "$oath" "$u" HOTP
done
# A stack with two prompts: the shipped one's code, then a second code from its own
# file (same secret, its own counter).
mkdir -p "$TEST_DIR/oath2"
sf_enrol "$TEST_DIR/oath2" "$u_bob" HOTP
sed "s|usersfile=$oath/|usersfile=$TEST_DIR/oath2/|" "$TEST_DIR/pam.d/ktlstun" | grep '^auth' |
    sed 's/^auth *required/auth requisite/' >"$TEST_DIR/second.auth"
sed "/^auth/r $TEST_DIR/second.auth" "$TEST_DIR/pam.d/ktlstun" >"$TEST_DIR/pam.d/ktlstun-two"
[ "$(grep -c '^auth.*pam_oath' "$TEST_DIR/pam.d/ktlstun-two")" = 2 ] || fail "two-prompt stack not made"
cat >"$TEST_DIR/users.map" <<EOF
cn:alice $u_alice
cn:bob   $u_bob
cn:carol $u_carol
cn:dave  $u_dave
cn:erin  $u_erin
cn:frank $u_frank
EOF

# The backend: a web server with a page the test knows.
mkdir -p "$TEST_DIR/www/app"
echo '<!DOCTYPE html><html><head><title>Backend</title></head><body><h1 id="backend">ktlstun backend page</h1></body></html>' \
    >"$TEST_DIR/www/app/index.html"
p_backend=$(free_port) p_web=$(free_port) p_two=$(free_port) p_off=$(free_port)
spawn "$TEST_DIR/backend.out" python3 -m http.server --bind 127.0.0.1 --directory "$TEST_DIR/www" "$p_backend"
wait_listening "$p_backend" || fail "the backend did not start: $(cat "$TEST_DIR/backend.out")"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    sf_gated_tunnel web "$p_web" "$p_backend" "browser_login = yes" "max_failures = 3"
    sf_gated_tunnel two "$p_two" "$p_backend" "browser_login = yes" "pam_service = ktlstun-two" \
        "handshake_timeout = 2s"
    sf_gated_tunnel off "$p_off" "$p_backend"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

# page PORT CERT PATH STEP...: web_client.py's responses, in $TEST_DIR/page.out too.
page() {
    python3 "$client" localhost "$1" "$TEST_DIR/$2.pem" "$TEST_DIR/user.key" "$PKI/ca.pem" "${@:3}" \
        >"$TEST_DIR/page.out" 2>&1 || fail "web_client.py failed: $(cat "$TEST_DIR/page.out")"
}
# curl_user CERT ARGS...: curl with CERT's certificate, trusting the suite's CA.
curl_user() {
    curl -sS --max-time 10 --cacert "$PKI/ca.pem" --cert "$TEST_DIR/$1.pem" --key "$TEST_DIR/user.key" "${@:2}"
}

note "the login page: security headers, a CSRF token, a one-time-code field"
headers=$(curl_user alice -D - -o "$TEST_DIR/form.html" "https://localhost:$p_web/app/")
for header in "HTTP/1.1 200 OK" "Content-Security-Policy: default-src 'none'; style-src 'sha256-" \
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'" "X-Frame-Options: DENY" \
    "Cache-Control: no-store" "Referrer-Policy: no-referrer"; do
    assert_contains "$headers" "$header" "login page header"
done
form=$(cat "$TEST_DIR/form.html")
assert_contains "$form" 'type="password" autocomplete="one-time-code"' "the OTP field"
assert_contains "$form" 'name="csrf" value="' "the CSRF token"
assert_contains "$form" "One-time password" "PAM's prompt on the page"
assert_not_contains "$form" "<script" "the page has no script"
assert_not_contains "$form" "http" "the page loads nothing from elsewhere"
# The inline style is what the CSP's hash allows.
style=$(sed -n 's/.*<style>\(.*\)<\/style>.*/\1/p' "$TEST_DIR/form.html")
hash=$(printf '%s' "$style" | openssl dgst -sha256 -binary | base64)
assert_contains "$headers" "style-src 'sha256-$hash'" "the CSP's style hash"

note "a POST without the page's token is 403 and counts nothing"
status=$(curl_user alice -o /dev/null -w '%{http_code}' --data 'csrf=00&answer=123456' \
    "https://localhost:$p_web/.ktlstun/login")
assert_eq "$status" 403 "POST with a forged token"
page "$p_web" alice /app/ "csrf=$(printf '%064d' 0):$(sf_hotp 0)"
assert_contains "$(cat "$TEST_DIR/page.out")" "=== 403" "a wrong token on the live form"
assert_contains "$(cat "$TEST_DIR/page.out")" "not valid any more" "the 403 page says why"
assert_no_log "$log" 'second-factor failure: tunnel=web identity="alice"' "a forged token counted as a failure"

assert_eq "$(log_count "$TEST_DIR/backend.out" '"GET ')" 0 "a connection without a grant reached the backend"

note "a wrong code shows the form again and counts; the right one sends the browser back"
page "$p_web" alice "/app/?q=1" 999999 "$(sf_hotp 0)"
out=$(cat "$TEST_DIR/page.out")
assert_contains "$out" 'id="error">Login failed: ' "the wrong code's failure on the page"
assert_contains "$out" "=== 303" "the right code: 303 See Other"
assert_contains "$out" "Location: /app/?q=1" "back to the page first asked for"
assert_contains "$out" "Connection: close" "the next request opens a new connection"
assert_log "$log" 'second-factor failure: tunnel=web identity="alice".* failures=1/3' "the wrong code in the login log"
status_json=$("$KTLSTUN" status --json -c "$conf")
assert_eq "$(echo "$status_json" | jq '[.grants[] | select(.tunnel == "web" and .identity == "alice")] | length')" 1 \
    "alice's grant in ktlstun status"
assert_contains "$(curl_user alice "https://localhost:$p_web/app/")" "ktlstun backend page" \
    "with the grant, the backend's page"

note "the way back is a local path only"
page "$p_web" bob "//evil.example/x" "$(sf_hotp 0)"
assert_contains "$(cat "$TEST_DIR/page.out")" $'Location: /\n' "no open redirect"

note "a connection opened before the login is sent to a new one once the grant exists"
spawn "$TEST_DIR/early.out" python3 "$client" localhost "$p_web" "$TEST_DIR/frank.pem" "$TEST_DIR/user.key" \
    "$PKI/ca.pem" - "wait:$TEST_DIR/logged-in" "get:/app/?later"
early=$SPAWN_PID
assert_log "$TEST_DIR/early.out" '^=== connected' "the early connection"
page "$p_web" frank /app/ "$(sf_hotp 0)"
assert_contains "$(cat "$TEST_DIR/page.out")" "=== 303" "frank's login"
touch "$TEST_DIR/logged-in"
wait_exit "$early" 10 || fail "the early connection did not end"
assert_contains "$(cat "$TEST_DIR/early.out")" "Location: /app/?later" "the early connection: to a new one"
assert_log "$log" 'login page: the certificate holds a grant now' "the early connection's end"

note "a two-prompt stack: one form per prompt"
page "$p_two" bob /app/ "$(sf_hotp 1)" "$(sf_hotp 0)"
out=$(cat "$TEST_DIR/page.out")
[ "$(grep -c 'name="answer"' <<<"$out")" = 2 ] || fail "two prompts, two forms: $out"
assert_contains "$out" "=== 303" "both codes: granted"

note "a client that trickles its request is cut at handshake_timeout"
# The rest of the request never comes: the fifo stays open until the cut is logged.
spawn_fed trickle "exec timeout 8 openssl s_client -quiet -alpn http/1.1 \
    -connect 127.0.0.1:$p_two -CAfile '$PKI/ca.pem' -cert '$TEST_DIR/dave.pem' \
    -key '$TEST_DIR/user.key'"
printf 'GET /app/ HTT' >&"$FED_FD"
assert_log "$log" 'audit tunnel=two .*subject="CN=dave".* duration=[23]\.[0-9]+s close="login: no login attempt began in time"' \
    "the trickling client cut at handshake_timeout (2s)" 8
exec {FED_FD}>&-
wait_exit "$SPAWN_PID" 10 || true

note "no http/1.1 offered, or browser_login = no: the alert as before"
if curl_user dave --no-alpn -o /dev/null "https://localhost:$p_web/app/" 2>"$TEST_DIR/noalpn.err"; then
    fail "a client without http/1.1 got a page"
fi
assert_contains "$(cat "$TEST_DIR/noalpn.err")" "insufficient security" "no ALPN: the alert"
if curl_user dave -o /dev/null "https://localhost:$p_off/app/" 2>"$TEST_DIR/off.err"; then
    fail "browser_login = no gave a page"
fi
assert_contains "$(cat "$TEST_DIR/off.err")" "insufficient security" "browser_login = no: the alert"

note "Chromium, headless, driven by ChromeDriver: erin's certificate from NSS, a wrong code, the right one, the backend"
# Chromium reads client certificates and trust from $HOME/.pki/nssdb.
home="$TEST_DIR/home"
nssdb="sql:$home/.pki/nssdb"
mkdir -p "$home/.pki/nssdb"
certutil -N -d "$nssdb" --empty-password
openssl pkcs12 -export -in "$TEST_DIR/erin.pem" -inkey "$TEST_DIR/user.key" -name erin \
    -out "$TEST_DIR/erin.p12" -passout pass: 2>/dev/null
pk12util -i "$TEST_DIR/erin.p12" -d "$nssdb" -W '' >/dev/null
certutil -A -d "$nssdb" -n "ktlstun test CA" -t "C,," -i "$PKI/ca.pem"
# The managed policy that presents erin's certificate to the tunnel without a prompt;
# removed at exit, with the folders this test made for it.
policy_dir=/etc/chromium/policies/managed
made_dirs=
for d in /etc/chromium/policies /etc/chromium/policies/managed; do
    [ -d "$d" ] || made_dirs="$d $made_dirs"
done
policy="$policy_dir/ktlstun-test-browser-login-$$.json"
trap 'sf_rc=$?; rm -f "$policy"; for d in $made_dirs; do rmdir "$d" 2>/dev/null || true; done; sf_cleanup; (exit $sf_rc); cleanup' EXIT
mkdir -p "$policy_dir"
printf '{"AutoSelectCertificateForUrls": ["{\\"pattern\\":\\"https://localhost:%s\\",\\"filter\\":{}}"]}\n' \
    "$p_web" >"$policy"
jq -e . "$policy" >/dev/null || fail "policy file is not JSON"

p_driver=$(free_port)
spawn "$TEST_DIR/chromedriver.out" env HOME="$home" chromedriver --port="$p_driver"
wait_listening "$p_driver" || fail "chromedriver did not start: $(cat "$TEST_DIR/chromedriver.out")"
wd="http://127.0.0.1:$p_driver"
# webdriver METHOD PATH [JSON]: one WebDriver command; prints its .value.
webdriver() {
    local reply
    reply=$(curl -sS --max-time 60 -X "$1" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$wd$2") || fail "WebDriver $1 $2: no reply"
    jq -e 'has("value")' <<<"$reply" >/dev/null || fail "WebDriver $1 $2: $reply"
    if jq -e '.value | type == "object" and has("error")' <<<"$reply" >/dev/null; then
        fail "WebDriver $1 $2: $(jq -r '.value.error + ": " + .value.message' <<<"$reply")"
    fi
    jq -r '.value' <<<"$reply"
}
capabilities=$(jq -nc --arg profile "$TEST_DIR/profile" '{capabilities: {alwaysMatch: {
    browserName: "chrome", "goog:chromeOptions": {binary: "/usr/bin/chromium",
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=720,560",
           "--user-data-dir=" + $profile, "--no-first-run"]}}}}')
session=$(webdriver POST /session "$capabilities" | jq -r .sessionId)
[ -n "$session" ] && [ "$session" != null ] || fail "no WebDriver session"
s="/session/$session"
# fill TEXT: types TEXT into the answer field and submits the form.
fill() {
    local element
    element=$(webdriver POST "$s/element" '{"using": "css selector", "value": "#answer"}' |
        jq -r 'to_entries[0].value')
    webdriver POST "$s/element/$element/value" "$(jq -nc --arg t "$1" '{text: $t}')" >/dev/null
    element=$(webdriver POST "$s/element" '{"using": "css selector", "value": "#submit"}' |
        jq -r 'to_entries[0].value')
    webdriver POST "$s/element/$element/click" '{}' >/dev/null
}
backend_before=$(log_count "$TEST_DIR/backend.out" '"GET /app/ HTTP/1.1" 200')
webdriver POST "$s/url" "$(jq -nc --arg u "https://localhost:$p_web/app/" '{url: $u}')" >/dev/null
assert_eq "$(webdriver GET "$s/title")" "Log in to web" "Chromium shows the login page"
webdriver GET "$s/screenshot" | base64 -d >"$TEST_DIR/browser-login.png"
[ "$(head -c 8 "$TEST_DIR/browser-login.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] ||
    fail "the screenshot is not a PNG"
if [ -n "${KTLSTUN_SCREENSHOT_DIR:-}" ]; then
    cp "$TEST_DIR/browser-login.png" "$KTLSTUN_SCREENSHOT_DIR/browser-login.png"
fi
fill 000000
assert_contains "$(webdriver GET "$s/source")" "Login failed: " "Chromium: the wrong code's failure"
assert_log "$log" 'second-factor failure: tunnel=web identity="erin"' "Chromium's wrong code in the login log"
fill "$(sf_hotp 0)"
assert_eq "$(webdriver GET "$s/title")" "Backend" "Chromium: the backend's page after the login"
assert_contains "$(webdriver GET "$s/source")" "ktlstun backend page" "Chromium: the backend's page"
assert_contains "$(webdriver GET "$s/url")" "https://localhost:$p_web/app/" "Chromium: back at the page first asked for"
assert_log "$log" 'second-factor success: tunnel=web identity="erin"' "Chromium's login in the login log"
[ "$(log_count "$TEST_DIR/backend.out" '"GET /app/ HTTP/1.1" 200')" -gt "$backend_before" ] ||
    fail "Chromium's request did not reach the backend: $(cat "$TEST_DIR/backend.out")"
assert_eq "$("$KTLSTUN" status --json -c "$conf" | jq '[.grants[] | select(.identity == "erin")] | length')" 1 \
    "erin's grant in ktlstun status"
webdriver DELETE "$s" >/dev/null

note "max_failures wrong codes lock, and the page says until when (last: the source counts too)"
page "$p_web" carol /app/ 111111 222222 333333
out=$(cat "$TEST_DIR/page.out")
assert_contains "$out" "Locked: " "the lock on the page"
assert_contains "$out" "Try again after " "until when"
assert_log "$log" 'second-factor failure: tunnel=web identity="carol".* failures=3/3' "carol's failures in the login log"

