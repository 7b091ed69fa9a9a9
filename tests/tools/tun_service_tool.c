/* tun_service_tool — drives daemon/supervisor/tun_service.c with real worker processes
 * that speak daemon/worker/tun_link.c over real socketpairs, for
 * tests/integration/test_tun_service.sh. Run as root, in a network namespace the test
 * made.
 *
 * The process is the "supervisor": its configuration is built here (the parser of
 * the network keys is not what is tested):
 *   [office]  hub, address = 10.8.0.1/24, fd08::1/64, mtu = 1400,
 *             client_address = alice=10.8.0.7,
 *             client_networks = alice=10.30.0.0/16, bob=10.31.0.0/16, dave=10.40.0.0/16
 *   [tiny]    hub, address = 10.9.0.1/30 (one client address: 10.9.0.2)
 *   [to-hub]  client, device = ktlclient
 * Its runtime_dir is the first argument (default /run/ktlstun): its devices' owner
 * is "ktlstund RUNTIME_DIR". It removes leftovers with that owner and makes ktlclient
 * at start (prints "started"), and reads commands on stdin, one a line:
 *   worker NAME          forks a worker (prints "worker NAME PID")
 *   to NAME COMMAND...   hands COMMAND to worker NAME
 *   kill NAME            SIGKILL to worker NAME
 *   sync none            the configuration without [to-hub] (a reload dropping it)
 * A reaped worker prints "reaped NAME". At the end of stdin everything is freed
 * (client devices deleted) and it prints "stopped".
 *
 * A worker's commands (ID: the request's id, printed with its answer):
 *   hub TUNNEL CN        prints "NAME hub ID DEVICE ADDR,..." or "NAME hub ID refused REASON"
 *   attach TUNNEL        prints "NAME attach ID DEVICE" (holds the descriptor)
 *   configure TUNNEL MTU ADDR[,ADDR] [ROUTE,...]
 *                        prints "NAME configure ID DEVICE" or "... refused REASON"
 *   close ID             closes the descriptor of request ID (no release)
 *   release ID           closes it and tells the supervisor (tun_link_release)
 *   exit                 ends the worker
 * An end order prints "NAME end ID REASON" (the worker keeps its descriptor until told). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/tun_link.h"
#include "config/config.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "supervisor/tun_service.h"

#define MAX_WORKERS 16
#define MAX_HELD 64

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static struct ip_prefix prefix(const char *text)
{
    struct ip_prefix p;
    const char *reason = NULL;
    if (ip_prefix_parse(text, &p, &reason) != 0) {
        fprintf(stderr, "tun_service_tool: %s: %s\n", text, reason);
        exit(2);
    }
    return p;
}

/* ---- the worker -------------------------------------------------------------- */

struct held {
    uint32_t id;
    int fd;
};

static const char *worker_name;
static struct tun_link *link_;
static struct held held[MAX_HELD];
static int done_working;

static void hold(uint32_t id, int fd)
{
    for (size_t i = 0; i < MAX_HELD; i++)
        if (held[i].fd < 0) {
            held[i] = (struct held){ .id = id, .fd = fd };
            return;
        }
    close(fd);
}

static int unhold(uint32_t id)
{
    for (size_t i = 0; i < MAX_HELD; i++)
        if (held[i].fd >= 0 && held[i].id == id) {
            close(held[i].fd);
            held[i].fd = -1;
            return 0;
        }
    return -1;
}

struct request {
    uint32_t id;
    const char *kind;
};

static void answered(void *arg, const struct tun_link_answer *answer)
{
    struct request *r = arg;
    char addrs[256] = "";
    if (answer->refused) {
        say("%s %s %u refused %s", worker_name, r->kind, r->id, answer->reason);
        free(r);
        return;
    }
    for (size_t i = 0; i < answer->address_count; i++) {
        char text[64];
        ip_prefix_format(&answer->addresses[i], text, sizeof(text));
        snprintf(addrs + strlen(addrs), sizeof(addrs) - strlen(addrs), "%s%s", i ? "," : "", text);
    }
    if (answer->fd >= 0)
        hold(r->id, answer->fd);
    say("%s %s %u %s %s", worker_name, r->kind, r->id, answer->device, addrs);
    free(r);
}

static void ended(void *arg, uint32_t id, const char *reason)
{
    (void)arg;
    say("%s end %u %s", worker_name, id, reason);
}

static void parse_list(const char *text, struct ip_prefix *out, size_t *count, size_t max)
{
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", text);
    *count = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL && *count < max;
         t = strtok_r(NULL, ",", &save))
        out[(*count)++] = prefix(t);
}

static void worker_command(char *line)
{
    char *argv[8];
    int argc = 0;
    for (char *save = NULL, *t = strtok_r(line, " \n", &save); t != NULL && argc < 8;
         t = strtok_r(NULL, " \n", &save))
        argv[argc++] = t;
    if (argc == 0)
        return;
    struct request *r = calloc(1, sizeof(*r));
    if (r == NULL)
        exit(1);
    r->kind = argv[0];
    if (argc == 3 && strcmp(argv[0], "hub") == 0) {
        r->kind = "hub";
        r->id = tun_link_request_hub(link_, argv[1], argv[2], answered, r);
    } else if (argc == 2 && strcmp(argv[0], "attach") == 0) {
        r->kind = "attach";
        r->id = tun_link_request_attach(link_, argv[1], answered, r);
    } else if ((argc == 4 || argc == 5) && strcmp(argv[0], "configure") == 0) {
        struct tunnel_frame_config config = { .mtu = (unsigned)strtoul(argv[2], NULL, 10), .keepalive_s = 10 };
        r->kind = "configure";
        parse_list(argv[3], config.addresses, &config.address_count, TUNNEL_CONFIG_MAX_ADDRESSES);
        if (argc == 5)
            parse_list(argv[4], config.routes, &config.route_count, TUNNEL_CONFIG_MAX_ROUTES);
        r->id = tun_link_request_configure(link_, argv[1], &config, answered, r);
    } else {
        free(r);
        if (argc == 2 && strcmp(argv[0], "close") == 0)
            say("%s closed %d", worker_name, unhold((uint32_t)strtoul(argv[1], NULL, 10)));
        else if (argc == 2 && strcmp(argv[0], "release") == 0) {
            unhold((uint32_t)strtoul(argv[1], NULL, 10));
            tun_link_release(link_, (uint32_t)strtoul(argv[1], NULL, 10));
            say("%s released %s", worker_name, argv[1]);
        } else if (argc == 1 && strcmp(argv[0], "exit") == 0)
            done_working = 1;
        else
            say("%s bad command %s", worker_name, argv[0]);
        return;
    }
    if (r->id == 0) {
        say("%s %s not sent", worker_name, r->kind);
        free(r);
    }
}

struct commands {
    struct event_source source;
    int fd;
    char buf[4096];
    size_t fill;
};

static void read_commands(struct event_source *source, uint32_t events)
{
    struct commands *c = (struct commands *)source;
    (void)events;
    ssize_t n = read(c->fd, c->buf + c->fill, sizeof(c->buf) - 1 - c->fill);
    if (n <= 0) {
        done_working = 1;
        return;
    }
    c->fill += (size_t)n;
    char *nl;
    while ((nl = memchr(c->buf, '\n', c->fill)) != NULL) {
        *nl = '\0';
        char line[4096];
        snprintf(line, sizeof(line), "%s", c->buf);
        size_t used = (size_t)(nl - c->buf) + 1;
        memmove(c->buf, nl + 1, c->fill - used);
        c->fill -= used;
        worker_command(line);
    }
}

static int worker_main(const char *name, int link_fd, int command_fd)
{
    struct event_loop *loop = event_loop_create();
    struct commands commands = { .source.handle = read_commands, .fd = command_fd };
    worker_name = name;
    for (size_t i = 0; i < MAX_HELD; i++)
        held[i].fd = -1;
    if (loop == NULL || (link_ = tun_link_new(loop, link_fd, ended, NULL)) == NULL ||
        event_loop_watch(loop, command_fd, EPOLLIN, 1, &commands.source) != 0)
        return 1;
    say("worker %s %d", name, (int)getpid());
    while (!done_working)
        if (event_loop_run_once(loop, 1000) < 0)
            return 1;
    tun_link_free(link_);
    event_loop_free(loop);
    return 0;
}

/* ---- the supervisor ------------------------------------------------------------ */

struct worker {
    char name[32];
    pid_t pid;
    int commands;          /* its stdin's write end */
};

static struct worker workers[MAX_WORKERS];

static struct network_client_entry entry(const char *identity, const char *text)
{
    return (struct network_client_entry){ .identity = (char *)identity, .prefix = prefix(text),
                                          .line = 1 };
}

static const char *runtime_dir = "/run/ktlstun";

static void build_config(struct config *config, struct tunnel_config *tunnels, int with_client)
{
    static struct network_client_entry fixed[1], networks[3];
    memset(tunnels, 0, 3 * sizeof(*tunnels));
    fixed[0] = entry("alice", "10.8.0.7/32");
    networks[0] = entry("alice", "10.30.0.0/16");
    networks[1] = entry("bob", "10.31.0.0/16");
    networks[2] = entry("dave", "10.40.0.0/16");
    struct tunnel_config *office = &tunnels[0], *tiny = &tunnels[1], *client = &tunnels[2];
    office->name = "office";
    office->source = "test.ini";
    office->line = 1;
    office->mode = TUNNEL_MODE_SERVER;
    office->type = TUNNEL_TYPE_NETWORK;
    office->network.hub_address_count = 2;
    office->network.hub_addresses[0] = prefix("10.8.0.1/24");
    office->network.hub_addresses[1] = prefix("fd08::1/64");
    office->network.fixed_count = 1;
    office->network.fixed = fixed;
    office->network.client_network_count = 3;
    office->network.client_networks = networks;
    office->network.mtu = 1400;
    *tiny = *office;
    tiny->name = "tiny";
    tiny->network.hub_address_count = 1;
    tiny->network.hub_addresses[0] = prefix("10.9.0.1/30");
    tiny->network.fixed_count = tiny->network.client_network_count = 0;
    client->name = "to-hub";
    client->source = "test.ini";
    client->mode = TUNNEL_MODE_CLIENT;
    client->type = TUNNEL_TYPE_NETWORK;
    snprintf(client->network.device, sizeof(client->network.device), "ktlclient");
    *config = (struct config){ .path = "test.ini", .tunnel_count = with_client ? 3 : 2,
                               .tunnels = tunnels };
    config->global.runtime_dir = (char *)runtime_dir;
}

static struct worker *find_worker(const char *name)
{
    for (size_t i = 0; i < MAX_WORKERS; i++)
        if (workers[i].pid != 0 && strcmp(workers[i].name, name) == 0)
            return &workers[i];
    return NULL;
}

static void spawn(struct tun_service *ts, const struct config *config, const char *name)
{
    struct worker *w = NULL;
    int pair[2], pipe_fds[2];
    for (size_t i = 0; i < MAX_WORKERS && w == NULL; i++)
        if (workers[i].pid == 0)
            w = &workers[i];
    if (w == NULL || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0 ||
        pipe2(pipe_fds, O_CLOEXEC) != 0) {
        say("cannot spawn %s", name);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pair[0]);
        close(pipe_fds[1]);
        tun_service_close_in_child(ts);
        for (size_t i = 0; i < MAX_WORKERS; i++)
            if (workers[i].pid != 0)
                close(workers[i].commands);
        _exit(worker_main(name, pair[1], pipe_fds[0]));
    }
    close(pair[1]);
    close(pipe_fds[0]);
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->pid = pid;
    w->commands = pipe_fds[1];
    tun_service_add_worker(ts, pid, pair[0], config, 1);
}

static void reap(struct tun_service *ts)
{
    pid_t pid;
    int status;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (size_t i = 0; i < MAX_WORKERS; i++)
            if (workers[i].pid == pid) {
                tun_service_worker_gone(ts, pid);
                close(workers[i].commands);
                say("reaped %s", workers[i].name);
                workers[i].pid = 0;
            }
}

static void command(struct tun_service *ts, struct config *config, struct tunnel_config *tunnels,
                    char *line)
{
    char *rest = NULL, *verb = strtok_r(line, " \n", &rest);
    char *name = verb != NULL ? strtok_r(NULL, " \n", &rest) : NULL;
    struct worker *w = name != NULL ? find_worker(name) : NULL;
    if (verb == NULL || name == NULL)
        return;
    if (strcmp(verb, "worker") == 0) {
        spawn(ts, config, name);
    } else if (strcmp(verb, "to") == 0 && w != NULL) {
        char out[1024];
        int n = snprintf(out, sizeof(out), "%s\n", rest != NULL ? rest : "");
        if (write(w->commands, out, (size_t)n) != n)
            say("cannot reach %s", name);
    } else if (strcmp(verb, "kill") == 0 && w != NULL) {
        kill(w->pid, SIGKILL);
    } else if (strcmp(verb, "sync") == 0) {
        build_config(config, tunnels, 0);
        tun_service_sync(ts, config);
        say("synced");
    } else {
        say("bad command %s %s", verb, name);
    }
}

int main(int argc, char **argv)
{
    struct config config;
    struct tunnel_config tunnels[3];
    struct tun_service *ts = tun_service_new();
    char buf[4096];
    size_t fill = 0;
    int eof = 0;
    log_init("tun_service_tool", LOG_LEVEL_INFO);
    log_use_plain_stderr();
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        runtime_dir = argv[1];
    build_config(&config, tunnels, 1);
    if (ts == NULL)
        return 1;
    tun_service_sync(ts, &config);
    say("started");
    while (!eof) {
        struct pollfd fds[1 + MAX_WORKERS] = { { .fd = 0, .events = POLLIN } };
        size_t n = tun_service_poll_fds(ts, fds + 1, MAX_WORKERS);
        if (poll(fds, 1 + n, 50) < 0 && errno != EINTR)
            break;
        tun_service_handle(ts, fds + 1, n);
        reap(ts);
        if (!(fds[0].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t got = read(0, buf + fill, sizeof(buf) - 1 - fill);
        if (got <= 0) {
            eof = 1;
            continue;
        }
        fill += (size_t)got;
        char *nl;
        while ((nl = memchr(buf, '\n', fill)) != NULL) {
            char line[4096];
            size_t used = (size_t)(nl - buf) + 1;
            memcpy(line, buf, used - 1);
            line[used - 1] = '\0';
            memmove(buf, nl + 1, fill - used);
            fill -= used;
            command(ts, &config, tunnels, line);
        }
    }
    for (size_t i = 0; i < MAX_WORKERS; i++)
        if (workers[i].pid != 0) {
            kill(workers[i].pid, SIGKILL);
            waitpid(workers[i].pid, NULL, 0);
            tun_service_worker_gone(ts, workers[i].pid);
        }
    tun_service_free(ts);
    say("stopped");
    return 0;
}
