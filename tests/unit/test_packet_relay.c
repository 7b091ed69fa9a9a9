/* packet_relay between two "TUN devices" (SOCK_SEQPACKET socketpairs keep each
 * packet whole, as a TUN descriptor does) over a real TLS session on a socketpair:
 * batching, order, the hub's source check (IPv6 link-local sources dropped apart),
 * clamping only when asked, a socket that pushes back, control frames, a peer that
 * breaks the framing, and a clean close. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "cert_factory.h"
#include "core/ip_prefix.h"
#include "iprelay/packet_relay.h"

static EVP_PKEY *ca_key, *server_key;
static X509 *ca, *server_cert;

struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *hub_ssl, *client_ssl;
    int sock[2];          /* [0] hub, [1] client */
    int hub_tun[2];       /* [0] the relay's, [1] the kernel's */
    int client_tun[2];
    struct packet_relay *hub, *client;
    struct tunnel_frame controls[8];
    uint64_t keepalives[8];
    int control_count;
};

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    ca_key = cf_key_ec();
    server_key = cf_key_ec();
    ca = cf_ca("/CN=relay test root", ca_key);
    server_cert = cf_cert(&(struct cf_cert_spec){ .subject = "/CN=hub", .key = server_key,
                                                  .issuer = ca, .issuer_key = ca_key });
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(server_cert);
    X509_free(ca);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(ca_key);
    return 0;
}

static void on_control(void *arg, const struct tunnel_frame *frame)
{
    struct pair *p = arg;
    assert_true(p->control_count < 8);
    p->controls[p->control_count] = *frame;
    p->keepalives[p->control_count] = frame->keepalive;
    p->control_count++;
}

static void handshake(struct pair *p)
{
    int hub_done = 0, client_done = 0;
    for (int i = 0; i < 1000 && !(hub_done && client_done); i++) {
        if (!client_done) {
            int rc = SSL_do_handshake(p->client_ssl);
            client_done = rc == 1;
            if (rc != 1)
                assert_int_equal(SSL_get_error(p->client_ssl, rc), SSL_ERROR_WANT_READ);
        }
        if (!hub_done) {
            int rc = SSL_do_handshake(p->hub_ssl);
            hub_done = rc == 1;
            if (rc != 1)
                assert_int_equal(SSL_get_error(p->hub_ssl, rc), SSL_ERROR_WANT_READ);
        }
    }
    assert_true(hub_done && client_done);
}

static struct pair *make_pair_clamping(unsigned mtu, int small_buffers, int mss_clamp)
{
    struct pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->sock), 0);
    if (small_buffers) {
        int size = 4096;
        assert_int_equal(setsockopt(p->sock[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)), 0);
        assert_int_equal(setsockopt(p->sock[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)), 0);
    }
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, p->hub_tun), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, p->client_tun), 0);
    p->sctx = SSL_CTX_new(TLS_server_method());
    p->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(p->sctx);
    assert_non_null(p->cctx);
    assert_int_equal(SSL_CTX_use_certificate(p->sctx, server_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(p->sctx, server_key), 1);
    SSL_CTX_set_num_tickets(p->sctx, 0);
    SSL_CTX_set_verify(p->cctx, SSL_VERIFY_NONE, NULL);
    p->hub_ssl = SSL_new(p->sctx);
    p->client_ssl = SSL_new(p->cctx);
    SSL_set_fd(p->hub_ssl, p->sock[0]);
    SSL_set_fd(p->client_ssl, p->sock[1]);
    SSL_set_accept_state(p->hub_ssl);
    SSL_set_connect_state(p->client_ssl);
    handshake(p);

    static struct ip_prefix allowed[2];
    const char *reason;
    assert_int_equal(ip_prefix_parse("10.8.0.2/32", &allowed[0], &reason), 0);
    assert_int_equal(ip_prefix_parse("192.168.50.0/24", &allowed[1], &reason), 0);
    struct packet_relay_config hub = { .hub = 1, .mtu = mtu, .mss_clamp = mss_clamp,
                                       .allowed = allowed, .allowed_count = 2,
                                       .on_control = on_control, .arg = p };
    struct packet_relay_config client = { .hub = 0, .mtu = mtu, .mss_clamp = mss_clamp,
                                          .on_control = on_control, .arg = p };
    p->hub = packet_relay_new(p->hub_tun[0], p->hub_ssl, &hub);
    p->client = packet_relay_new(p->client_tun[0], p->client_ssl, &client);
    assert_non_null(p->hub);
    assert_non_null(p->client);
    return p;
}

static struct pair *make_pair(unsigned mtu, int small_buffers)
{
    return make_pair_clamping(mtu, small_buffers, 1);
}

static void free_pair(struct pair *p)
{
    packet_relay_free(p->hub);
    packet_relay_free(p->client);
    SSL_free(p->hub_ssl);
    SSL_free(p->client_ssl);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    for (int i = 0; i < 2; i++) {
        close(p->sock[i]);
        close(p->hub_tun[i]);
        close(p->client_tun[i]);
    }
    free(p);
}

/* An IPv4 UDP packet of LEN bytes (at least 28) from SRC, numbered SEQ in its
 * payload, with a valid header checksum. */
static size_t udp_packet(uint8_t *pkt, size_t len, const char *src, uint32_t seq)
{
    memset(pkt, 0, len);
    pkt[0] = 0x45;
    pkt[2] = (uint8_t)(len >> 8);
    pkt[3] = (uint8_t)len;
    pkt[8] = 64;
    pkt[9] = 17;
    assert_int_equal(inet_pton(AF_INET, src, pkt + 12), 1);
    assert_int_equal(inet_pton(AF_INET, "10.20.0.5", pkt + 16), 1);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += ((uint32_t)pkt[i] << 8) | pkt[i + 1];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    pkt[10] = (uint8_t)(~sum >> 8);
    pkt[11] = (uint8_t)~sum;
    pkt[20] = 0x30;
    pkt[22] = 0x30;
    pkt[24] = (uint8_t)((len - 20) >> 8);
    pkt[25] = (uint8_t)(len - 20);
    memcpy(pkt + 28, &seq, sizeof(seq) <= len - 28 ? sizeof(seq) : 0);
    for (size_t i = 32; i < len; i++)
        pkt[i] = (uint8_t)(seq + i);
    return len;
}

/* An IPv6 UDP packet from SRC with 8 bytes of payload. */
static size_t udp6_packet(uint8_t *pkt, const char *src)
{
    memset(pkt, 0, 56);
    pkt[0] = 0x60;
    pkt[5] = 16;
    pkt[6] = 17;
    pkt[7] = 255;
    assert_int_equal(inet_pton(AF_INET6, src, pkt + 8), 1);
    assert_int_equal(inet_pton(AF_INET6, "fd00:20::5", pkt + 24), 1);
    pkt[40] = 0x30;
    pkt[42] = 0x30;
    pkt[45] = 16;
    return 56;
}

static size_t read_packet(int fd, uint8_t *buf, size_t cap)
{
    ssize_t n = read(fd, buf, cap);
    return n < 0 ? 0 : (size_t)n;
}

static void test_batches_in_order(void **state)
{
    (void)state;
    struct pair *p = make_pair(1400, 0);
    uint8_t pkt[1400], got[2000];

    /* 50 packets from the client's kernel: one call reads them and sends few batches. */
    for (uint32_t i = 0; i < 50; i++)
        assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 28 + (i * 97) % 1372, "10.8.0.2", i)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    const struct packet_relay_counters *c = packet_relay_counters(p->client);
    assert_int_equal(c->sent_packets, 50);
    assert_true(c->sent_batches >= 2 && c->sent_batches <= 6);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->hub)->received_packets, 50);
    for (uint32_t i = 0; i < 50; i++) {
        size_t want = udp_packet(pkt, 28 + (i * 97) % 1372, "10.8.0.2", i);
        assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), want);
        assert_memory_equal(got, pkt, want);
    }
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), 0);

    /* The other way round, from a source the hub does not check on the client. */
    assert_true(write(p->hub_tun[1], pkt, udp_packet(pkt, 100, "10.20.0.5", 7)) > 0);
    assert_int_equal(packet_relay_from_tun(p->hub), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_from_tls(p->client), PACKET_RELAY_OK);
    assert_int_equal(read_packet(p->client_tun[1], got, sizeof(got)), 100);
    assert_memory_equal(got, pkt, 100);
    free_pair(p);
}

static void test_lone_packets_and_short_reads(void **state)
{
    (void)state;
    struct pair *p = make_pair(1400, 0);
    uint8_t pkt[200], got[2000];
    /* One read of the socket takes all the records there are: it comes back short. */
    SSL_set_read_ahead(p->hub_ssl, 1);

    /* A packet alone goes in a batch of its own, as always. */
    assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 60, "10.8.0.2", 1)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    const struct packet_relay_counters *c = packet_relay_counters(p->client);
    assert_int_equal(c->sent_batches, 1);
    /* After it, the next call sends its first packet at once and ends there. */
    for (uint32_t i = 2; i <= 4; i++)
        assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 60, "10.8.0.2", i)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(c->sent_packets, 2);
    assert_int_equal(c->sent_batches, 2);
    /* The TUN reports the rest: the next calls take it, the first packet alone again
     * (within the same millisecond the call reads on and batches what follows). */
    for (int calls = 0; calls < 3 && c->sent_packets < 4; calls++)
        assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(c->sent_packets, 4);
    assert_int_equal(c->sent_batches, 4);
    for (uint32_t i = 5; i <= 7; i++)
        assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 60, "10.8.0.2", i)) > 0);
    for (int calls = 0; calls < 4 && c->sent_packets < 7; calls++)
        assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(c->sent_packets, 7);
    assert_true(c->sent_batches >= 5 && c->sent_batches <= 7);

    /* The hub's call ends at the short read with every record taken, in order. */
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->hub)->received_packets, 7);
    for (uint32_t i = 1; i <= 7; i++) {
        size_t want = udp_packet(pkt, 60, "10.8.0.2", i);
        assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), want);
        assert_memory_equal(got, pkt, want);
    }
    /* What comes later is read by the next call. */
    assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 60, "10.8.0.2", 8)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->hub)->received_packets, 8);

    /* Idle: OpenSSL's buffers go back once; moving packets keeps them again. */
    assert_int_equal(packet_relay_trim(p->hub), 1);
    assert_int_equal(packet_relay_trim(p->hub), 0);
    assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 60, "10.8.0.2", 9)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->hub)->received_packets, 9);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), 60);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), 60);
    assert_int_equal(packet_relay_trim(p->hub), 1);
    free_pair(p);
}

static void test_hub_checks_sources(void **state)
{
    (void)state;
    struct pair *p = make_pair(1400, 0);
    uint8_t pkt[200], got[2000];

    assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 60, "10.8.0.99", 1)) > 0);
    assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 60, "192.168.50.7", 2)) > 0);
    udp_packet(pkt, 60, "10.8.0.2", 3);
    pkt[10] ^= 0xff;   /* a broken header checksum: never sent */
    assert_true(write(p->client_tun[1], pkt, 60) > 0);
    assert_true(write(p->client_tun[1], pkt, udp_packet(pkt, 60, "10.8.0.2", 4)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->client)->dropped_invalid, 1);
    assert_int_equal(packet_relay_counters(p->client)->sent_packets, 3);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    const struct packet_relay_counters *c = packet_relay_counters(p->hub);
    assert_int_equal(c->dropped_source, 1);
    assert_int_equal(c->received_packets, 2);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), 60);
    assert_memory_equal(got + 12, "\xc0\xa8\x32\x07", 4);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), 60);
    assert_memory_equal(got + 12, "\x0a\x08\x00\x02", 4);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), 0);
    free_pair(p);
}

/* What a client's kernel sends from its link-local address (router solicitations,
 * listener reports) is dropped on the hub without being counted as forged. */
static void test_hub_drops_link_local(void **state)
{
    (void)state;
    struct pair *p = make_pair(1400, 0);
    uint8_t pkt[64], got[2000];
    assert_true(write(p->client_tun[1], pkt, udp6_packet(pkt, "fe80::1")) > 0);
    assert_true(write(p->client_tun[1], pkt, udp6_packet(pkt, "febf::2")) > 0);
    assert_true(write(p->client_tun[1], pkt, udp6_packet(pkt, "fd00:8::99")) > 0);
    assert_true(write(p->client_tun[1], pkt, udp6_packet(pkt, "fec0::1")) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->client)->sent_packets, 4);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    const struct packet_relay_counters *c = packet_relay_counters(p->hub);
    assert_int_equal(c->dropped_link_local, 2);
    assert_int_equal(c->dropped_source, 2);
    assert_int_equal(c->received_packets, 0);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), 0);
    free_pair(p);
}

/* A Linux SYN (MSS 1460) from 10.8.0.2: clamped as it leaves the client's TUN. */
static const uint8_t syn_v4[] = {
    0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x54,
    0x0a, 0x08, 0x00, 0x02, 0x0a, 0x14, 0x00, 0x05, 0xa8, 0xca, 0x01, 0xbb,
    0x5e, 0x1a, 0x2b, 0x3c, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0,
    0x2e, 0x77, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x00, 0x12, 0xd6, 0x87, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

static void test_syn_clamped(void **state)
{
    (void)state;
    struct pair *p = make_pair(1280, 0);
    uint8_t got[2000];
    assert_true(write(p->client_tun[1], syn_v4, sizeof(syn_v4)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->client)->clamped, 1);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), sizeof(syn_v4));
    assert_int_equal((got[42] << 8) | got[43], 1240);
    free_pair(p);
}

/* A client made before the hub's CONFIG (MTU 9000) clamps to the MTU it learns. */
static void test_syn_clamped_to_a_later_mtu(void **state)
{
    (void)state;
    struct pair *p = make_pair(9000, 0);
    uint8_t got[2000];
    packet_relay_set_mtu(p->client, 100);      /* out of range: ignored */
    packet_relay_set_mtu(p->client, 1280);
    assert_true(write(p->client_tun[1], syn_v4, sizeof(syn_v4)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->client)->clamped, 1);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), sizeof(syn_v4));
    assert_int_equal((got[42] << 8) | got[43], 1240);
    free_pair(p);
}

/* Without mss_clamp the SYN goes as it came. */
static void test_syn_not_clamped_unless_asked(void **state)
{
    (void)state;
    struct pair *p = make_pair_clamping(1280, 0, 0);
    uint8_t got[2000];
    assert_true(write(p->client_tun[1], syn_v4, sizeof(syn_v4)) > 0);
    assert_int_equal(packet_relay_from_tun(p->client), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_counters(p->client)->clamped, 0);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    assert_int_equal(read_packet(p->hub_tun[1], got, sizeof(got)), sizeof(syn_v4));
    assert_memory_equal(got, syn_v4, sizeof(syn_v4));
    free_pair(p);
}

/* A socket that takes little: the relay stops reading the TUN while a batch waits,
 * and nothing is lost or reordered once the hub reads. */
static void test_backpressure(void **state)
{
    (void)state;
    struct pair *p = make_pair(1400, 1);
    uint8_t pkt[1400], got[2000];
    uint32_t written = 0, received = 0;
    int waited = 0;

    for (int round = 0; round < 400 && received < 600; round++) {
        while (written < 600 &&
               write(p->client_tun[1], pkt, udp_packet(pkt, 1000, "10.8.0.2", written)) > 0)
            written++;
        enum packet_relay_status st = packet_relay_from_tun(p->client);
        assert_true(st == PACKET_RELAY_OK || st == PACKET_RELAY_WANT_WRITE);
        waited += st == PACKET_RELAY_WANT_WRITE;
        assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
        size_t n;
        while ((n = read_packet(p->hub_tun[1], got, sizeof(got))) > 0) {
            uint32_t seq;
            memcpy(&seq, got + 28, sizeof(seq));
            assert_int_equal(n, 1000);
            assert_int_equal(seq, received);
            received++;
        }
    }
    assert_true(waited > 0);
    assert_int_equal(received, 600);
    assert_int_equal(packet_relay_counters(p->hub)->dropped_tun, 0);
    free_pair(p);
}

static void test_control_frames(void **state)
{
    (void)state;
    struct pair *p = make_pair(1400, 0);
    struct tunnel_frame_config config = { .mtu = 1400, .keepalive_s = 10, .address_count = 1 };
    const char *reason;
    assert_int_equal(ip_prefix_parse("10.8.0.2/24", &config.addresses[0], &reason), 0);

    assert_int_equal(packet_relay_send_config(p->hub, &config), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_send_keepalive(p->hub, 0, 42), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_from_tls(p->client), PACKET_RELAY_OK);
    assert_int_equal(p->control_count, 2);
    assert_int_equal(p->controls[0].type, TUNNEL_FRAME_CONFIG);
    assert_int_equal(p->controls[1].type, TUNNEL_FRAME_KEEPALIVE);
    assert_true(p->keepalives[1] == 42);
    assert_int_equal(packet_relay_send_keepalive(p->client, 1, 42), PACKET_RELAY_OK);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_OK);
    assert_int_equal(p->control_count, 3);
    assert_int_equal(p->controls[2].type, TUNNEL_FRAME_KEEPALIVE_REPLY);

    config.mtu = 100;
    assert_int_equal(packet_relay_send_config(p->hub, &config), PACKET_RELAY_ERROR);
    assert_string_equal(packet_relay_error(p->hub), "not a valid tunnel configuration");
    free_pair(p);
}

static void test_broken_framing_and_close(void **state)
{
    (void)state;
    struct pair *p = make_pair(1400, 0);
    /* A client may not send a configuration. */
    static const uint8_t config_frame[] = { 0x10, 0x00, 0x07, 1, 5, 0x78, 0, 10, 0, 0 };
    assert_int_equal(SSL_write(p->client_ssl, config_frame, sizeof(config_frame)),
                     (int)sizeof(config_frame));
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_ERROR);
    assert_string_equal(packet_relay_error(p->hub),
                        "the peer broke the framing: unexpected frame type");
    free_pair(p);

    p = make_pair(1400, 0);
    assert_int_equal(SSL_shutdown(p->client_ssl), 0);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_CLOSED);
    free_pair(p);

    /* Gone without close_notify: closed too, and said so. */
    p = make_pair(1400, 0);
    assert_int_equal(shutdown(p->sock[1], SHUT_WR), 0);
    assert_int_equal(packet_relay_from_tls(p->hub), PACKET_RELAY_CLOSED);
    assert_string_equal(packet_relay_error(p->hub), "the peer closed without close_notify");
    free_pair(p);

    /* Out of bounds configurations make no relay. */
    struct packet_relay_config bad = { .mtu = 100 };
    assert_null(packet_relay_new(0, NULL, &bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_in_order),
        cmocka_unit_test(test_lone_packets_and_short_reads),
        cmocka_unit_test(test_hub_checks_sources),
        cmocka_unit_test(test_hub_drops_link_local),
        cmocka_unit_test(test_syn_clamped),
        cmocka_unit_test(test_syn_clamped_to_a_later_mtu),
        cmocka_unit_test(test_syn_not_clamped_unless_asked),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_control_frames),
        cmocka_unit_test(test_broken_framing_and_close),
    };
    return cmocka_run_group_tests_name("packet_relay", tests, group_setup, group_teardown);
}
