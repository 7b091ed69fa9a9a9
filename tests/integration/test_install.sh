# test_install.sh — `make install DESTDIR=... PREFIX=/usr` installs exactly the
# documented file list (README, "Installed files"), with sane modes, from the build
# under test without rebuilding it; keeps an existing ktlstun.ini (and an edited PAM
# file); installs man pages that man finds and groff renders without a warning and
# that document every config key, command and option; ships sysusers.d and
# tmpfiles.d files that the real systemd tools accept and that produce the owners
# and modes the unit expects; and `make uninstall` takes it all away again.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/lib.sh"

build=$(dirname "$KTLSTUND")
if [ ! -x "$build/ktlstund" ] || [ ! -x "$build/ktlstun" ]; then
    fail "no binaries in $build"
fi
for tool in groff man systemd-sysusers systemd-tmpfiles; do
    command -v "$tool" >/dev/null || fail "$tool missing (Debian: groff-base, man-db, systemd)"
done

# make_install DEST [VAR=VALUE...]: make install into DEST from the build under test.
# -o: the binaries are taken as they are; make must not relink them (the ASan build
# would be relinked with the wrong flags) nor compile anything else.
installs=0
make_install() {
    local dest=$1 out
    shift
    installs=$((installs + 1))
    out="$TEST_DIR/install-$installs.out"
    env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$repo" --no-print-directory install \
        DESTDIR="$dest" PREFIX=/usr BUILD="$build" -o "$build/ktlstund" -o "$build/ktlstun" "$@" \
        >"$out" 2>&1 || fail "make install DESTDIR=$dest failed: $(tail -n 5 "$out")"
    if grep -E -- "(^| )-o [^ ]*$build/" "$out" | grep -qvE '^install '; then
        fail "make install built something: $(grep -E -- "-o [^ ]*$build/" "$out" | head -n 2)"
    fi
    INSTALL_OUT=$out
}

# The documented list, for PREFIX=/usr: "MODE PATH" relative to DESTDIR. Files other
# engineers ship (PAM service, fail2ban filter, example configs) are listed when the
# source tree has them.
expected_files() {
    cat <<'EOF'
755 usr/sbin/ktlstund
755 usr/bin/ktlstun
644 usr/lib/systemd/system/ktlstund.service
644 usr/lib/systemd/system/ktlstund.socket
644 usr/lib/sysusers.d/ktlstun.conf
644 usr/lib/tmpfiles.d/ktlstun.conf
644 usr/lib/modules-load.d/ktlstun.conf
644 usr/share/man/man1/ktlstun.1
644 usr/share/man/man5/ktlstun.ini.5
644 usr/share/man/man8/ktlstund.8
644 usr/share/doc/ktlstun/examples/systemd/ktlstund-ssh.socket
644 usr/share/doc/ktlstun/examples/systemd/sockets.conf
644 usr/share/doc/ktlstun/examples/systemd/network.conf
644 etc/ktlstun/ktlstun.ini.example
EOF
    local example
    for example in "$repo"/etc/examples/*.ini; do
        [ -e "$example" ] && echo "644 usr/share/doc/ktlstun/examples/$(basename "$example")"
    done
    [ -f "$repo/pam/ktlstun" ] && echo "644 etc/pam.d/ktlstun"
    [ -f "$repo/etc/fail2ban/filter.d/ktlstun.conf" ] && echo "644 etc/fail2ban/filter.d/ktlstun.conf"
    return 0
}

# installed_files DEST: "MODE PATH" of every non-directory under DEST.
installed_files() { (cd "$1" && find . ! -type d -printf '%m %P\n'); }

# --- a fresh install ------------------------------------------------------------

dest="$TEST_DIR/dest"
mkdir "$dest"
before=$(stat -c '%Y %s' "$build/ktlstund" "$build/ktlstun")
make_install "$dest"
assert_eq "$(stat -c '%Y %s' "$build/ktlstund" "$build/ktlstun")" "$before" "the build's binaries after make install"

diff <(expected_files | sort -k2) <(installed_files "$dest" | sort -k2) >"$TEST_DIR/list.diff" ||
    fail "installed files differ from the documented list (< documented, > installed):
$(cat "$TEST_DIR/list.diff")"
note "make install: $(expected_files | wc -l) files, exactly the documented list"

# Directories: world-readable, except the one that will hold keys.
while read -r mode path; do
    case $path in
        etc/ktlstun) assert_eq "$mode" 750 "mode of /etc/ktlstun" ;;
        *) assert_eq "$mode" 755 "mode of directory /$path" ;;
    esac
done < <(cd "$dest" && find . -mindepth 1 -type d -printf '%m %P\n')
[ -z "$(find "$dest" -perm -o+w ! -type l)" ] || fail "world-writable files installed: $(find "$dest" -perm -o+w)"

# Contents: the binaries under test, the files from the tree as they are.
cmp -s "$build/ktlstund" "$dest/usr/sbin/ktlstund" || fail "installed ktlstund is not $build/ktlstund"
cmp -s "$build/ktlstun" "$dest/usr/bin/ktlstun" || fail "installed ktlstun is not $build/ktlstun"
while read -r src installed; do
    cmp -s "$repo/$src" "$dest/$installed" || fail "$installed is not $src"
done <<'EOF'
units/ktlstund.service usr/lib/systemd/system/ktlstund.service
units/ktlstund.socket usr/lib/systemd/system/ktlstund.socket
units/sysusers.d/ktlstun.conf usr/lib/sysusers.d/ktlstun.conf
units/tmpfiles.d/ktlstun.conf usr/lib/tmpfiles.d/ktlstun.conf
kmod-helpers/modules-load.d/ktlstun.conf usr/lib/modules-load.d/ktlstun.conf
etc/ktlstun.ini etc/ktlstun/ktlstun.ini.example
EOF
grep -qx tls "$dest/usr/lib/modules-load.d/ktlstun.conf" || fail "modules-load.d/ktlstun.conf does not load tls"

# A second install over the first changes nothing.
make_install "$dest"
diff <(expected_files | sort -k2) <(installed_files "$dest" | sort -k2) >/dev/null ||
    fail "a second make install changed the file list"

# --- PREFIX reaches the unit ----------------------------------------------------

local_dest="$TEST_DIR/dest-local"
mkdir "$local_dest"
make_install "$local_dest" PREFIX=/usr/local
assert_eq "$(sed -n 's/^ExecStart=//p' "$local_dest/usr/local/lib/systemd/system/ktlstund.service")" \
    "/usr/local/sbin/ktlstund -f" "ExecStart= with PREFIX=/usr/local"
if grep -q '/usr/sbin' "$local_dest/usr/local/lib/systemd/system/ktlstund.service"; then
    fail "ktlstund.service still names /usr/sbin with PREFIX=/usr/local"
fi
for f in usr/local/sbin/ktlstund usr/local/lib/sysusers.d/ktlstun.conf \
         usr/local/share/man/man8/ktlstund.8 etc/ktlstun/ktlstun.ini.example; do
    [ -f "$local_dest/$f" ] || fail "PREFIX=/usr/local: /$f missing"
done

# --- an existing configuration is never touched ---------------------------------

kept="$TEST_DIR/dest-existing"
mkdir -p "$kept/etc/ktlstun"
chmod 0700 "$kept/etc/ktlstun"
printf '# the operator'"'"'s own configuration\n' >"$kept/etc/ktlstun/ktlstun.ini"
chmod 0640 "$kept/etc/ktlstun/ktlstun.ini"
own_ini=$(sha256sum <"$kept/etc/ktlstun/ktlstun.ini")
if [ -f "$repo/pam/ktlstun" ]; then
    mkdir -p "$kept/etc/pam.d"
    { cat "$repo/pam/ktlstun"; echo "# edited here"; } >"$kept/etc/pam.d/ktlstun"
fi
make_install "$kept"
assert_eq "$(sha256sum <"$kept/etc/ktlstun/ktlstun.ini")" "$own_ini" "an existing ktlstun.ini after make install"
assert_eq "$(stat -c %a "$kept/etc/ktlstun/ktlstun.ini")" 640 "mode of an existing ktlstun.ini"
assert_eq "$(stat -c %a "$kept/etc/ktlstun")" 700 "mode of an existing /etc/ktlstun"
[ -f "$kept/etc/ktlstun/ktlstun.ini.example" ] || fail "no ktlstun.ini.example beside an existing ktlstun.ini"
if [ -f "$repo/pam/ktlstun" ]; then
    assert_eq "$(tail -n 1 "$kept/etc/pam.d/ktlstun")" "# edited here" "an edited /etc/pam.d/ktlstun after make install"
    assert_contains "$(cat "$INSTALL_OUT")" "kept $kept/etc/pam.d/ktlstun" "make install says it kept the PAM file"
fi

# --- man pages ------------------------------------------------------------------

man_dir="$dest/usr/share/man"
for page in "1 ktlstun" "5 ktlstun.ini" "8 ktlstund"; do
    read -r section name <<<"$page"
    found=$(man -M "$man_dir" -w "$section" "$name" 2>&1) || fail "man does not find $name($section): $found"
    assert_eq "$found" "$man_dir/man$section/$name.$section" "where man finds $name($section)"
    warnings=$(groff -man -Tutf8 -ww -z "$found" 2>&1)
    [ -z "$warnings" ] || fail "groff warns about $name($section): $warnings"
    text=$(MANWIDTH=80 man -l "$found" 2>"$TEST_DIR/man.err") || fail "man -l $found: $(cat "$TEST_DIR/man.err")"
    [ ! -s "$TEST_DIR/man.err" ] || fail "man -l $found: $(cat "$TEST_DIR/man.err")"
    for heading in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
        grep -q "^$heading" <<<"$text" || fail "$name($section) has no $heading section"
    done
    grep -qE "^ +$name \\\\?- " <<<"$text" || grep -qE "^ +$name - " <<<"$text" ||
        fail "$name($section): NAME line does not start with $name"
done

# The pages document what the code has: every config key, every ktlstun command,
# every ktlstund option (a .TP heading each), so a new one without docs fails here.
keys=$(cat "$repo"/daemon/config/*.c | sed -n 's/^    { "\([a-z0-9_]*\)",.*/\1/p' | sort -u)
[ "$(wc -l <<<"$keys")" -ge 20 ] || fail "found only $(wc -l <<<"$keys") config keys in daemon/config/"
for key in $keys; do
    grep -qE "^\.B[IR]? $key( |$)" "$man_dir/man5/ktlstun.ini.5" || fail "ktlstun.ini(5) does not document '$key'"
done
commands=$("$KTLSTUN" help | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
[ -n "$commands" ] || fail "ktlstun help lists no command"
for command in $commands; do
    re=${command//-/\\\\?-}   # roff writes - as \-
    grep -qE "^\.B $re( |$)" "$man_dir/man1/ktlstun.1" || fail "ktlstun(1) does not document '$command'"
done
options=$("$KTLSTUND" -h | sed -n 's/^  -\([a-zA-Z]\) .*/\1/p')
[ -n "$options" ] || fail "ktlstund -h lists no option"
for option in $options; do
    grep -qE "^\.BI? \\\\-$option( |$)" "$man_dir/man8/ktlstund.8" || fail "ktlstund(8) does not document -$option"
done
note "man pages: found by man, no groff warning, $(wc -w <<<"$keys") keys, $(wc -w <<<"$commands") commands, $(wc -w <<<"$options") options documented"

# --- sysusers.d and tmpfiles.d, applied by the real tools -----------------------

root="$TEST_DIR/root"
mkdir -p "$root/etc" "$root/var/lib" "$root/run"
: >"$root/etc/passwd"
: >"$root/etc/group"
: >"$root/etc/shadow"
: >"$root/etc/gshadow"
systemd-sysusers --root="$root" "$dest/usr/lib/sysusers.d/ktlstun.conf" >"$TEST_DIR/sysusers.out" 2>&1 ||
    fail "systemd-sysusers rejects ktlstun.conf: $(cat "$TEST_DIR/sysusers.out")"
user_line=$(grep '^ktlstun:' "$root/etc/passwd") || fail "systemd-sysusers created no user ktlstun"
uid=$(cut -d: -f3 <<<"$user_line")
gid=$(cut -d: -f4 <<<"$user_line")
if [ "$uid" -le 0 ] || [ "$uid" -ge 1000 ]; then
    fail "ktlstun is not a system user: $user_line"
fi
assert_eq "$(cut -d: -f7 <<<"$user_line")" /usr/sbin/nologin "ktlstun's shell"
assert_eq "$(grep '^ktlstun:' "$root/etc/group" | cut -d: -f3)" "$gid" "group ktlstun is ktlstun's primary group"
# The PAM helper's own user: a system user of its own group, in group ktlstun (it
# reads the configuration), and not the workers' user.
pam_line=$(grep '^ktlstun-pam:' "$root/etc/passwd") || fail "systemd-sysusers created no user ktlstun-pam"
puid=$(cut -d: -f3 <<<"$pam_line")
pgid=$(cut -d: -f4 <<<"$pam_line")
if [ "$puid" -le 0 ] || [ "$puid" -ge 1000 ] || [ "$puid" = "$uid" ] || [ "$pgid" = "$gid" ]; then
    fail "ktlstun-pam is not a system user of its own: $pam_line (ktlstun: $user_line)"
fi
assert_eq "$(cut -d: -f7 <<<"$pam_line")" /usr/sbin/nologin "ktlstun-pam's shell"
assert_eq "$(grep '^ktlstun-pam:' "$root/etc/group" | cut -d: -f3)" "$pgid" "group ktlstun-pam"
assert_eq "$(grep '^ktlstun:' "$root/etc/group" | cut -d: -f4)" "ktlstun-pam" "the members of group ktlstun"
# An operator's per-user OATH file, made as root before the tools ran, gets its owner
# and mode fixed.
mkdir -p "$root/etc/ktlstun/oath"
echo "HOTP alice - 00" >"$root/etc/ktlstun/oath/alice"
chmod 0644 "$root/etc/ktlstun/oath/alice"
systemd-tmpfiles --root="$root" --create "$dest/usr/lib/tmpfiles.d/ktlstun.conf" >"$TEST_DIR/tmpfiles.out" 2>&1 ||
    fail "systemd-tmpfiles rejects ktlstun.conf: $(cat "$TEST_DIR/tmpfiles.out")"
[ ! -s "$TEST_DIR/tmpfiles.out" ] || fail "systemd-tmpfiles warns: $(cat "$TEST_DIR/tmpfiles.out")"
while read -r path want; do
    assert_eq "$(stat -c '%a %u:%g' "$root$path")" "$want" "owner and mode of $path"
done <<EOF
/etc/ktlstun 750 0:$gid
/etc/ktlstun/oath 770 0:$pgid
/etc/ktlstun/oath/alice 600 $puid:$pgid
/var/lib/ktlstun 700 $puid:$pgid
/run/ktlstun 750 $uid:$gid
EOF
note "sysusers.d: system users ktlstun ($uid:$gid) and ktlstun-pam ($puid:$pgid); tmpfiles.d: owners and modes as the unit expects"

# --- uninstall ------------------------------------------------------------------

env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$repo" --no-print-directory uninstall \
    DESTDIR="$dest" PREFIX=/usr >"$TEST_DIR/uninstall.out" 2>&1 ||
    fail "make uninstall failed: $(tail -n 5 "$TEST_DIR/uninstall.out")"
left=$(find "$dest" ! -type d)
[ -z "$left" ] || fail "make uninstall left files behind: $left"
env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$repo" --no-print-directory uninstall \
    DESTDIR="$kept" PREFIX=/usr >"$TEST_DIR/uninstall-kept.out" 2>&1 || fail "make uninstall (kept) failed"
assert_eq "$(sha256sum <"$kept/etc/ktlstun/ktlstun.ini")" "$own_ini" "an existing ktlstun.ini after make uninstall"
note "make uninstall removes every installed file and keeps the operator's configuration"
