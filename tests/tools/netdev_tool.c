/* netdev_tool — drives daemon/netdev/ (and, in relay mode, the packet checks and the
 * tunnel frames) for tests/integration/test_netdev.sh. Run as root, inside the
 * network namespaces the test made.
 *
 *   netdev_tool up NAME MTU [--persist] [--addr PREFIX]... [--route NETWORK]...
 *       creates and configures the TUN device, prints "ready NAME"; then, unless
 *       --persist (the device is left behind, as by a crash), waits for the end of
 *       stdin, removes the routes and addresses one by one, deletes the device and
 *       prints "removed NAME".
 *   netdev_tool delete NAME          deletes a device; prints "deleted NAME"
 *   netdev_tool leftovers PREFIX     prints "removed N" (netdev_remove_leftovers)
 *   netdev_tool relay MTU NS_A NAME_A ADDRS_A NS_B NAME_B ADDRS_B
 *       a TUN device in each namespace (ADDRS: PREFIX[,PREFIX]), packets relayed
 *       between their descriptors as a network tunnel will: checked, their source
 *       matched against the sender's addresses, SYNs clamped, batched into frames and
 *       read back cut in odd pieces. Prints "ready", and at the end of stdin the
 *       counts: "relayed N dropped N clamped N".
 * Errors go to stderr as netdev reports them; exit status 1. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ip_prefix.h"
#include "netdev/netdev.h"
#include "netdev/tun_device.h"
#include "packet/ip_packet.h"
#include "packet/mss_clamp.h"
#include "proto/tunnel_frame.h"

#define MAX_PREFIXES 16

static char err[512];

static int usage(void)
{
    fprintf(stderr, "usage: netdev_tool up NAME MTU [--persist] [--addr PREFIX]... "
                    "[--route NETWORK]...\n"
                    "       netdev_tool delete NAME | leftovers PREFIX\n"
                    "       netdev_tool relay MTU NS_A NAME_A ADDRS_A NS_B NAME_B ADDRS_B\n");
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
    struct netdev *nd = NULL;
    int fd = -1, rc = 1;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--persist") == 0) {
            flags |= TUN_DEVICE_PERSIST;
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

static int cmd_leftovers(const char *prefix)
{
    unsigned removed = 0;
    struct netdev *nd = netdev_open(err, sizeof(err));
    int rc = nd != NULL && netdev_remove_leftovers(nd, prefix, &removed, err, sizeof(err)) == 0
                 ? 0 : 1;
    printf("removed %u\n", removed);
    if (rc != 0)
        fprintf(stderr, "netdev_tool: %s\n", err);
    netdev_close(nd);
    return rc;
}

/* One end of the relay: a TUN device in a namespace and who may send from it. */
struct end {
    const char *name;
    int fd;
    struct ip_prefix allowed[MAX_PREFIXES];
    size_t nallowed;
};

static unsigned long relayed, dropped, clamped;

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
    end->nallowed = 0;
    if (enter_namespace(ns) != 0)
        return -1;
    if ((end->fd = tun_device_open(name, 0, err, sizeof(err))) < 0 ||
        (nd = netdev_open(err, sizeof(err))) == NULL ||
        netdev_set_mtu_up(nd, name, mtu, err, sizeof(err)) != 0)
        goto out;
    for (char *save = NULL, *text = strtok_r(addrs, ",", &save); text != NULL;
         text = strtok_r(NULL, ",", &save)) {
        struct ip_prefix *a = &end->allowed[end->nallowed];
        if (end->nallowed == MAX_PREFIXES || parse_prefix(text, a) != 0 ||
            netdev_add_address(nd, name, a, err, sizeof(err)) != 0)
            goto out;
        /* The sender may use its own address, not the whole on-link network. */
        a->len = (uint8_t)ip_prefix_max_len(a->family);
        end->nallowed++;
    }
    rc = 0;
out:
    netdev_close(nd);
    return rc;
}

/* Writes the packets of a batch (LEN bytes) to TO, read back through a frame reader
 * in pieces of 1000 bytes so frames are cut across reads. */
static int deliver(const unsigned char *batch, size_t len, const struct end *to, unsigned mtu)
{
    static struct tunnel_frame_reader reader;
    tunnel_frame_reader_init(&reader, TUNNEL_FROM_CLIENT, mtu);
    for (size_t at = 0; at < len;) {
        size_t piece_end = len - at > 1000 ? at + 1000 : len;
        while (at < piece_end) {
            struct tunnel_frame frame;
            size_t used = 0;
            enum tunnel_frame_status st =
                tunnel_frame_read(&reader, batch + at, piece_end - at, &used, &frame);
            at += used;
            if (st == TUNNEL_FRAME_NEED_MORE)
                break;
            if (st != TUNNEL_FRAME_OK) {
                snprintf(err, sizeof(err), "frames: %s", tunnel_frame_status_text(st));
                return -1;
            }
            if (write(to->fd, frame.payload, frame.len) < 0 && errno != EAGAIN)
                fprintf(stderr, "netdev_tool: write to %s: %s\n", to->name, strerror(errno));
            relayed++;
        }
    }
    return 0;
}

/* Moves what FROM has to read over to TO. Returns -1 on a fatal error. */
static int pump(const struct end *from, const struct end *to, unsigned mtu)
{
    static unsigned char batch[TUNNEL_BATCH_MAX];
    unsigned char packet[TUNNEL_MTU_MAX];
    struct tunnel_frame_writer w;

    tunnel_frame_writer_init(&w, batch, sizeof(batch));
    for (int n = 0; n < 64; n++) {
        ssize_t len = read(from->fd, packet, sizeof(packet));
        if (len <= 0)
            break;
        struct ip_packet p;
        if (ip_packet_parse(packet, (size_t)len, &p) != IP_PACKET_OK ||
            !ip_packet_source_allowed(&p, from->allowed, from->nallowed)) {
            dropped++;
            continue;
        }
        clamped += (unsigned long)mss_clamp(packet, &p, mtu);
        if (tunnel_frame_put_packet(&w, packet, (size_t)len) == 0) {
            if (deliver(batch, w.len, to, mtu) != 0)
                return -1;
            tunnel_frame_writer_init(&w, batch, sizeof(batch));
            tunnel_frame_put_packet(&w, packet, (size_t)len);
        }
    }
    return deliver(batch, w.len, to, mtu);
}

static int cmd_relay(char **argv)
{
    unsigned mtu = (unsigned)strtoul(argv[0], NULL, 10);
    struct end a = { .fd = -1 }, b = { .fd = -1 };
    int rc = 1;

    if (bring_up(&a, argv[1], argv[2], argv[3], mtu) != 0 ||
        bring_up(&b, argv[4], argv[5], argv[6], mtu) != 0)
        goto out;
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct pollfd fds[3] = { { .fd = a.fd, .events = POLLIN },
                                 { .fd = b.fd, .events = POLLIN },
                                 { .fd = 0, .events = POLLIN } };
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, sizeof(err), "poll: %s", strerror(errno));
            goto out;
        }
        if (fds[2].revents != 0) {
            char buf[64];
            if (read(0, buf, sizeof(buf)) <= 0)
                break;
        }
        if ((fds[0].revents & POLLIN) && pump(&a, &b, mtu) != 0)
            goto out;
        if ((fds[1].revents & POLLIN) && pump(&b, &a, mtu) != 0)
            goto out;
    }
    printf("relayed %lu dropped %lu clamped %lu\n", relayed, dropped, clamped);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "netdev_tool: %s\n", err);
    if (a.fd >= 0)
        close(a.fd);
    if (b.fd >= 0)
        close(b.fd);
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && strcmp(argv[1], "up") == 0)
        return cmd_up(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "delete") == 0)
        return cmd_delete(argv[2]);
    if (argc == 3 && strcmp(argv[1], "leftovers") == 0)
        return cmd_leftovers(argv[2]);
    if (argc == 9 && strcmp(argv[1], "relay") == 0)
        return cmd_relay(argv + 2);
    return usage();
}
