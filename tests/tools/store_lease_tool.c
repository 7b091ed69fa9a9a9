/* store_lease_tool — drives daemon/store/store_leases.c (the network hubs' address
 * allocator in the shared state store) directly against a real PostgreSQL, for
 * tests/integration/test_store_leases.sh.
 *
 *   store_lease_tool CONNINFO take GATEWAY TUNNEL IDENTITY POOL[,POOL6] [RESERVE...]
 *       prints "ok ADDR[ ADDR6]" (exit 0), "refused REASON" (exit 1) or
 *       "error REASON" (exit 2)
 *   store_lease_tool CONNINFO release GATEWAY TUNNEL IDENTITY
 *   store_lease_tool CONNINFO release-all GATEWAY
 *       print "ok" (exit 0) or "error REASON" (exit 2)
 *   store_lease_tool CONNINFO burst GATEWAY TUNNEL PREFIX N POOL [RESERVE...]
 *       N takes in a row on one connection for the identities PREFIX0001..PREFIXN,
 *       one line each as take prints it, once connected and stdin has ended (a test
 *       starts several at once so); exit 2 when any was an error, else 0
 *
 * POOL is a hub's address with the pool's length (10.9.0.1/29), as a TAKE carries it;
 * RESERVE an address never to lease. Before its command the tool migrates the schema
 * and registers GATEWAY in ktlstun_gateway with last_seen = now() when it is not there
 * yet: a gateway already there keeps its last_seen, so that a test can make it stale. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ip_prefix.h"
#include "proto/lease_msg.h"
#include "store/store_connect.h"
#include "store/store_leases.h"
#include "store/store_schema.h"

#define EXIT_REFUSED 1
#define EXIT_ERROR 2

static void usage(void)
{
    fprintf(stderr,
            "usage: store_lease_tool CONNINFO take GATEWAY TUNNEL IDENTITY POOL[,POOL6] [RESERVE...]\n"
            "       store_lease_tool CONNINFO release GATEWAY TUNNEL IDENTITY\n"
            "       store_lease_tool CONNINFO release-all GATEWAY\n"
            "       store_lease_tool CONNINFO burst GATEWAY TUNNEL PREFIX N POOL [RESERVE...]\n");
}

/* Copies TEXT into DST (LEN bytes) whole. Returns 0, or -1 with the reason printed
 * when it does not fit: a truncated identity would lease another client's address. */
static int copy_whole(char *dst, size_t len, const char *what, const char *text)
{
    size_t n = strlen(text);
    if (n >= len) {
        printf("error the %s is %zu bytes, a TAKE carries at most %zu\n", what, n, len - 1);
        return -1;
    }
    memcpy(dst, text, n + 1);
    return 0;
}

/* Fills REQ's tunnel, pools (POOLS: comma-separated) and reserve addresses (RESERVE,
 * COUNT of them). Returns 0, or -1 with the reason printed. */
static int build_take(struct lease_msg *req, const char *tunnel, const char *pools,
                      char *const *reserve, int count)
{
    char list[256];
    char *save = NULL;
    const char *why = NULL;
    memset(req, 0, sizeof(*req));
    req->type = LEASE_MSG_TAKE;
    req->id = 1;
    if (copy_whole(req->tunnel, sizeof(req->tunnel), "tunnel", tunnel) < 0 ||
        copy_whole(list, sizeof(list), "pool list", pools) < 0)
        return -1;
    for (char *p = strtok_r(list, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
        if (req->count == LEASE_MSG_FAMILIES) {
            printf("error at most %d pools\n", LEASE_MSG_FAMILIES);
            return -1;
        }
        if (ip_prefix_parse(p, &req->addresses[req->count], &why) != 0) {
            printf("error pool %s: %s\n", p, why);
            return -1;
        }
        req->count++;
    }
    if (count > LEASE_MSG_RESERVE_MAX) {
        printf("error at most %d reserve addresses\n", LEASE_MSG_RESERVE_MAX);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (ip_prefix_parse(reserve[i], &req->reserve[i], &why) != 0) {
            printf("error reserve %s: %s\n", reserve[i], why);
            return -1;
        }
        req->reserve_count++;
    }
    return 0;
}

/* Runs REQ for IDENTITY and prints its outcome. Returns 0 (ok), EXIT_REFUSED or
 * EXIT_ERROR. */
static int take(PGconn *conn, const char *gateway, struct lease_msg *req, const char *identity)
{
    struct lease_msg reply;
    char err[512], text[IP_PREFIX_TEXT_MAX];
    if (copy_whole(req->identity, sizeof(req->identity), "identity", identity) < 0)
        return EXIT_ERROR;
    if (store_leases_take(conn, gateway, req, &reply, err, sizeof(err)) < 0) {
        printf("error %s\n", err);
        return EXIT_ERROR;
    }
    if (reply.result != LEASE_RESULT_OK) {
        printf("refused %s\n", reply.text);
        return EXIT_REFUSED;
    }
    if (reply.count != req->count) {
        printf("error %u addresses for %u pools\n", reply.count, req->count);
        return EXIT_ERROR;
    }
    printf("ok");
    for (uint32_t i = 0; i < reply.count; i++) {
        /* The store's host address, printed bare as PostgreSQL's host() writes it. */
        char *slash = strchr(ip_prefix_format(&reply.addresses[i], text, sizeof(text)), '/');
        if (slash != NULL)
            *slash = '\0';
        printf(" %s", text);
    }
    printf("\n");
    return 0;
}

/* Registers GATEWAY as seen now unless it is there already. Returns 0, or -1 with the
 * reason printed. */
static int register_gateway(PGconn *conn, const char *gateway)
{
    char err[512], pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    const char *params[] = { gateway, pid };
    if (store_connect_command(conn,
                              "INSERT INTO ktlstun_gateway (name, pid, version, started_at, last_seen)"
                              " VALUES ($1, $2::integer, 'store_lease_tool', now(), now())"
                              " ON CONFLICT (name) DO NOTHING",
                              2, params, err, sizeof(err)) < 0) {
        printf("error registering %s: %s\n", gateway, err);
        return -1;
    }
    return 0;
}

/* Runs the command ARGV[0] (ARGC words) on CONN. Returns the exit status. */
static int run(PGconn *conn, int argc, char **argv)
{
    struct lease_msg req;
    char err[512];
    const char *cmd = argv[0];
    if (argc < 2) {
        usage();
        return EXIT_ERROR;
    }
    if (register_gateway(conn, argv[1]) < 0)
        return EXIT_ERROR;
    if (strcmp(cmd, "take") == 0 && argc >= 5) {
        if (build_take(&req, argv[2], argv[4], argv + 5, argc - 5) < 0)
            return EXIT_ERROR;
        return take(conn, argv[1], &req, argv[3]);
    }
    if ((strcmp(cmd, "release") == 0 && argc == 4) || (strcmp(cmd, "release-all") == 0 && argc == 2)) {
        if (store_leases_release(conn, argv[1], argc == 4 ? argv[2] : NULL,
                                 argc == 4 ? argv[3] : NULL, err, sizeof(err)) < 0) {
            printf("error %s\n", err);
            return EXIT_ERROR;
        }
        printf("ok\n");
        return 0;
    }
    if (strcmp(cmd, "burst") == 0 && argc >= 6) {
        char identity[LEASE_MSG_IDENTITY_MAX + 1];
        char *end = NULL;
        long n = strtol(argv[4], &end, 10);
        int status = 0;
        if (*argv[4] == '\0' || *end != '\0' || n < 1 || n > 9999) {
            printf("error N must be 1..9999\n");
            return EXIT_ERROR;
        }
        if (build_take(&req, argv[2], argv[5], argv + 6, argc - 6) < 0)
            return EXIT_ERROR;
        /* Connected: the takes start when stdin ends, so that a test can start several
         * bursts at the same moment. */
        while (getchar() != EOF)
            ;
        for (long i = 1; i <= n; i++) {
            int len = snprintf(identity, sizeof(identity), "%s%04ld", argv[3], i);
            if (len < 0 || (size_t)len >= sizeof(identity)) {
                printf("error the prefix %s makes identities too long\n", argv[3]);
                return EXIT_ERROR;
            }
            if (take(conn, argv[1], &req, identity) == EXIT_ERROR)
                status = EXIT_ERROR;
        }
        return status;
    }
    usage();
    return EXIT_ERROR;
}

int main(int argc, char **argv)
{
    char err[512];
    int from = 0;
    int status = EXIT_ERROR;
    PGconn *conn = NULL;
    if (argc < 3) {
        usage();
        goto out;
    }
    conn = store_connect_open(argv[1], "store_lease_tool", err, sizeof(err));
    if (conn == NULL) {
        printf("error %s\n", err);
        goto out;
    }
    if (store_schema_migrate(conn, &from, err, sizeof(err)) < 0) {
        printf("error migrating: %s\n", err);
        goto out;
    }
    status = run(conn, argc - 2, argv + 2);
out:
    if (conn != NULL)
        PQfinish(conn);
    fflush(stdout);
    return status;
}
