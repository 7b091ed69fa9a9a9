#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netdev/hub_device.h"
#include "netdev/tun_device.h"

static void test_name(void **state)
{
    (void)state;
    char name[IFNAMSIZ];
    assert_string_equal(hub_device_name("office", 1, name, sizeof(name)), "ktloffice.1");
    assert_string_equal(hub_device_name("a-very-long-tunnel", 7, name, sizeof(name)), "ktla-very-lon.7");
    assert_string_equal(hub_device_name("a-very-long-tunnel", 4294967295u, name, sizeof(name)),
                        "ktla.4294967295");
    assert_string_equal(hub_device_name("my tun/x:y.z", 12, name, sizeof(name)), "ktlmy_tun_x_.12");
    assert_string_equal(hub_device_name("", 3, name, sizeof(name)), "ktl.3");
    /* A short buffer gets what fits. */
    char small[6];
    assert_string_equal(hub_device_name("office", 1, small, sizeof(small)), "ktlof");
}

/* Whatever the tunnel and the counter, the name is one a device may have, and no two
 * counters give one name. */
static void test_names_valid_and_distinct(void **state)
{
    (void)state;
    static const char *tunnels[] = { "hub", "0123456789abcdefghij", "x y", ".", "..", "\x01\x7f" };
    for (size_t t = 0; t < sizeof(tunnels) / sizeof(tunnels[0]); t++) {
        char first[IFNAMSIZ], name[IFNAMSIZ];
        for (unsigned counter = 0; counter < 2000; counter += 7) {
            hub_device_name(tunnels[t], counter, name, sizeof(name));
            assert_true(tun_device_name_valid(name));
            assert_true(strlen(name) <= IFNAMSIZ - 1);
            if (counter == 0)
                memcpy(first, name, sizeof(name));
            else
                assert_string_not_equal(name, first);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_names_valid_and_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
