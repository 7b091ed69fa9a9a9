#!/bin/sh
# /init of the test VM (built by tests/vm/run.sh; see tests/vm/README.md).
#
# Runs every /src/tests/vm/guest/*.sh in turn and powers off. The host reads the serial
# console: lines "PASS name" / "FAIL name: reason" are results; "@@VM-..." lines frame
# the run so a crash or hang shows up as a missing end marker.

export PATH=/build:/build/tools:/build/bench:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root KTLSTUN_BUILD=/build KTLSTUN_SRC=/src KTLSTUN_IN_VM=1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# Static node as kmod's static-nodes would make it: the first open autoloads tun.
mkdir -p /dev/net
[ -e /dev/net/tun ] || mknod -m 0666 /dev/net/tun c 10 200
# bash process substitution and /dev/stdin-style paths need the usual links.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr

# Kernel messages would split result lines on the shared serial console; dmesg still
# has them.
echo 1 >/proc/sys/kernel/printk
# The kernel loads crypto templates (gcm(aes), ...) on demand through this helper.
echo /sbin/modprobe >/proc/sys/kernel/modprobe
ip link set lo up
hostname ktlstun-vm

. /etc/vm-test.conf

echo
echo "@@VM-BEGIN kernel=$(uname -r) cpus=$(nproc) uptime=$(cut -d" " -f1 /proc/uptime)s"
for test in /src/tests/vm/guest/*.sh; do
    [ -e "$test" ] || continue
    name=${test##*/}
    name=${name%.sh}
    case "$name" in $VM_ONLY) ;; *) continue ;; esac
    out=/tmp/vm-result.$name
    work=$(mktemp -d /tmp/vm-test.XXXXXX)
    echo "@@VM-TEST $name"
    start=$(date +%s)
    # Own session and process group, hard time limit, output to a file: nothing a test
    # leaves running can hold up the loop (a pipe to tee would wait for every writer).
    (cd /src && TMPDIR=$work exec setsid timeout -s KILL "$VM_TEST_TIMEOUT" "$test") \
        >"$out" 2>&1 </dev/null &
    wait $!
    rc=$?
    end=$(date +%s)
    # Whatever the test left behind (daemons, peers) goes, so the next test starts
    # clean; as pid 1 this spares only ourselves and kernel threads.
    kill -KILL -1 2>/dev/null
    cat "$out"
    if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
        if [ "$rc" -eq 137 ]; then
            echo "FAIL $name: killed after ${VM_TEST_TIMEOUT}s (hung?)"
        else
            echo "FAIL $name: exited with status $rc without a FAIL line"
        fi
    elif ! grep -q -e '^PASS ' -e '^FAIL ' "$out"; then
        echo "FAIL $name: printed no PASS or FAIL line"
    fi
    echo "@@VM-TEST-END $name rc=$rc seconds=$((end - start))"
    rm -rf "$work"
done
echo "@@VM-END uptime=$(cut -d" " -f1 /proc/uptime)s"
sync
poweroff -f
