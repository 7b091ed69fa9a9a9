/* netdev_tool — drives daemon/netdev/ (and, in relay mode, daemon/iprelay/) for
 * tests/integration/test_netdev.sh and test_netdev_hub.sh. Run as root, inside the
 * network namespaces the test made.
 *
 *   netdev_tool up NAME MTU [--persist] [--owner OWNER] [--addr PREFIX]... [--route NETWORK]...
 *       creates and configures the TUN device (--owner: marks it as OWNER's first,
 *       netdev_set_owner), prints "ready NAME"; then, unless
 *       --persist (the device is left behind, as by a crash), waits for the end of
 *       stdin, removes the routes and addresses one by one, deletes the device and
 *       prints "removed NAME".
 *   netdev_tool delete NAME          deletes a device; prints "deleted NAME"
 *   netdev_tool leftovers PREFIX OWNER
 *       prints "removed N" (netdev_remove_leftovers)
 *   netdev_tool owner NAME           prints "owner ALIAS", "none" (no alias) or
 *                                    "absent" (no device NAME) (netdev_owner)
 *   netdev_tool relay MTU PKI_DIR NS_A NAME_A ADDRS_A NS_B NAME_B ADDRS_B
 *               [--ktls] [--rekey-bytes N]
 *       a TUN device in each namespace (ADDRS: PREFIX[,PREFIX]), joined by two
 *       iprelay/packet_relay ends over a TLS session on a socketpair (A the client
 *       with PKI_DIR's alice, B the hub with its server, which lets A send from its
 *       own addresses only; both clamp the MSS of SYNs). Prints "ready", and at the
 *       end of stdin the counts: "relayed N dropped N clamped N batches N".
 *       --ktls: the session runs over TCP on 127.0.0.1 in NS_B (its lo must be up),
 *       and after the handshake both ends hand their keys to the kernel
 *       (ktls/ktls_offload); when it refuses, the tool fails: there is no fallback.
 *       The counts are followed by "ktls tx_rekeys N rx_rekeys N" (both ends added).
 *       --rekey-bytes N: with --ktls, each end sends a KeyUpdate after N bytes under
 *       one key (the rekey_bytes policy; the kernel must take new keys, 6.14+).
 *   netdev_tool hub TUNNEL COUNTER MTU [--hub ADDR]... [--client ADDR]... [--net NETWORK]...
 *       a "supervisor" and a forked "worker" joined by a socketpair: the worker asks
 *       for a hub device for its client (proto/tun_request), the supervisor creates
 *       it with the client's ADDRs and NETWORKs (netdev/hub_device; its owner HUB_OWNER)
 *       and hands the descriptor over
 *       (core/fd_passing), then closes its own. The worker prints "holding DEVICE PID"
 *       and holds the descriptor until the end of stdin, or prints "refused REASON".
 *       The supervisor prints "worker exited N" or "worker killed by signal N" and
 *       exits with the worker's status (0 when killed).
 * Errors go to stderr as netdev and the relay report them; exit status 1. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "core/fd_passing.h"
#include "core/ip_prefix.h"
#include "iprelay/packet_relay.h"
#include "ktls/ktls_keys.h"
#include "ktls/ktls_offload.h"
#include "netdev/hub_device.h"
#include "netdev/netdev.h"
#include "proto/tun_request.h"
#include "netdev/tun_device.h"

#define MAX_PREFIXES 16
#define HUB_OWNER NETDEV_OWNER_PREFIX "/run/netdev_tool"

static char err[512];

static int usage(void)
{
    fprintf(stderr, "usage: netdev_tool up NAME MTU [--persist] [--owner OWNER] "
                    "[--addr PREFIX]... [--route NETWORK]...\n"
                    "       netdev_tool delete NAME | leftovers PREFIX OWNER | owner NAME\n"
                    "       netdev_tool relay MTU PKI_DIR NS_A NAME_A ADDRS_A NS_B NAME_B ADDRS_B "
                    "[--ktls] [--rekey-bytes N]\n"
                    "       netdev_tool hub TUNNEL COUNTER MTU [--hub ADDR]... [--client ADDR]... "
                    "[--net NETWORK]...\n");
    return 2;
}

static int parse_prefix(const char *text, struct ip_prefix *out)
{
    const char *reason;
    if (ip_prefix_parse(text, out, &reason) != 0) {
        fprintf(stderr, "netdev_tool: %s: %s\n", text, reason);
        return -1;
    }
    return 0;
}

static void wait_for_end_of_stdin(void)
{
    char buf[256];
    while (read(0, buf, sizeof(buf)) > 0)
        ;
}

static int cmd_up(int argc, char **argv)
{
    const char *name = argv[0];
    unsigned mtu = (unsigned)strtoul(argv[1], NULL, 10);
    struct ip_prefix addrs[MAX_PREFIXES], routes[MAX_PREFIXES];
    size_t naddrs = 0, nroutes = 0;
    unsigned flags = 0;
    const char *owner = NULL;
    struct netdev *nd = NULL;
    int fd = -1, rc = 1;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--persist") == 0) {
            flags |= TUN_DEVICE_PERSIST;
        } else if (strcmp(argv[i], "--owner") == 0 && i + 1 < argc) {
            owner = argv[++i];
        } else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc && naddrs < MAX_PREFIXES) {
            if (parse_prefix(argv[++i], &addrs[naddrs++]) != 0)
                return 2;
        } else if (strcmp(argv[i], "--route") == 0 && i + 1 < argc && nroutes < MAX_PREFIXES) {
            if (parse_prefix(argv[++i], &routes[nroutes++]) != 0)
                return 2;
        } else {
            return usage();
        }
    }
    if ((fd = tun_device_open(name, flags, err, sizeof(err))) < 0 ||
        (nd = netdev_open(err, sizeof(err))) == NULL ||
        (owner != NULL && netdev_set_owner(nd, name, owner, err, sizeof(err)) != 0) ||
        netdev_set_mtu_up(nd, name, mtu, err, sizeof(err)) != 0)
        goto out;
    for (size_t i = 0; i < naddrs; i++)
        if (netdev_add_address(nd, name, &addrs[i], err, sizeof(err)) != 0)
            goto out;
    for (size_t i = 0; i < nroutes; i++)
        if (netdev_add_route(nd, name, &routes[i], err, sizeof(err)) != 0)
            goto out;
    printf("ready %s\n", name);
    fflush(stdout);
    if (flags & TUN_DEVICE_PERSIST) {
        rc = 0;
        goto out;
    }
    wait_for_end_of_stdin();
    for (size_t i = 0; i < nroutes; i++)
        if (netdev_remove_route(nd, name, &routes[i], err, sizeof(err)) != 0)
            goto out;
    for (size_t i = 0; i < naddrs; i++)
        if (netdev_remove_address(nd, name, &addrs[i], err, sizeof(err)) != 0)
            goto out;
    if (netdev_delete(nd, name, err, sizeof(err)) != 0)
        goto out;
    printf("removed %s\n", name);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "netdev_tool: %s\n", err);
    netdev_close(nd);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int cmd_delete(const char *name)
{
    struct netdev *nd = netdev_open(err, sizeof(err));
    int rc = nd != NULL && netdev_delete(nd, name, err, sizeof(err)) == 0 ? 0 : 1;
    if (rc == 0)
        printf("deleted %s\n", name);
    else
        fprintf(stderr, "netdev_tool: %s\n", err);
    netdev_close(nd);
    return rc;
}

static int cmd_leftovers(const char *prefix, const char *owner)
{
    unsigned removed = 0;
    struct netdev *nd = netdev_open(err, sizeof(err));
    int rc = nd != NULL &&
                     netdev_remove_leftovers(nd, prefix, owner, &removed, err, sizeof(err)) == 0
                 ? 0 : 1;
    printf("removed %u\n", removed);
    if (rc != 0)
        fprintf(stderr, "netdev_tool: %s\n", err);
    netdev_close(nd);
    return rc;
}

static int cmd_owner(const char *name)
{
    char owner[NETDEV_OWNER_MAX + 1];
    struct netdev *nd = netdev_open(err, sizeof(err));
    int found = nd != NULL ? netdev_owner(nd, name, owner, sizeof(owner), err, sizeof(err)) : -1;
    if (found < 0)
        fprintf(stderr, "netdev_tool: %s\n", err);
    else if (found == 0)
        printf("absent\n");
    else if (owner[0] == '\0')
        printf("none\n");
    else
        printf("owner %s\n", owner);
    netdev_close(nd);
    return found < 0 ? 1 : 0;
}

/* One end of the relay: a TUN device in a namespace, its addresses, its TLS end. */
struct end {
    const char *name;
    int fd;
    struct ip_prefix addrs[MAX_PREFIXES];
    size_t naddrs;
    int sock;
    SSL *ssl;
    struct ktls_secrets secrets;      /* --ktls: kept for KeyUpdate while the relay runs */
    struct ktls_offload_state offload;
    struct packet_relay *relay;
    int want_write;
};

static int enter_namespace(const char *ns)
{
    char path[256];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        snprintf(err, sizeof(err), "namespace %s: %s", ns, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Makes END's device in namespace NS with the addresses in ADDRS ("P[,P]"). */
static int bring_up(struct end *end, const char *ns, const char *name, char *addrs, unsigned mtu)
{
    struct netdev *nd = NULL;
    int rc = -1;

    end->name = name;
    if (enter_namespace(ns) != 0)
        return -1;
    if ((end->fd = tun_device_open(name, 0, err, sizeof(err))) < 0 ||
        (nd = netdev_open(err, sizeof(err))) == NULL ||
        netdev_set_mtu_up(nd, name, mtu, err, sizeof(err)) != 0)
        goto out;
    for (char *save = NULL, *text = strtok_r(addrs, ",", &save); text != NULL;
         text = strtok_r(NULL, ",", &save)) {
        struct ip_prefix *a = &end->addrs[end->naddrs];
        if (end->naddrs == MAX_PREFIXES || parse_prefix(text, a) != 0 ||
            netdev_add_address(nd, name, a, err, sizeof(err)) != 0)
            goto out;
        end->naddrs++;
    }
    rc = 0;
out:
    netdev_close(nd);
    return rc;
}

/* Two ends of a TCP connection on 127.0.0.1 (kTLS needs TCP), non-blocking, the tls
 * ULP attached while they are ESTABLISHED. Returns 0, or -1 with err. */
static int tcp_pair(int socks[2])
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(addr);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = -1;

    socks[0] = socks[1] = -1;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        listen(listener, 1) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0 ||
        (socks[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(socks[0], (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        (socks[1] = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        snprintf(err, sizeof(err), "TCP on 127.0.0.1: %s", strerror(errno));
        goto out;
    }
    for (int i = 0; i < 2; i++)
        if (fcntl(socks[i], F_SETFL, O_NONBLOCK) != 0 ||
            ktls_offload_attach(socks[i], err, sizeof(err)) != 0)
            goto out;
    rc = 0;
out:
    if (listener >= 0)
        close(listener);
    return rc;
}

/* Hands END's session to the kernel; refuses to go on without it. */
static int offload(struct end *end)
{
    char reason[256];
    if (ktls_offload_install(end->ssl, end->sock, &end->secrets, &end->offload, reason,
                             sizeof(reason)) != 0) {
        snprintf(err, sizeof(err), "kTLS for %s: %s", end->name, reason);
        return -1;
    }
    /* The kernel speaks for the session now; OpenSSL must not touch the socket. */
    SSL_free(end->ssl);
    end->ssl = NULL;
    return 0;
}

/* A TLS session between the two ends over a socketpair (KTLS: TCP, then the keys go
 * to the kernel): A the client (alice), B the hub (server), with the test PKI in
 * PKI_DIR. */
static int connect_ends(struct end *a, struct end *b, const char *pki_dir, int ktls)
{
    char path[512], key[512];
    int socks[2];
    SSL_CTX *hub_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *client_ctx = SSL_CTX_new(TLS_client_method());
    int rc = -1;

    if (hub_ctx == NULL || client_ctx == NULL) {
        snprintf(err, sizeof(err), "TLS setup: %s", strerror(errno));
        goto out;
    }
    if (ktls) {
        int made = tcp_pair(socks);
        a->sock = socks[0];
        b->sock = socks[1];
        if (made != 0)
            goto out;
        /* The kernel's record numbers start where OpenSSL's do only without tickets. */
        SSL_CTX_set_num_tickets(hub_ctx, 0);
        ktls_offload_prepare_context(hub_ctx);
        ktls_offload_prepare_context(client_ctx);
    } else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, socks) != 0) {
        snprintf(err, sizeof(err), "TLS setup: %s", strerror(errno));
        goto out;
    } else {
        a->sock = socks[0];
        b->sock = socks[1];
    }
    snprintf(path, sizeof(path), "%s/server.pem", pki_dir);
    snprintf(key, sizeof(key), "%s/server.key", pki_dir);
    int ok = SSL_CTX_use_certificate_chain_file(hub_ctx, path) == 1 &&
             SSL_CTX_use_PrivateKey_file(hub_ctx, key, SSL_FILETYPE_PEM) == 1;
    snprintf(path, sizeof(path), "%s/alice.pem", pki_dir);
    snprintf(key, sizeof(key), "%s/alice.key", pki_dir);
    ok = ok && SSL_CTX_use_certificate_chain_file(client_ctx, path) == 1 &&
         SSL_CTX_use_PrivateKey_file(client_ctx, key, SSL_FILETYPE_PEM) == 1;
    snprintf(path, sizeof(path), "%s/ca.pem", pki_dir);
    ok = ok && SSL_CTX_load_verify_locations(client_ctx, path, NULL) == 1 &&
         SSL_CTX_load_verify_locations(hub_ctx, path, NULL) == 1;
    if (!ok) {
        snprintf(err, sizeof(err), "TLS setup: cannot load the PKI in %s", pki_dir);
        goto out;
    }
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_verify(hub_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    a->ssl = SSL_new(client_ctx);
    b->ssl = SSL_new(hub_ctx);
    if (a->ssl == NULL || b->ssl == NULL)
        goto out;
    SSL_set_fd(a->ssl, a->sock);
    SSL_set_fd(b->ssl, b->sock);
    SSL_set_connect_state(a->ssl);
    SSL_set_accept_state(b->ssl);
    if (ktls) {
        ktls_offload_collect_secrets(a->ssl, &a->secrets);
        ktls_offload_collect_secrets(b->ssl, &b->secrets);
    }
    int a_done = 0, b_done = 0;
    for (int i = 0; i < 1000 && !(a_done && b_done); i++) {
        int r = a_done ? 1 : SSL_do_handshake(a->ssl);
        a_done = r == 1;
        if (r != 1 && SSL_get_error(a->ssl, r) != SSL_ERROR_WANT_READ)
            break;
        r = b_done ? 1 : SSL_do_handshake(b->ssl);
        b_done = r == 1;
        if (r != 1 && SSL_get_error(b->ssl, r) != SSL_ERROR_WANT_READ)
            break;
    }
    if (!a_done || !b_done) {
        snprintf(err, sizeof(err), "TLS handshake failed");
        goto out;
    }
    if (ktls && (offload(a) != 0 || offload(b) != 0))
        goto out;
    rc = 0;
out:
    SSL_CTX_free(hub_ctx);   /* the sessions keep a reference */
    SSL_CTX_free(client_ctx);
    return rc;
}

/* Runs END's relay for what poll reported in REVENTS of its TUN and its socket. */
static int step(struct end *end, short tun_events, short sock_events)
{
    enum packet_relay_status st = PACKET_RELAY_OK;
    if ((sock_events & (POLLIN | POLLHUP)) != 0)
        st = packet_relay_from_tls(end->relay);
    if (st == PACKET_RELAY_OK &&
        ((tun_events & POLLIN) != 0 || (end->want_write && (sock_events & POLLOUT) != 0)))
        st = packet_relay_from_tun(end->relay);
    end->want_write = st == PACKET_RELAY_WANT_WRITE;
    if (st == PACKET_RELAY_ERROR || st == PACKET_RELAY_CLOSED) {
        snprintf(err, sizeof(err), "relay %s: %s", end->name,
                 st == PACKET_RELAY_CLOSED ? "closed" : packet_relay_error(end->relay));
        if (st == PACKET_RELAY_ERROR)
            packet_relay_abort(end->relay, 0);
        return -1;
    }
    return 0;
}

static int cmd_relay(int argc, char **argv)
{
    unsigned mtu = (unsigned)strtoul(argv[0], NULL, 10);
    static struct end a = { .fd = -1, .sock = -1 }, b = { .fd = -1, .sock = -1 };
    int rc = 1, ktls = 0;
    uint64_t rekey_bytes = 0;

    for (int i = 8; i < argc; i++) {
        if (strcmp(argv[i], "--ktls") == 0)
            ktls = 1;
        else if (strcmp(argv[i], "--rekey-bytes") == 0 && i + 1 < argc)
            rekey_bytes = strtoull(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (bring_up(&a, argv[2], argv[3], argv[4], mtu) != 0 ||
        bring_up(&b, argv[5], argv[6], argv[7], mtu) != 0 ||
        connect_ends(&a, &b, argv[1], ktls) != 0)
        goto out;
    a.offload.policy.bytes = b.offload.policy.bytes = rekey_bytes;
    /* The hub lets the client use its own addresses only, not their networks. */
    struct ip_prefix allowed[MAX_PREFIXES];
    for (size_t i = 0; i < a.naddrs; i++) {
        allowed[i] = a.addrs[i];
        allowed[i].len = (uint8_t)ip_prefix_max_len(allowed[i].family);
    }
    struct packet_relay_config client = { .hub = 0, .mtu = mtu, .mss_clamp = 1 };
    struct packet_relay_config hub = { .hub = 1, .mtu = mtu, .mss_clamp = 1, .allowed = allowed,
                                       .allowed_count = a.naddrs };
    if (ktls) {
        a.relay = packet_relay_new_ktls(a.fd, a.sock, &a.offload, &a.secrets, &client);
        b.relay = packet_relay_new_ktls(b.fd, b.sock, &b.offload, &b.secrets, &hub);
    } else {
        a.relay = packet_relay_new(a.fd, a.ssl, &client);
        b.relay = packet_relay_new(b.fd, b.ssl, &hub);
    }
    if (a.relay == NULL || b.relay == NULL) {
        snprintf(err, sizeof(err), "cannot make the relays");
        goto out;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        /* While a batch waits for the socket, the TUN is left alone. */
        struct pollfd fds[5] = {
            { .fd = a.fd, .events = a.want_write ? 0 : POLLIN },
            { .fd = a.sock, .events = POLLIN | (a.want_write ? POLLOUT : 0) },
            { .fd = b.fd, .events = b.want_write ? 0 : POLLIN },
            { .fd = b.sock, .events = POLLIN | (b.want_write ? POLLOUT : 0) },
            { .fd = 0, .events = POLLIN },
        };
        if (poll(fds, 5, -1) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, sizeof(err), "poll: %s", strerror(errno));
            goto out;
        }
        if (fds[4].revents != 0) {
            char buf[64];
            if (read(0, buf, sizeof(buf)) <= 0)
                break;
        }
        if (step(&a, fds[0].revents, fds[1].revents) != 0 ||
            step(&b, fds[2].revents, fds[3].revents) != 0)
            goto out;
    }
    const struct packet_relay_counters *ca = packet_relay_counters(a.relay);
    const struct packet_relay_counters *cb = packet_relay_counters(b.relay);
    uint64_t relayed = ca->received_packets + cb->received_packets;
    uint64_t dropped = cb->dropped_source + ca->dropped_invalid + cb->dropped_invalid;
    printf("relayed %" PRIu64 " dropped %" PRIu64 " clamped %" PRIu64 " batches %" PRIu64 "\n",
           relayed, dropped, ca->clamped + cb->clamped, ca->sent_batches + cb->sent_batches);
    if (ktls)
        printf("ktls tx_rekeys %" PRIu64 " rx_rekeys %" PRIu64 "\n",
               a.offload.tx_rekeys + b.offload.tx_rekeys, a.offload.rx_rekeys + b.offload.rx_rekeys);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "netdev_tool: %s\n", err);
    packet_relay_free(a.relay);
    packet_relay_free(b.relay);
    SSL_free(a.ssl);
    SSL_free(b.ssl);
    ktls_keys_wipe(&a.secrets);
    ktls_keys_wipe(&b.secrets);
    for (int i = 0; i < 2; i++) {
        struct end *e = i == 0 ? &a : &b;
        if (e->fd >= 0)
            close(e->fd);
        if (e->sock >= 0)
            close(e->sock);
    }
    return rc;
}

/* What the "supervisor" gives the one client: its addresses and networks. */
struct hub_client {
    unsigned mtu;
    size_t nhubs, naddrs, nnets;
    struct ip_prefix hubs[MAX_PREFIXES], addrs[TUN_REQUEST_MAX_ADDRESSES], nets[MAX_PREFIXES];
};

/* The worker's side: asks for the device, holds what comes until the end of stdin. */
static int hub_worker(int sock, const char *tunnel)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    struct tun_message req = { .type = TUN_MESSAGE_HUB, .id = 42 }, reply;
    const char *reason = "no reply";
    int fd = -1;
    snprintf(req.tunnel, sizeof(req.tunnel), "%s", tunnel);
    strcpy(req.identity, "client");
    size_t len = tun_request_encode(&req, buf, sizeof(buf));
    if (len == 0 || fd_passing_send(sock, buf, len, -1, 0) != 0) {
        fprintf(stderr, "netdev_tool: worker: cannot send the request\n");
        return 1;
    }
    ssize_t got = fd_passing_recv(sock, buf, sizeof(buf), &fd, 0);
    if (got <= 0 || tun_request_decode(buf, (size_t)got, &reply, &reason) != 0 ||
        reply.type != TUN_MESSAGE_REPLY || reply.id != req.id) {
        fprintf(stderr, "netdev_tool: worker: bad reply: %s\n", reason);
        goto fail;
    }
    if (reply.refused) {
        printf("refused %s\n", reply.reason);
        goto fail;
    }
    if (fd < 0) {
        fprintf(stderr, "netdev_tool: worker: no descriptor with the reply\n");
        goto fail;
    }
    printf("holding %s %d\n", reply.device, (int)getpid());
    fflush(stdout);
    wait_for_end_of_stdin();
    close(fd);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return 1;
}

/* The supervisor's side: one request, one device, the descriptor handed over. */
static int hub_supervisor(int sock, unsigned counter, const struct hub_client *client)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    struct tun_message req, reply;
    const char *reason = "no request";
    char device[TUN_REQUEST_DEVICE_MAX + 1];
    struct netdev *nd = NULL;
    int fd = -1, stray = -1, rc = 1;
    ssize_t got = fd_passing_recv(sock, buf, sizeof(buf), &stray, 0);
    if (stray >= 0)
        close(stray);
    if (got <= 0 || tun_request_decode(buf, (size_t)got, &req, &reason) != 0 ||
        req.type != TUN_MESSAGE_HUB) {
        fprintf(stderr, "netdev_tool: supervisor: bad request: %s\n", reason);
        return 1;
    }
    struct hub_device_spec spec = {
        .tunnel = req.tunnel, .owner = HUB_OWNER, .counter = counter, .mtu = client->mtu,
        .hub_count = client->nhubs, .hub_addresses = client->hubs,
        .client_count = client->naddrs, .client_addresses = client->addrs,
        .network_count = client->nnets, .networks = client->nets,
    };
    if ((nd = netdev_open(err, sizeof(err))) == NULL ||
        (fd = hub_device_create(nd, &spec, device, sizeof(device), err, sizeof(err))) < 0)
        tun_request_reply(&reply, req.id, NULL, 0, NULL, err);
    else
        tun_request_reply(&reply, req.id, device, client->naddrs, client->addrs, NULL);
    size_t len = tun_request_encode(&reply, buf, sizeof(buf));
    if (len > 0 && fd_passing_send(sock, buf, len, fd, 0) == 0)
        rc = 0;
    else
        fprintf(stderr, "netdev_tool: supervisor: cannot send the reply\n");
    /* From here the worker's descriptor is the device's only one. */
    if (fd >= 0)
        close(fd);
    netdev_close(nd);
    return rc;
}

static int cmd_hub(int argc, char **argv)
{
    struct hub_client client = { .mtu = (unsigned)strtoul(argv[2], NULL, 10) };
    unsigned counter = (unsigned)strtoul(argv[1], NULL, 10);
    int pair[2], status = 0;
    for (int i = 3; i < argc; i++) {
        struct ip_prefix *into = NULL;
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--hub") == 0 && client.nhubs < MAX_PREFIXES)
            into = &client.hubs[client.nhubs++];
        else if (strcmp(argv[i], "--client") == 0 && client.naddrs < TUN_REQUEST_MAX_ADDRESSES)
            into = &client.addrs[client.naddrs++];
        else if (strcmp(argv[i], "--net") == 0 && client.nnets < MAX_PREFIXES)
            into = &client.nets[client.nnets++];
        if (into == NULL)
            return usage();
        if (parse_prefix(argv[++i], into) != 0)
            return 2;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        perror("netdev_tool: socketpair");
        return 1;
    }
    pid_t worker = fork();
    if (worker < 0) {
        perror("netdev_tool: fork");
        return 1;
    }
    if (worker == 0) {
        close(pair[0]);
        _exit(hub_worker(pair[1], argv[0]));
    }
    close(pair[1]);
    int rc = hub_supervisor(pair[0], counter, &client);
    close(pair[0]);
    if (waitpid(worker, &status, 0) < 0)
        return 1;
    if (WIFSIGNALED(status)) {
        printf("worker killed by signal %d\n", WTERMSIG(status));
        return rc;
    }
    printf("worker exited %d\n", WEXITSTATUS(status));
    return rc != 0 ? rc : WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && strcmp(argv[1], "up") == 0)
        return cmd_up(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "delete") == 0)
        return cmd_delete(argv[2]);
    if (argc == 4 && strcmp(argv[1], "leftovers") == 0)
        return cmd_leftovers(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "owner") == 0)
        return cmd_owner(argv[2]);
    if (argc >= 10 && strcmp(argv[1], "relay") == 0)
        return cmd_relay(argc - 2, argv + 2);
    if (argc >= 5 && strcmp(argv[1], "hub") == 0)
        return cmd_hub(argc - 2, argv + 2);
    return usage();
}
