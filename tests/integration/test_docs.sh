#!/usr/bin/env bash
# What users read says what the code does, and nothing else:
#
#   1. No planning talk in README.md, ARCHITECTURE.md, pam/README.md, the man pages,
#      units/, etc/, bench/ (scripts, tools and results: what a benchmark prints), or
#      in the string literals of daemon/ (log lines and messages). PLANNING below
#      lists the phrases; they are whole words, so "issuer" or "issues" are fine.
#      The check is shown to catch a planted phrase first.
#   2. etc/ktlstun.ini and every etc/examples/*.ini pass `ktlstund -t` once their
#      certificate, key, CA and CRL paths point at the test PKI and each listener at
#      a free loopback port.
#   3. Every refusal message a user can see has a row in the README's
#      "Troubleshooting" section. The convention (ARCHITECTURE.md, Conventions):
#        - in daemon/tls, auth, worker, helper and cli, a refusal's text is written
#          with snprintf or append into a buffer or field whose name ends in
#          `refusal` or `reason` (`peer->refusal`, `end_reason`, ...); in
#          tls/verify_reason.c, tls/tls_context.c and tls/allow.c the reason
#          builders write into `buf`; what `ktlstun login` tells the user goes
#          through say(stderr, ...), and `ktlstun status` prints its errors with
#          fprintf(stderr, ...);
#        - the message's KEY is the longest stretch of its format text between two
#          conversions (%s, %llu, ...) or line ends, without the blanks and
#          punctuation at either end: for "max_connections (%llu) reached" it is
#          "max_connections (", trimmed to "max_connections";
#        - README's Troubleshooting section must contain each KEY verbatim (in the
#          Message column, with … for what varies).
#      A literal that is only a piece of a message (a subject, a date) or not a
#      refusal goes into NOT_MESSAGES below, with its key. The check is shown to
#      catch a planted new refusal first. So: a new refusal message needs a README
#      row, and the test says which one is missing.
#   4. The README's first tunnel, s_client examples, the unit's rating, the OTP files
#      and the metric labels agree with the code.
#   5. Every configuration key the parser takes has a README reference row with its
#      default, and a line (set or commented) in etc/ktlstun.ini.
source "$(dirname "$0")/lib.sh"

repo=$(cd "$(dirname "$0")/../.." && pwd)

# ---- 1. planning vocabulary
PLANNING='\bissue #?[0-9]+|\bthe issue\b|\bthe bar\b|\b(targets?|goals?) (were |was |are |is )?met\b|\bacceptance\b|\bTODO\(issue|\bmilestones?\b|\bstop [0-9]+\b|\bthe ask\b|\bdeliverables?\b|\bthe brief\b|\bper the (brief|issue|ticket)\b|\bsprint\b|\bas requested\b'

# planning_talk FILE...: prints each line of FILE that uses planning vocabulary.
planning_talk() {
    grep -HniE "$PLANNING" "$@" || true
}

# daemon_strings: the string literals of daemon/'s C sources, one per line, as
# FILE:LINE: "TEXT".
daemon_strings() {
    perl -ne 'while (/"((?:[^"\\]|\\.)*)"/g) { print "$ARGV:$.: \"$1\"\n" } close ARGV if eof' \
        $(find "$repo/daemon" -name '*.c' -o -name '*.h' | sort)
}

planted="$TEST_DIR/planted.md"
{
    echo "The issuer of a certificate; issues with a reload are logged."
    echo "Handshake rate: all targets met."
} >"$planted"
found=$(planning_talk "$planted")
assert_contains "$found" "all targets met" "the check misses a planted phrase"
assert_not_contains "$found" "issuer" "the check flags 'issuer'"
[ "$(echo "$found" | wc -l)" = 1 ] || fail "the check flags more than the planted line: $found"
strings_file="$TEST_DIR/strings.txt"
daemon_strings >"$strings_file"
[ "$(wc -l <"$strings_file")" -gt 1000 ] || fail "too few daemon strings found: $(wc -l <"$strings_file")"
echo 'x.c:1: "stop 3 done: the bar is met"' >"$TEST_DIR/planted-strings.txt"
[ -n "$(planning_talk "$TEST_DIR/planted-strings.txt")" ] || fail "the check misses a planted log string"

docs=("$repo/README.md" "$repo/ARCHITECTURE.md" "$repo/pam/README.md")
mapfile -t more < <(find "$repo/units" "$repo/etc" "$repo/bench" -type f \
    ! -name '*.png' ! -name '*.json' | sort)
found=$(planning_talk "${docs[@]}" "${more[@]}"; grep -iE "$PLANNING" "$strings_file" || true)
[ -z "$found" ] || fail "planning talk in what users read:
$found"
note "no planning talk in $((${#docs[@]} + ${#more[@]})) files and $(wc -l <"$strings_file") daemon strings"

# ---- 2. the sample configuration and the examples pass ktlstund -t
# example_for_check FILE PORT: FILE with its certificate, key, CA and CRL paths
# pointed at the test PKI and each listener on its own loopback port from PORT on.
example_for_check() {
    awk -v pki="$PKI" -v port="$2" '
        function file_of(path, kind,   base) {
            base = path; sub(/.*\//, "", base); sub(/\.[a-z]+$/, "", base)
            if (kind == "ca") return path ~ /\/$/ ? pki "/cadir" : pki "/ca.pem"
            if (kind == "crl") return pki "/crl.pem"
            if (base ~ /^(alice|client)$/) return pki "/alice." (kind == "key" ? "key" : "pem")
            if (base ~ /^site-/) return pki "/server-noeku." (kind == "key" ? "key" : "pem")
            return pki "/server." (kind == "key" ? "key" : "pem")
        }
        /^[ \t]*(cert|key|ca|crl)[ \t]*=/ {
            kind = $0; sub(/^[ \t]*/, "", kind); sub(/[ \t]*=.*/, "", kind)
            value = $0; sub(/^[^=]*=[ \t]*/, "", value)
            print kind " = " file_of(value, kind); next
        }
        /^[ \t]*listen[ \t]*=/ { print "listen = 127.0.0.1:" port++; next }
        { print }' "$1"
}
ktls_here=1
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null || ktls_here=0
checked=0
for example in "$repo/etc/ktlstun.ini" "$repo"/etc/examples/*.ini; do
    copy="$TEST_DIR/$(basename "$example")"
    example_for_check "$example" "$(free_port)" >"$copy"
    if [ "$ktls_here" = 0 ] && grep -qE '^[ \t]*ktls[ \t]*=[ \t]*require' "$copy"; then
        note "$(basename "$example"): ktls = require checked as auto (this kernel has no tls ULP)"
        sed -i -E 's/^([ \t]*ktls[ \t]*=[ \t]*)require/\1auto/' "$copy"
    fi
    out=$("$KTLSTUND" -t -c "$copy" 2>&1) || fail "ktlstund -t refuses $example:
$out"
    checked=$((checked + 1))
done
grep -qE '^second_factor[ \t]*=[ \t]*pam' "$repo/etc/examples/gateway-server.ini" ||
    fail "the remote-access example does not set second_factor"
note "ktlstund -t accepts etc/ktlstun.ini and the examples ($checked files)"

# ---- 3. every refusal message has a README troubleshooting row
# Keys of literals that are pieces of a message or not refusals (see the header).
NOT_MESSAGES=(
    "no certificate" "unreadable subject" "CN=" "unknown" "unreadable date" "unreadable key"
    "bits" "not in" "local" "granted until" "login" "usage" "ktlstun login" "ktlstun"
)

# refusal_keys FILE...: prints FILE<TAB>KEY for each refusal message in FILE (the
# convention in the header).
refusal_keys() {
    perl -e '
        local $/;
        for my $f (@ARGV) {
            open my $fh, "<", $f or die "$f: $!";
            my $s = <$fh>;
            close $fh;
            $s =~ s{/\*.*?\*/}{}gs;
            $s =~ s{//[^\n]*}{}g;
            my $builder = $f =~ m{tls/(verify_reason|tls_context|allow)\.c$};
            while ($s =~ /\b(snprintf|append|say|fprintf)\s*\(\s*([^,()]+(?:\([^()]*\))?)\s*,[^";{}]*?((?:"(?:[^"\\]|\\.)*"\s*)+)/g) {
                my ($fn, $sink, $lits) = ($1, $2, $3);
                $sink =~ s/\s+$//;
                my $ours = ($fn eq "snprintf" || $fn eq "append") && $sink =~ /(refusal|reason)$/;
                $ours ||= $builder && $sink eq "buf";
                $ours ||= $fn eq "say" && $sink eq "stderr";
                $ours ||= $fn eq "fprintf" && $sink eq "stderr" && $f =~ m{cli/status_client\.c$};
                next unless $ours;
                my $text = join "", ($lits =~ /"((?:[^"\\]|\\.)*)"/g);
                $text =~ s/\\"/"/g;
                my $key = "";
                for my $part (split /%[-+ #0-9.*]*(?:hh|h|ll|l|z|j|t)?[diouxXcsp%]|\\n/, $text) {
                    $part =~ s/^[^A-Za-z0-9_`]+//;
                    $part =~ s/[^A-Za-z0-9_`]+$//;
                    $key = $part if length($part) > length($key);
                }
                print "$f\t$key\n" if $key ne "";
            }
        }' "$@"
}

# missing_rows SOURCES...: prints each KEY of SOURCES missing from the README's
# Troubleshooting section (as FILE: KEY).
missing_rows() {
    local section="$TEST_DIR/troubleshooting.md" file key skip
    sed -n '/^## Troubleshooting$/,/^## /p' "$repo/README.md" >"$section"
    [ -s "$section" ] || fail "README.md has no '## Troubleshooting' section"
    refusal_keys "$@" | while IFS=$'\t' read -r file key; do
        skip=0
        for part in "${NOT_MESSAGES[@]}"; do
            [ "$key" = "$part" ] && skip=1
        done
        [ "$key" = "${key#usage}" ] || skip=1
        [ "$skip" = 1 ] || grep -qF -- "$key" "$section" || echo "${file#"$repo"/}: $key"
    done
}

mapfile -t sources < <(find "$repo/daemon/tls" "$repo/daemon/auth" "$repo/daemon/worker" \
    "$repo/daemon/helper" "$repo/daemon/cli" -name '*.c' | sort)
keys=$(refusal_keys "${sources[@]}" | wc -l)
[ "$keys" -gt 60 ] || fail "only $keys refusal messages found in the sources: the extraction broke"
mkdir -p "$TEST_DIR/planted/daemon/worker"
cat >"$TEST_DIR/planted/daemon/worker/planted.c" <<'C'
static void f(char *refusal, size_t len, const char *who)
{
    snprintf(refusal, len, "a refusal nobody documented "
                           "yet (%s)", who);
}
C
assert_eq "$(repo=$repo missing_rows "$TEST_DIR/planted/daemon/worker/planted.c")" \
    "$TEST_DIR/planted/daemon/worker/planted.c: a refusal nobody documented yet" \
    "the check misses a planted refusal"
missing=$(missing_rows "${sources[@]}")
[ -z "$missing" ] || fail "refusal messages without a row in README.md's Troubleshooting section:
$missing"
note "all $keys refusal messages have a troubleshooting row"

# ---- 4. facts the docs state, against the code
readme="$repo/README.md"
# The quick start's gateway file works as the shipped unit runs it: no user = (the
# unit already is ktlstun), no port below 1024 (that needs the socket unit).
quick="$TEST_DIR/quickstart.ini"
awk '/^## A first tunnel$/ { on = 1 } on && /^```ini$/ { n++; if (n == 1) { grab = 1; next } }
     grab && /^```$/ { exit } grab { print }' "$readme" >"$quick"
grep -q '^mode *= *server' "$quick" || fail "no gateway file in the README's first tunnel: $(cat "$quick")"
! grep -qE '^[ \t]*user[ \t]*=' "$quick" || fail "the first tunnel sets user =, which the shipped unit does not want"
port=$(sed -n 's/^listen *= *[^ ]*:\([0-9][0-9]*\).*/\1/p' "$quick")
[ -n "$port" ] && [ "$port" -ge 1024 ] ||
    fail "the first tunnel listens on port '$port': below 1024 it needs the socket unit under systemd"
sed -i 's/ *#.*//' "$quick"
example_for_check "$quick" "$(free_port)" >"$quick.checked"
out=$("$KTLSTUND" -t -c "$quick.checked" 2>&1) || fail "ktlstund -t refuses the README's first tunnel: $out"
# s_client sends only the leaf of -cert: the example needs -cert_chain.
grep -E 'openssl s_client .*-cert ' "$readme" | grep -v -- '-cert_chain' | grep . &&
    fail "an openssl s_client example with -cert lacks -cert_chain"
grep -qE 'openssl s_client .*-cert_chain' "$readme" || fail "no openssl s_client example with -cert_chain"
# The unit's rating: the README's figure is the man page's.
figure=$(sed -n 's/^### Hardening: \([0-9.]*\)$/\1/p' "$readme")
[ -n "$figure" ] || fail "no Hardening figure in the README"
grep -q "rates it $figure" "$repo/units/man/ktlstund.8" || fail "ktlstund(8) does not give the unit's rating $figure"
if command -v systemd-analyze >/dev/null; then
    measured=$(systemd-analyze security --offline=true --no-pager "$repo/units/ktlstund.service" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p')
    assert_eq "$figure" "$measured" "the README's rating of the unit against systemd-analyze security"
fi
# The OTP files: one per user, where /etc/pam.d/ktlstun puts them.
usersfile=$(sed -n 's/.*usersfile=\([^ ]*\).*/\1/p' "$repo/pam/ktlstun")
assert_eq "$usersfile" '/etc/ktlstun/oath/${USER}' "pam_oath's usersfile in pam/ktlstun"
for doc in "$readme" "$repo/units/man/ktlstund.8"; do
    grep -q 'usersfile=/etc/ktlstun/oath/\${USER}' "$doc" || fail "$doc does not name pam_oath's usersfile"
    ! grep -q 'users\.oath' "$doc" || fail "$doc names a single users.oath file"
done
# The expiry metric's kind label: exactly the kinds metrics.c writes.
code_kinds=$(grep -o 'kind=\\"[a-z]*\\"' "$repo/daemon/supervisor/metrics.c" | sed 's/kind=\\"\(.*\)\\"/\1/' | sort -u | paste -sd,)
row=$(grep '^| `ktlstun_certificate_expiry_seconds`' "$readme")
doc_kinds=$(echo "$row" | sed -n 's/.*`kind` = \([^;|]*\).*/\1/p' | grep -o '`[a-z]*`' | tr -d '`' | sort -u | paste -sd,)
assert_eq "$doc_kinds" "$code_kinds" "the kinds of ktlstun_certificate_expiry_seconds in the README"
note "quick start, s_client, rating, OTP files and metric labels agree with the code"

# ---- every configuration key has a row in the README's reference, with its default
# (the tables in daemon/config/*_keys.c and global_keys.c list every key the parser
# takes), and etc/ktlstun.ini names it.
config_keys=$(grep -ho '^ *{ "[a-z_0-9]*", ' "$repo"/daemon/config/*.c | sed 's/.*{ "\([a-z_0-9]*\)".*/\1/' | sort -u)
[ "$(echo "$config_keys" | wc -l)" -gt 50 ] || fail "only $(echo "$config_keys" | wc -l) configuration keys found: the extraction broke"
for key in $config_keys; do
    grep -qE "^\| \`$key\` \|( [a-z ,]+ \|)? [^|]*[^ |][^|]* \|" "$readme" ||
        fail "configuration key $key has no row with a default in the README's reference"
    grep -qE "^[#;]? *$key *=" "$repo/etc/ktlstun.ini" ||
        fail "configuration key $key is not in etc/ktlstun.ini"
done
note "$(echo "$config_keys" | wc -l) configuration keys: each has a README row and an etc/ktlstun.ini line"
