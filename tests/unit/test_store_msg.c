/* store_msg: the fixed messages between the PAM helper and its store process. What
 * the store process hands over comes from the database: a malformed one is refused
 * whole, never half applied. Also the shared store state in the grants table, which
 * /readyz reads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto/grants.h"
#include "store/store_msg.h"

static struct store_msg grant(void)
{
    struct store_msg msg = { .type = STORE_MSG_EVENT };
    msg.event.kind = STORE_EVENT_GRANT;
    strcpy(msg.event.tunnel, "vpn");
    memset(msg.event.sha256, 'a', LIMIT_SHA256_HEX);
    strcpy(msg.event.identity, "alice");
    strcpy(msg.event.gateway, "gw-a");
    msg.event.expires_at = 1900000000;
    return msg;
}

static void test_valid_messages(void **state)
{
    (void)state;
    struct store_msg msg = grant();
    assert_true(store_msg_valid(&msg, sizeof(msg)));
    msg.event.kind = STORE_EVENT_REVOKE;
    msg.event.tunnel[0] = '\0';   /* every tunnel */
    assert_true(store_msg_valid(&msg, sizeof(msg)));
    msg.event.kind = STORE_EVENT_DISCONNECT;
    assert_true(store_msg_valid(&msg, sizeof(msg)));
    struct store_msg up = { .type = STORE_MSG_STATE, .up = 1 };
    strcpy(up.text, "127.0.0.1:5432");
    assert_true(store_msg_valid(&up, sizeof(up)));
    struct store_msg alert = grant();
    alert.type = STORE_MSG_ALERT;
    alert.alert_kind = 1;
    strcpy(alert.event.username, "alice");
    strcpy(alert.event.source, "192.0.2.7");
    assert_true(store_msg_valid(&alert, sizeof(alert)));
}

/* `ktlstun revoke`'s event, from the helper or the CLI: a fingerprint in any of the
 * forms openssl prints goes out lowercase in sha256; a name goes as it is. */
static void test_admin_revoke_event(void **state)
{
    (void)state;
    static const char hex[] = "3c6ecc03431219f870605e918df2b6f3631253653fffb05a8f6eea4bc3060789";
    struct store_msg msg = { .type = STORE_MSG_EVENT };
    store_events_admin_revoke(&msg.event, "gw-a", NULL,
                              "3C:6E:CC:03:43:12:19:F8:70:60:5E:91:8D:F2:B6:F3:63:12:53:65:3F:FF:"
                              "B0:5A:8F:6E:EA:4B:C3:06:07:89");
    assert_int_equal(msg.event.kind, STORE_EVENT_REVOKE);
    assert_int_equal(msg.event.tag, STORE_REVOKE_BY_ADMIN);
    assert_string_equal(msg.event.sha256, hex);
    assert_string_equal(msg.event.identity, hex);
    assert_string_equal(msg.event.tunnel, "");
    assert_string_equal(msg.event.gateway, "gw-a");
    assert_true(store_msg_valid(&msg, sizeof(msg)));
    store_events_admin_revoke(&msg.event, "gw-b", "vpn", "alice");
    assert_string_equal(msg.event.sha256, "");
    assert_string_equal(msg.event.identity, "alice");
    assert_string_equal(msg.event.tunnel, "vpn");
    assert_int_equal(msg.event.tag, STORE_REVOKE_BY_ADMIN);
    assert_true(store_msg_valid(&msg, sizeof(msg)));
    /* Almost a fingerprint is a name. */
    store_events_admin_revoke(&msg.event, "gw-b", NULL, "3c6ecc03");
    assert_string_equal(msg.event.sha256, "");
    assert_string_equal(msg.event.identity, "3c6ecc03");
}

static void test_malformed_messages(void **state)
{
    (void)state;
    struct store_msg msg = grant();
    assert_false(store_msg_valid(&msg, sizeof(msg) - 1));
    msg.event.sha256[10] = '\0';                       /* a short fingerprint */
    assert_false(store_msg_valid(&msg, sizeof(msg)));
    msg = grant();
    memset(msg.event.identity, 'x', sizeof(msg.event.identity));   /* unterminated */
    assert_false(store_msg_valid(&msg, sizeof(msg)));
    msg = grant();
    msg.event.tunnel[0] = '\0';                        /* a grant needs its tunnel */
    assert_false(store_msg_valid(&msg, sizeof(msg)));
    msg = grant();
    msg.event.kind = (enum store_event_kind)9;
    assert_false(store_msg_valid(&msg, sizeof(msg)));
    msg = grant();
    msg.event.kind = STORE_EVENT_DISCONNECT;
    msg.event.identity[0] = '\0';                      /* a disconnect of no one */
    assert_false(store_msg_valid(&msg, sizeof(msg)));
    msg = grant();
    msg.type = 9;
    assert_false(store_msg_valid(&msg, sizeof(msg)));
    msg = grant();
    msg.type = STORE_MSG_ALERT;
    msg.alert_kind = 3;                                /* not a lock of identity, user or source */
    assert_false(store_msg_valid(&msg, sizeof(msg)));
    struct store_msg state_msg = { .type = STORE_MSG_STATE, .up = 2 };
    assert_false(store_msg_valid(&state_msg, sizeof(state_msg)));
}

static void test_longer_datagram_refused(void **state)
{
    (void)state;
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, pair), 0);
    unsigned char big[sizeof(struct store_msg) + 8];
    struct store_msg msg = grant();
    memset(big, 0, sizeof(big));
    memcpy(big, &msg, sizeof(msg));
    assert_int_equal(send(pair[0], big, sizeof(big), 0), (ssize_t)sizeof(big));
    struct store_msg got;
    assert_int_equal(store_msg_recv(pair[1], &got), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(store_msg_send(pair[0], &msg), 0);
    assert_int_equal(store_msg_recv(pair[1], &got), 1);
    assert_string_equal(got.event.identity, "alice");
    close(pair[0]);
    assert_int_equal(store_msg_recv(pair[1], &got), 0);
    close(pair[1]);
}

/* A hub's lease messages, which the helper passes on without reading them: the store
 * process and the supervisor each refuse a malformed one. */
static void test_lease_messages(void **state)
{
    (void)state;
    struct store_msg msg = { .type = STORE_MSG_LEASE };
    struct lease_msg *l = &msg.lease;
    l->type = LEASE_MSG_TAKE;
    l->id = 7;
    strcpy(l->tunnel, "hub");
    strcpy(l->identity, "CN=c01");
    l->count = 1;
    l->addresses[0] = (struct ip_prefix){ .family = AF_INET, .addr = { 10, 8, 0, 1 }, .len = 24 };
    assert_true(store_msg_valid(&msg, sizeof(msg)));
    assert_true(lease_msg_valid(l, sizeof(*l)));
    struct store_msg bad = msg;
    bad.lease.count = 0;                       /* a TAKE asks for something */
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    bad = msg;
    bad.lease.count = LEASE_MSG_FAMILIES + 1;
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    bad = msg;
    bad.lease.reserve_count = LEASE_MSG_RESERVE_MAX + 1;
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    bad = msg;
    bad.lease.addresses[0].len = 33;
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    bad = msg;
    bad.lease.addresses[0].family = AF_UNIX;
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    bad = msg;
    memset(bad.lease.identity, 'x', sizeof(bad.lease.identity));
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    bad = msg;
    bad.lease.identity[0] = '\0';
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    bad = msg;
    bad.lease.type = 99;
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    bad = msg;
    bad.lease.type = LEASE_MSG_RESULT;
    bad.lease.result = LEASE_RESULT_UNAVAILABLE + 1;
    assert_false(store_msg_valid(&bad, sizeof(bad)));
    struct lease_msg all = { .type = LEASE_MSG_RELEASE_ALL };
    assert_true(lease_msg_valid(&all, sizeof(all)));
    assert_false(lease_msg_valid(&all, sizeof(all) - 1));
    struct lease_msg release = { .type = LEASE_MSG_RELEASE };
    assert_false(lease_msg_valid(&release, sizeof(release)));   /* whose? */
}

static void test_store_state_in_grants(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    assert_non_null(g);
    char text[GRANTS_STORE_TEXT];
    assert_int_equal(grants_store_state(g, text, sizeof(text)), GRANTS_STORE_NONE);
    grants_set_store_state(g, GRANTS_STORE_DOWN, "connection refused");
    assert_int_equal(grants_store_state(g, text, sizeof(text)), GRANTS_STORE_DOWN);
    assert_string_equal(text, "connection refused");
    char long_text[600];
    memset(long_text, 'y', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    grants_set_store_state(g, GRANTS_STORE_UP, long_text);
    assert_int_equal(grants_store_state(g, text, sizeof(text)), GRANTS_STORE_UP);
    assert_int_equal(strlen(text), GRANTS_STORE_TEXT - 1);
    grants_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_messages),
        cmocka_unit_test(test_admin_revoke_event),
        cmocka_unit_test(test_malformed_messages),
        cmocka_unit_test(test_longer_datagram_refused),
        cmocka_unit_test(test_store_state_in_grants),
        cmocka_unit_test(test_lease_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
