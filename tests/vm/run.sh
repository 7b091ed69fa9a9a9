#!/usr/bin/env bash
# tests/vm/run.sh BUILD_DIR — run tests/vm/guest/*.sh inside a Debian cloud kernel
# (which has kTLS) under QEMU/TCG, and report one line per result and a closing
#   vm: N passed, N failed
# (vm-current: ... for the current kernel).
# Exit status 0 only when every result passed and at least one ran. Anything that keeps
# the tests from running (no kernel package, QEMU missing, guest crash, hang) is a
# failure, never a skip. See tests/vm/README.md.
#
# Environment (all optional):
#   KTLSTUN_VM_TIMEOUT=900       seconds for the whole VM run
#   KTLSTUN_VM_TEST_TIMEOUT=300  seconds for one guest test script
#   KTLSTUN_VM_ONLY='probe*'     shell pattern: run only the guest tests it matches
#   KTLSTUN_VM_GUEST_DIR=DIR     take the guest tests from DIR instead of tests/vm/guest
#   KTLSTUN_VM_VERBOSE=1         echo the whole serial console after the run
#   KTLSTUN_VM_KERNEL=debian12   which kernel: debian12 (Debian 12's linux-image-cloud-amd64,
#                                6.1) or current (linux-image-cloud-amd64 from
#                                trixie-backports, fetched through a private apt
#                                configuration under the cache; the host's apt is untouched)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
flavour=${KTLSTUN_VM_KERNEL:-debian12}
case "$flavour" in
    debian12) cache=$here/cache suite=vm ;;
    current) cache=$here/cache/current suite=vm-current ;;
    *) echo "KTLSTUN_VM_KERNEL must be debian12 or current, not '$flavour'" >&2; exit 2 ;;
esac
vm_timeout=${KTLSTUN_VM_TIMEOUT:-900}
test_timeout=${KTLSTUN_VM_TEST_TIMEOUT:-300}
only=${KTLSTUN_VM_ONLY:-*}
guest_dir=${KTLSTUN_VM_GUEST_DIR:-$here/guest}

# A setup failure still ends with the closing line, so CI counts it as a failed test.
die() {
    echo "FAIL $suite-setup: $*"
    echo "$suite: 0 passed, 1 failed"
    exit 1
}

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
[ -d "$1" ] || die "build directory $1 does not exist (run make first)"
build=$(cd "$1" && pwd)
for binary in ktlstun ktlstund; do
    [ -x "$build/$binary" ] || die "$build/$binary is missing (run make first)"
done
for tool in qemu-system-x86_64 busybox cpio gzip depmod dpkg apt-get flock timeout ldd; do
    command -v "$tool" >/dev/null || die "$tool not found (make deps installs qemu-system-x86 busybox-static cpio kmod)"
done
busybox_path=$(command -v busybox)
case "$(ldd "$busybox_path" 2>&1)" in *'not a dynamic executable'*) ;; *)
    die "$busybox_path is not static: install busybox-static" ;; esac

# ---------------------------------------------------------------------------------------
# The kernel: Debian's current cloud kernel, fetched once into tests/vm/cache/.
# Delete tests/vm/cache/ to move to a newer one.

kernel_package() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

apt_update() {
    echo "vm: running apt-get update" >&2
    apt-get update -qq >&2 || die "apt-get update failed (needs root and the Debian mirror)"
}

fetch_kernel() {
    local package deb
    mkdir -p "$cache/download"
    package=$(kernel_package)
    if [ -z "$package" ]; then
        apt_update
        package=$(kernel_package)
    fi
    [ -n "$package" ] || die "apt-cache depends linux-image-cloud-amd64 names no kernel package"
    echo "vm: downloading $package (once; cached in $cache)" >&2
    # Stale package lists name a version the mirror has dropped: refresh, ask again, retry.
    if ! (cd "$cache/download" && apt-get download -q "$package" >/dev/null 2>"$cache/download.log"); then
        apt_update
        package=$(kernel_package)
        [ -n "$package" ] || die "apt-cache depends linux-image-cloud-amd64 names no kernel package"
        (cd "$cache/download" && apt-get download -q "$package" >/dev/null 2>"$cache/download.log") ||
            die "apt-get download $package failed: $(tail -n 3 "$cache/download.log" | tr '\n' ' ')"
    fi
    deb=$(ls "$cache/download/${package}"_*.deb 2>/dev/null | head -n 1)
    [ -n "$deb" ] || die "apt-get download $package left no .deb in $cache/download"
    rm -rf "$cache/kernel.tmp"
    dpkg -x "$deb" "$cache/kernel.tmp" || die "dpkg -x $deb failed"
    kernel_version=${package#linux-image-}
    [ -f "$cache/kernel.tmp/boot/vmlinuz-$kernel_version" ] &&
        [ -d "$cache/kernel.tmp/lib/modules/$kernel_version" ] ||
        die "$deb has no boot/vmlinuz-$kernel_version or lib/modules/$kernel_version"
    depmod -b "$cache/kernel.tmp" "$kernel_version" || die "depmod on the cached kernel failed"
    rm -rf "$cache/kernel" && mv "$cache/kernel.tmp" "$cache/kernel" &&
        echo "$kernel_version" >"$cache/kernel.version" || die "cannot populate $cache/kernel"
    rm -f "$deb"
}

# The current kernel comes from trixie-backports, which the host's apt does not list: a
# private apt configuration under the cache (sources, lists, archives) keeps the host's
# package state untouched. Since Debian 13 the kernel is split into a -base package
# (modules.order, modules.builtin), a -binary package (vmlinuz) and a -modules package
# (xz-compressed .ko files); they are unpacked into the same layout as Debian 12's
# (boot/vmlinuz-VERSION, lib/modules/VERSION) with the modules decompressed, since
# busybox's modprobe loads plain .ko files.
current_apt() {
    apt-get -o Dir::Etc::SourceList="$cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State="$cache/apt/state" -o Dir::Cache="$cache/apt/cache" \
        -o Dir::State::status=/dev/null -o APT::Sandbox::User=root "$@"
}

fetch_current_kernel() {
    local version package deb
    mkdir -p "$cache/apt/state/lists/partial" "$cache/apt/cache/archives/partial" "$cache/download"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" \
        >"$cache/apt/sources.list"
    echo "vm: reading trixie-backports' package list" >&2
    current_apt update -qq >"$cache/download.log" 2>&1 ||
        die "apt-get update of trixie-backports failed: $(tail -n 3 "$cache/download.log" | tr '\n' ' ')"
    package=$(apt-cache -o Dir::Etc::SourceList="$cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
                  -o Dir::State="$cache/apt/state" -o Dir::Cache="$cache/apt/cache" \
                  -o Dir::State::status=/dev/null depends linux-image-cloud-amd64 2>/dev/null |
              awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    [ -n "$package" ] || die "trixie-backports' linux-image-cloud-amd64 names no kernel package"
    version=${package#linux-image-}
    echo "vm: downloading the $version kernel (once; cached in $cache)" >&2
    rm -f "$cache/download"/*.deb
    (cd "$cache/download" && current_apt download -q "linux-base-$version" "linux-binary-$version" \
        "linux-modules-$version" >/dev/null 2>"$cache/download.log") ||
        die "apt-get download of the $version kernel failed: $(tail -n 3 "$cache/download.log" | tr '\n' ' ')"
    rm -rf "$cache/kernel.tmp"
    for deb in "$cache/download"/*.deb; do
        dpkg -x "$deb" "$cache/kernel.tmp" || die "dpkg -x $deb failed"
    done
    mkdir -p "$cache/kernel.tmp/boot" "$cache/kernel.tmp/lib/modules" || die "cannot lay out $cache/kernel.tmp"
    mv "$cache/kernel.tmp/usr/lib/modules/$version" "$cache/kernel.tmp/lib/modules/" ||
        die "the $version packages have no usr/lib/modules/$version"
    mv "$cache/kernel.tmp/lib/modules/$version/vmlinuz" "$cache/kernel.tmp/boot/vmlinuz-$version" ||
        die "the $version packages have no vmlinuz"
    find "$cache/kernel.tmp/lib/modules/$version" -name '*.ko.xz' -exec xz -d {} + ||
        die "cannot decompress the $version modules"
    depmod -b "$cache/kernel.tmp" "$version" || die "depmod on the cached kernel failed"
    rm -rf "$cache/kernel" && mv "$cache/kernel.tmp" "$cache/kernel" &&
        echo "$version" >"$cache/kernel.version" || die "cannot populate $cache/kernel"
    rm -f "$cache/download"/*.deb
}

mkdir -p "$cache" || die "cannot create $cache"
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"
if [ ! -s "$cache/kernel.version" ] || [ ! -d "$cache/kernel" ]; then
    if [ "$flavour" = current ]; then fetch_current_kernel; else fetch_kernel; fi
fi
kernel_version=$(cat "$cache/kernel.version")
kernel_root=$cache/kernel
kernel_modules=$kernel_root/lib/modules/$kernel_version
vmlinuz=$kernel_root/boot/vmlinuz-$kernel_version
[ -f "$vmlinuz" ] || die "$vmlinuz missing: delete $cache and run again"
flock -u 9

# ---------------------------------------------------------------------------------------
# The initramfs: busybox, a merged-/usr tree like Debian 12's, the modules, the binaries
# under test and every library they load, the repo's test scripts.

vm_dir=$build/$suite
root=$vm_dir/root
rm -rf "$root" || die "cannot clear $root"
mkdir -p "$vm_dir" "$root"/usr/{bin,sbin,lib,lib64} \
         "$root"/{proc,sys,dev,tmp,run,etc,root,var/tmp,var/lib,build,src/tests/vm} ||
    die "cannot create $root"
for link in bin sbin lib lib64; do
    ln -s "usr/$link" "$root/$link"
done
ln -s ../run "$root/var/run"

cp "$busybox_path" "$root/usr/bin/busybox" || die "cannot copy busybox"
for applet in $("$busybox_path" --list-full); do
    [ -e "$root/$applet" ] || ln -s /usr/bin/busybox "$root/$applet"
done

declare -A copied=()

# Copies host file SRC to DEST inside the guest (default: the same path), and for an ELF
# file every library its loader resolves (ldd lists the whole closure, so the libraries
# themselves need no second look).
copy_in() {
    local src=$1 dest=${2:-$1} with_libs=${3:-yes} lib libs
    [ -n "${copied[$dest]:-}" ] && return 0
    [ -e "$src" ] || die "$src does not exist on the host"
    mkdir -p "$root$(dirname "$dest")" || die "cannot create $(dirname "$dest") in the guest"
    rm -f "$root$dest"
    cp -L --preserve=mode "$src" "$root$dest" || die "cannot copy $src into the guest"
    copied[$dest]=1
    [ "$with_libs" = yes ] && [ "$(head -c 4 "$src" | od -An -c | tr -d ' ')" = '177ELF' ] || return 0
    libs=$(ldd "$src" 2>&1)
    case "$libs" in *'not a dynamic executable'*|*'statically linked'*) return 0 ;; esac
    if echo "$libs" | grep -q 'not found'; then
        die "$src needs a library the host lacks: $(echo "$libs" | grep 'not found' | head -n 1)"
    fi
    for lib in $(echo "$libs" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        copy_in "$lib" "$lib" no
    done
}

# Build outputs carry debug info the guest never reads; dropping it halves the
# initramfs. Symbols stay, and the host's copies keep everything for addr2line.
copy_build_output() {
    copy_in "$1" "$2"
    if command -v strip >/dev/null; then
        strip --strip-debug "$root$2" 2>/dev/null || true
    fi
}

# The binaries under test, at /build in the guest (on PATH there).
copy_build_output "$build/ktlstun" /build/ktlstun
copy_build_output "$build/ktlstund" /build/ktlstund
for dir in tools tests bench; do
    [ -d "$build/$dir" ] || continue
    for file in "$build/$dir"/*; do
        [ -f "$file" ] && [ -x "$file" ] && copy_build_output "$file" "/build/$dir/${file##*/}"
    done
done

# Host programs and files the guest tests use.
while read -r line; do
    line=${line%%#*}
    line=$(echo "$line" | xargs)
    [ -n "$line" ] || continue
    for path in $line; do
        [ -e "$path" ] || die "tests/vm/host-files.txt: $path does not exist on the host"
        copy_in "$path"
    done
done <"$here/host-files.txt"

# The repo's scripts and data: guest tests, integration helpers, sample configs.
cp -a "$guest_dir" "$root/src/tests/vm/guest" || die "cannot copy $guest_dir"
chmod +x "$root"/src/tests/vm/guest/*.sh 2>/dev/null
# A guest test that names one kernel ("# vm-kernel: current" or "debian12" in its
# first lines) runs in that kernel only: what it proves does not depend on the kernel,
# and running it twice would only lengthen make check.
for script in "$root"/src/tests/vm/guest/*.sh; do
    wanted=$(head -n 20 "$script" | sed -n 's/^# vm-kernel: *\([a-z0-9]*\).*/\1/p' | head -n 1)
    if [ -n "$wanted" ] && [ "$wanted" != "$flavour" ]; then
        echo "vm: ${script##*/} runs in the $wanted kernel only" >&2
        rm -f "$script"
    fi
done
[ -d "$repo/tests/integration" ] && { cp -a "$repo/tests/integration" "$root/src/tests/" || die "cannot copy tests/integration"; }
[ -d "$repo/etc" ] && { cp -a "$repo/etc" "$root/src/" || die "cannot copy etc/"; }
# One test PKI per run, made on the host: busybox's date cannot do the validity
# arithmetic pki.sh needs. Guest tests find it at /pki (see tests/integration/pki.sh).
"$repo/tests/integration/pki.sh" "$root/pki" >"$vm_dir/pki.out" 2>&1 ||
    die "tests/integration/pki.sh failed: $(tail -n 3 "$vm_dir/pki.out")"
ls "$root"/src/tests/vm/guest/*.sh >/dev/null 2>&1 || die "no guest tests in $guest_dir"

# Kernel modules, then depmod for libkmod (modules.*.bin) and busybox modprobe (text).
guest_modules=$root/lib/modules/$kernel_version
mkdir -p "$guest_modules/kernel" || die "cannot create the guest modules tree"
cp "$kernel_modules"/modules.{builtin,builtin.modinfo,order} "$guest_modules/" ||
    die "cached kernel lacks modules.builtin: delete $cache and run again"
while read -r line; do
    line=${line%%#*}
    line=$(echo "$line" | xargs)
    [ -n "$line" ] || continue
    [ -e "$kernel_modules/kernel/$line" ] || die "tests/vm/modules.txt: kernel/$line not in $kernel_version"
    mkdir -p "$guest_modules/kernel/$(dirname "$line")"
    cp -a "$kernel_modules/kernel/$line" "$guest_modules/kernel/$(dirname "$line")/" ||
        die "cannot copy kernel/$line"
done <"$here/modules.txt"
depmod -b "$root" "$kernel_version" || die "depmod on the guest modules failed"
missing=$(tr ' :' '\n\n' <"$guest_modules/modules.dep" | sed '/^$/d' | sort -u |
          while read -r module; do [ -e "$guest_modules/$module" ] || echo "$module"; done)
[ -z "$missing" ] || die "modules.dep needs modules not copied (add them to tests/vm/modules.txt): $missing"

# A minimal /etc. ktlstun is the daemon's unprivileged user (uid 999).
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
ktlstun:x:999:999:ktlstun:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
ktlstun:x:999:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1 localhost ktlstun-vm\n::1 localhost ip6-localhost\n' >"$root/etc/hosts"
printf 'VM_TEST_TIMEOUT=%d\nVM_ONLY=%q\n' "$test_timeout" "$only" >"$root/etc/vm-test.conf"
cp "$here/init.sh" "$root/init" && chmod 0755 "$root/init" || die "cannot install /init"

initrd=$vm_dir/initrd.gz
(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1 >"$initrd") ||
    die "cannot build $initrd"

# ---------------------------------------------------------------------------------------
# Boot and collect.

console=$vm_dir/console.log

# One boot of the guest; its serial output goes to $console. Sets qemu_status.
boot_guest() {
    timeout -k 10 "$vm_timeout" qemu-system-x86_64 \
        -accel tcg,thread=multi -cpu max -m 1024 -smp 2 -nographic -no-reboot -nic none \
        -kernel "$vmlinuz" -initrd "$initrd" -append "console=ttyS0 quiet panic=-1" \
        </dev/null >"$console" 2>&1 &
    vm_pid=$!
    # timeout passes the signal on to QEMU: an interrupted run leaves no VM behind.
    trap 'kill -TERM "$vm_pid" 2>/dev/null' EXIT
    trap 'exit 130' INT TERM
    wait "$vm_pid"
    qemu_status=$?
    trap - EXIT
    # Plain text for grep: no carriage returns, no terminal escapes from the firmware.
    sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[A-Za-z]//g' <"$console" \
        >"$console.tmp" && mv "$console.tmp" "$console"
}

echo "vm: booting $kernel_version (initramfs $(du -h "$initrd" | cut -f1)); serial log: $console" >&2
started=$(date +%s)
boot_guest
# Multi-threaded TCG can, rarely, let one virtual CPU run code another one is patching
# at boot (a kernel oops inside an instruction, before /init). No test has run then,
# so a second boot hides no result; a guest that dies twice, or after /init, fails.
if ! grep -q '^@@VM-BEGIN' "$console" && grep -q 'Kernel panic' "$console"; then
    cp "$console" "$console.first-boot"
    echo "vm: the guest kernel died before /init (kept in $console.first-boot):" \
         "$(grep -m1 -E 'RIP:|Kernel panic' "$console")" >&2
    echo "vm: booting once more" >&2
    boot_guest
fi
elapsed=$(( $(date +%s) - started ))
[ "${KTLSTUN_VM_VERBOSE:-0}" = 1 ] && cat "$console" >&2

passed=0
failed=0
while read -r line; do
    echo "$line"
    case "$line" in
        PASS\ *) passed=$((passed + 1)) ;;
        FAIL\ *) failed=$((failed + 1)) ;;
    esac
done < <(grep -E '^(PASS|FAIL) [^ ]' "$console")

harness_fail() {
    echo "FAIL $suite-harness: $*"
    failed=$((failed + 1))
}
last_test=$(grep '^@@VM-TEST ' "$console" | tail -n 1 | cut -d' ' -f2)
if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    harness_fail "the VM run exceeded ${vm_timeout}s and was killed (last test started: ${last_test:-none})"
elif ! grep -q '^@@VM-BEGIN' "$console"; then
    if [ "$qemu_status" -ne 0 ]; then
        harness_fail "QEMU exited with status $qemu_status before the guest started: $(tail -n 3 "$console" | tr '\n' ' ')"
    else
        harness_fail "the guest never reached /init (kernel or initramfs problem; see $console)"
    fi
elif ! grep -q '^@@VM-END' "$console"; then
    harness_fail "the guest stopped before the end marker (kernel panic or /init died; last test started: ${last_test:-none})"
elif [ $((passed + failed)) -eq 0 ]; then
    harness_fail "no guest test reported a result"
fi
if [ "$failed" -gt 0 ] && [ "${KTLSTUN_VM_VERBOSE:-0}" != 1 ]; then
    echo "--- last 40 lines of $console ---" >&2
    tail -n 40 "$console" >&2
fi
echo "vm: took ${elapsed}s under TCG ($kernel_version)" >&2
echo "$suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
