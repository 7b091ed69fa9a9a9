#!/bin/sh
# The ktls_probe unit tests again, now on a kernel that has kTLS (on the development
# host they only see the "not available" side).

test=/build/tests/test_ktls_probe
if [ ! -x "$test" ]; then
    echo "FAIL unit/test_ktls_probe: $test missing"
    exit 1
fi
if "$test"; then
    echo "PASS unit/test_ktls_probe"
else
    echo "FAIL unit/test_ktls_probe: exited with $?"
fi
