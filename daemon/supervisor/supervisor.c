#include "supervisor/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "worker/conn_limit.h"
#include "supervisor/generation.h"
#include "supervisor/daemonize.h"
#include "supervisor/expiry.h"
#include "worker/heartbeat.h"
#include "core/utc_time.h"
#include "supervisor/listener.h"
#include "supervisor/health.h"
#include "supervisor/metrics.h"
#include "supervisor/metrics_server.h"
#include "supervisor/runtime_lock.h"
#include "supervisor/helper_process.h"
#include "auth/second_factor.h"
#include "worker/control_socket.h"
#include "worker/status_server.h"
#include "supervisor/systemd_sockets.h"
#include "supervisor/tun_service.h"
#include "core/fd_passing.h"
#include "core/log.h"
#include "core/privdrop.h"
#include "core/event_loop.h"
#include "core/signals.h"
#include "worker/worker.h"

#define MAX_WORKERS 1024
#define RESPAWN_BURST 10          /* deaths within RESPAWN_WINDOW_MS before we slow down */
#define RESPAWN_WINDOW_MS 10000
#define STUCK_WORKER_MS 10000     /* a loop that has not turned for this long is stuck */
#define STATUS_INTERVAL_MS 5000
#define EXPIRY_CHECK_INTERVAL_MS (3600ULL * 1000)

struct worker_process {
    pid_t pid;
    int slot;
    int rules_link;           /* the parent's end of its rules link (access_recheck) */
    struct generation *gen;   /* the generation it serves (parent's copy) */
    int draining;
    int ready;
    int dialer;               /* it runs its generation's network client tunnels */
};

struct supervisor {
    const char *config_path;
    struct worker_shared shared;
    int ready_pipe_read;
    struct generation *current;
    /* Replaced generations whose workers still drain: as many as there are, since a
     * worker points at its generation until it exits. */
    struct generation **retired;
    size_t retired_count, retired_capacity;
    struct worker_process workers[MAX_WORKERS];
    int signal_fd;
    int announced;                    /* READY=1 sent for the current generation */
    int stopping;
    uint64_t stop_deadline_ms;
    uint64_t watchdog_interval_ms;    /* 0: systemd's watchdog is off */
    uint64_t last_watchdog_ms;
    uint64_t last_status_ms;
    uint64_t last_expiry_check_ms;
    char expiry_summary[512];         /* appended to STATUS= while something expires */
    int metrics_fd;
    struct address metrics_address;
    struct metrics_server *metrics_server;   /* its clients */
    uint64_t deaths_window_start_ms;
    unsigned deaths_in_window;
    struct grants *grants;            /* second-factor grants, shared by fork */
    struct helper_process *helper;
    struct tun_service *tun;          /* network tunnels' devices, the workers' links */
};

static int spawn_worker(struct supervisor *s, struct generation *gen)
{
    struct worker_process *slot = NULL;
    for (int i = 0; i < MAX_WORKERS && slot == NULL; i++)
        if (s->workers[i].pid == 0)
            slot = &s->workers[i];
    int limit_slot = slot != NULL ? conn_limit_take_worker_slot(s->shared.limits) : -1;
    if (limit_slot < 0) {
        log_error("too many worker processes");
        return -1;
    }
    heartbeat_reset(s->shared.heartbeat, limit_slot);
    int rules_link[2] = { -1, -1 }, tun_link[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rules_link) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tun_link) < 0) {
        log_error("socketpair: %s", strerror(errno));
        if (rules_link[0] >= 0 && close(rules_link[0]) == 0)
            close(rules_link[1]);
        conn_limit_release_worker_slot(s->shared.limits, limit_slot);
        return -1;
    }
    s->shared.helper_link = helper_process_new_link(s->helper);
    s->shared.rules_link = rules_link[1];
    s->shared.tun_link = tun_link[1];
    /* One worker of the current generation dials the network client tunnels: this
     * one, when no serving worker of it does (the one that did died or drains). */
    s->shared.dialer = gen == s->current;
    for (int i = 0; i < MAX_WORKERS; i++)
        if (s->workers[i].pid != 0 && s->workers[i].gen == gen && !s->workers[i].draining &&
            s->workers[i].dialer)
            s->shared.dialer = 0;
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        conn_limit_release_worker_slot(s->shared.limits, limit_slot);
        close(rules_link[0]);
        close(tun_link[0]);
    }
    if (pid == 0) {
        daemonize_forget();
        runtime_lock_close_in_child();
        close(s->signal_fd);
        close(s->ready_pipe_read);
        close(rules_link[0]);
        close(tun_link[0]);
        tun_service_close_in_child(s->tun);
        /* Another worker's link would let this one speak for the parent. */
        for (int i = 0; i < MAX_WORKERS; i++)
            if (s->workers[i].pid != 0)
                close(s->workers[i].rules_link);
        helper_process_close_in_child(s->helper);
        /* Only the helper writes grants; a worker's view must not be able to. */
        if (grants_make_read_only(s->grants) < 0)
            _exit(EXIT_FAILURE);
        _exit(worker_run(gen, &s->shared, limit_slot));
    }
    if (s->shared.helper_link >= 0)
        close(s->shared.helper_link);
    s->shared.helper_link = -1;
    close(rules_link[1]);
    close(tun_link[1]);
    s->shared.rules_link = s->shared.tun_link = -1;
    if (pid < 0)
        return -1;
    *slot = (struct worker_process){ .pid = pid, .slot = limit_slot, .rules_link = rules_link[0],
                                     .gen = gen, .dialer = s->shared.dialer };
    tun_service_add_worker(s->tun, pid, tun_link[0], gen->config, gen->number);
    return 0;
}

/* Hands the access rules of the configuration just made current to every worker of an
 * older one, whose connections must keep to them (access_recheck). A worker that gets
 * a datagram without rules ends its connections: what it cannot check does not stay. */
static void share_access_rules(struct supervisor *s)
{
    int rules = generation_share_access_rules(s->current);
    for (int i = 0; i < MAX_WORKERS; i++) {
        struct worker_process *w = &s->workers[i];
        if (w->pid == 0 || w->gen == s->current)
            continue;
        /* EPIPE: it has just exited (drained), and is not reaped yet. */
        if (fd_passing_send(w->rules_link, "R", 1, rules, MSG_DONTWAIT) < 0 && errno != EPIPE)
            log_error("worker %d: cannot hand it the reloaded access rules (%s): its connections "
                      "stay under the configuration it started with", (int)w->pid, strerror(errno));
    }
    if (rules >= 0)
        close(rules);
}

static unsigned count_workers(const struct supervisor *s, const struct generation *gen, int ready_only)
{
    unsigned count = 0;
    for (int i = 0; i < MAX_WORKERS; i++)
        if (s->workers[i].pid != 0 && (gen == NULL || s->workers[i].gen == gen) &&
            (!ready_only || s->workers[i].ready))
            count++;
    return count;
}

static void signal_workers(struct supervisor *s, const struct generation *gen, int signo)
{
    for (int i = 0; i < MAX_WORKERS; i++) {
        struct worker_process *w = &s->workers[i];
        if (w->pid != 0 && (gen == NULL || w->gen == gen)) {
            kill(w->pid, signo);
            w->draining = 1;
        }
    }
}

/* A retired generation is freed in the parent once its last worker is gone. */
static void free_drained_generations(struct supervisor *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->retired_count; i++) {
        if (count_workers(s, s->retired[i], 0) == 0)
            generation_free(s->retired[i]);
        else
            s->retired[kept++] = s->retired[i];
    }
    s->retired_count = kept;
}

static void retire(struct supervisor *s, struct generation *gen)
{
    if (s->retired_count == s->retired_capacity) {
        size_t capacity = s->retired_capacity == 0 ? 8 : 2 * s->retired_capacity;
        struct generation **grown = reallocarray(s->retired, capacity, sizeof(struct generation *));
        if (grown == NULL) {
            /* Its workers still point at it: kept until exit is the only safe choice. */
            log_error("out of memory: configuration generation %u stays in memory until "
                      "ktlstund stops", gen->number);
            return;
        }
        s->retired = grown;
        s->retired_capacity = capacity;
    }
    s->retired[s->retired_count++] = gen;
}

/* Workers (maybe unprivileged) put their status sockets in runtime_dir: make it exist
 * and belong to them, unless systemd's RuntimeDirectory= already did. */
static void prepare_runtime_dir(const struct generation *gen)
{
    const char *dir = gen->config->global.runtime_dir;
    /* The runtime_dir lock may have made it a moment ago, still owned by root. */
    if (mkdir(dir, 0750) < 0 && !(errno == EEXIST && runtime_lock_made_dir(dir))) {
        if (errno != EEXIST)
            log_warning("runtime_dir %s: %s; `ktlstun status` will not work", dir, strerror(errno));
        return;
    }
    if (gen->run_as.enabled && chown(dir, gen->run_as.uid, gen->run_as.gid) < 0)
        log_warning("runtime_dir %s: chown: %s", dir, strerror(errno));
}

/* Keeps the configured number of workers serving the current generation; this is
 * both how workers start and how a dead one is replaced. */
static void top_up_workers(struct supervisor *s)
{
    if (s->stopping)
        return;
    /* Workers told to drain (after a helper restart they serve the current generation
     * still) finish what they hold; they do not count towards the ones serving. */
    unsigned have = 0;
    for (int i = 0; i < MAX_WORKERS; i++)
        if (s->workers[i].pid != 0 && s->workers[i].gen == s->current && !s->workers[i].draining)
            have++;
    while (have < s->current->config->global.workers && spawn_worker(s, s->current) == 0)
        have++;
}

static void forget_unused_tunnel_slots(struct supervisor *s)
{
    const char *names[CONN_LIMIT_TUNNEL_SLOTS];
    unsigned count = 0;
    for (size_t i = 0; i < s->current->tunnel_count && count < CONN_LIMIT_TUNNEL_SLOTS; i++)
        names[count++] = s->current->tunnels[i].config->name;
    conn_limit_forget_unused(s->shared.limits, names, count);
}

static void notify_status(struct supervisor *s)
{
    uint64_t connections = 0;
    for (size_t i = 0; i < s->current->tunnel_count; i++)
        connections += conn_limit_count(s->shared.limits, s->current->tunnels[i].limit_slot);
    sd_notifyf(0, "STATUS=%zu tunnels, %u workers, %llu connections%s%s", s->current->tunnel_count,
               count_workers(s, s->current, 1), (unsigned long long)connections,
               s->expiry_summary[0] ? "; " : "", s->expiry_summary);
    s->last_status_ms = event_loop_now_ms();
}

/* READY=1 only once every worker of the current generation has dropped privileges
 * and watches its listeners: before that, a client could be accepted by nobody. */
static void check_expiry(struct supervisor *s)
{
    expiry_check(s->current, s->expiry_summary, sizeof(s->expiry_summary));
    s->last_expiry_check_ms = event_loop_now_ms();
}

/* Opens, moves or closes the metrics listener to match the current configuration. */
static void sync_metrics_listener(struct supervisor *s)
{
    const struct global_config *global = &s->current->config->global;
    char shown[300], current[300];
    if (s->metrics_fd >= 0) {
        if (global->metrics_enabled &&
            strcmp(address_format(&global->metrics_listen, shown, sizeof(shown)),
                   address_format(&s->metrics_address, current, sizeof(current))) == 0)
            return;
        listener_close(s->metrics_fd, &s->metrics_address);
        s->metrics_fd = -1;
    }
    if (!global->metrics_enabled)
        return;
    char err[256];
    s->metrics_fd = listener_open(&global->metrics_listen, err, sizeof(err));
    if (s->metrics_fd < 0) {
        log_error("%s: [global] metrics_listen %s: %s", s->config_path,
                  address_format(&global->metrics_listen, shown, sizeof(shown)), err);
        return;
    }
    s->metrics_address = global->metrics_listen;
    log_info("metrics on http://%s/metrics", address_format(&global->metrics_listen, shown,
                                                            sizeof(shown)));
}

/* Ready workers of the current generation whose loop turned within STUCK_WORKER_MS. */
static unsigned count_live_workers(const struct supervisor *s, uint64_t now)
{
    unsigned live = 0;
    for (int i = 0; i < MAX_WORKERS; i++) {
        const struct worker_process *w = &s->workers[i];
        if (w->pid != 0 && w->gen == s->current && w->ready && !w->draining &&
            heartbeat_age_ms(s->shared.heartbeat, w->slot, now) < STUCK_WORKER_MS)
            live++;
    }
    return live;
}

static char *render_page(void *arg, enum metrics_server_page page, int *ok)
{
    struct supervisor *s = arg;
    if (page == METRICS_SERVER_METRICS)
        return metrics_render(s->current, s->shared.stats, s->shared.limits,
                              count_workers(s, s->current, 1));
    struct health_state state = { .gen = s->current, .stopping = s->stopping,
                                  .live_workers = count_live_workers(s, event_loop_now_ms()),
                                  .helper_running = helper_process_running(s->helper) };
    if (s->current->config->global.state_store != NULL)
        state.store_state = grants_store_state(s->grants, state.store_text,
                                               sizeof(state.store_text));
    if (page == METRICS_SERVER_HEALTHZ)
        return health_render_live(&state, ok);
    return health_render_ready(&state, utc_time_now(), ok);
}

static void announce_when_ready(struct supervisor *s)
{
    if (s->announced || s->stopping)
        return;
    unsigned ready = count_workers(s, s->current, 1);
    if (ready < s->current->config->global.workers)
        return;
    s->announced = 1;
    sync_metrics_listener(s);
    check_expiry(s);
    if (s->current->number == 1)
        log_notice("ready (%zu tunnels, %u workers)", s->current->tunnel_count, ready);
    else
        log_notice("reloaded configuration (generation %u, %zu tunnels, %u workers)",
                   s->current->number, s->current->tunnel_count, ready);
    sd_notify(0, "READY=1");
    daemonize_ready();
    notify_status(s);
}

static void read_ready_reports(struct supervisor *s)
{
    int32_t slot;
    while (read(s->ready_pipe_read, &slot, sizeof(slot)) == sizeof(slot)) {
        for (int i = 0; i < MAX_WORKERS; i++)
            if (s->workers[i].pid != 0 && s->workers[i].slot == slot)
                s->workers[i].ready = 1;
    }
    announce_when_ready(s);
}

static void reload(struct supervisor *s)
{
    struct timespec monotonic;
    clock_gettime(CLOCK_MONOTONIC, &monotonic);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)monotonic.tv_sec * 1000000ull +
                   (unsigned long long)monotonic.tv_nsec / 1000ull);
    log_notice("reloading configuration from %s", s->config_path);
    char *errors = NULL;
    struct config *config = config_load(s->config_path, &errors);
    struct generation *next = NULL;
    if (config == NULL) {
        for (char *line = strtok(errors, "\n"); line != NULL; line = strtok(NULL, "\n"))
            log_error("%s", line);
        log_error("reload refused, keeping the running configuration: %s has errors",
                  s->config_path);
        free(errors);
    } else if (generation_check(s->current, config) < 0) {
        log_error("reload refused, keeping the running configuration: %s fails its checks",
                  s->config_path);
        config_free(config);
    } else if ((next = generation_create(config, s->current, s->shared.limits,
                                         s->shared.stats)) == NULL) {
        log_error("reload refused, keeping the running configuration: "
                  "certificates, keys or listeners did not load");
    }
    if (next == NULL) {
        /* The running generation is unchanged and still ready. */
        sd_notify(0, "READY=1");
        return;
    }
    signal_workers(s, s->current, SIGQUIT);
    retire(s, s->current);
    s->current = next;
    tun_service_sync(s->tun, next->config);
    share_access_rules(s);
    helper_process_reload(s->helper);
    s->announced = 0;
    log_set_level(next->config->global.log_level);
    forget_unused_tunnel_slots(s);
    prepare_runtime_dir(s->current);
    top_up_workers(s);
}

/* A restarted PAM helper cannot reach the links of the workers that knew the old
 * one: fresh workers (with new links) take over while those drain. */
static void replace_workers_for_new_helper(struct supervisor *s)
{
    if (s->stopping || !helper_process_running(s->helper))
        return;
    signal_workers(s, s->current, SIGQUIT);
    for (unsigned i = 0; i < s->current->config->global.workers; i++)
        spawn_worker(s, s->current);
}

static void reap(struct supervisor *s)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct worker_process *w = NULL;
        for (int i = 0; i < MAX_WORKERS && w == NULL; i++)
            if (s->workers[i].pid == pid)
                w = &s->workers[i];
        if (w == NULL) {
            if (helper_process_reaped(s->helper, pid, status, s->stopping ? NULL : s->current->config))
                replace_workers_for_new_helper(s);
            continue;
        }
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        int replace = !w->draining && !s->stopping && w->gen == s->current;
        /* A crashed worker could not remove its status socket. */
        char status_path[300];
        status_server_path(w->gen->config->global.runtime_dir, (int)pid, status_path,
                           sizeof(status_path));
        unlink(status_path);
        control_socket_path(w->gen->config->global.runtime_dir, (int)pid, status_path,
                            sizeof(status_path));
        unlink(status_path);
        close(w->rules_link);
        tun_service_worker_gone(s->tun, pid);
        stats_network_peers_forget(s->shared.stats, (int)pid);
        conn_limit_release_worker_slot(s->shared.limits, w->slot);
        *w = (struct worker_process){ 0 };
        if (WIFSIGNALED(status))
            log_error("worker %d killed by signal %d", (int)pid, WTERMSIG(status));
        else if (!clean)
            log_error("worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
        else if (replace)
            log_error("worker %d exited unexpectedly", (int)pid);
        if (!replace)
            continue;
        uint64_t now = event_loop_now_ms();
        if (now - s->deaths_window_start_ms > RESPAWN_WINDOW_MS) {
            s->deaths_window_start_ms = now;
            s->deaths_in_window = 0;
        }
        /* A worker that dies at once every time must not become a fork loop. */
        if (++s->deaths_in_window > RESPAWN_BURST) {
            log_error("workers keep dying; waiting a second before the next one");
            sleep(1);
        }
        log_notice("replacing worker %d", (int)pid);
    }
    free_drained_generations(s);
}

/* Kills workers whose loop stopped turning (they are replaced), and returns 1 while
 * every worker is healthy enough for the systemd watchdog to be fed. */
static int check_worker_health(struct supervisor *s, uint64_t now)
{
    int healthy = 1;
    for (int i = 0; i < MAX_WORKERS; i++) {
        struct worker_process *w = &s->workers[i];
        if (w->pid == 0)
            continue;
        uint64_t age = heartbeat_age_ms(s->shared.heartbeat, w->slot, now);
        if (age >= STUCK_WORKER_MS) {
            log_error("worker %d: event loop stuck for %llus; killing it", (int)w->pid,
                      (unsigned long long)(age / 1000));
            kill(w->pid, SIGKILL);
            /* If even SIGKILL does not free it, let systemd restart the daemon. */
            if (age >= STUCK_WORKER_MS + s->watchdog_interval_ms)
                healthy = 0;
        }
    }
    return healthy;
}

static void begin_stop(struct supervisor *s, int signo)
{
    if (s->stopping) {
        log_notice("second stop signal: closing every connection now");
        signal_workers(s, NULL, SIGKILL);
        return;
    }
    s->stopping = 1;
    sd_notify(0, "STOPPING=1");
    uint64_t grace = s->current->config->global.shutdown_timeout;
    log_notice("shutting down (signal %d): finishing connections for up to %llus", signo,
               (unsigned long long)grace);
    /* Workers close what is left at the deadline themselves; this is the backstop. */
    s->stop_deadline_ms = event_loop_now_ms() + grace * 1000u + 5000u;
    signal_workers(s, NULL, SIGTERM);
}

static int poll_timeout_ms(struct supervisor *s, uint64_t now)
{
    uint64_t wake = now + 1000;   /* health checks once a second */
    if (s->stopping) {
        if (now >= s->stop_deadline_ms) {
            signal_workers(s, NULL, SIGKILL);
            return 1000;
        }
        if (s->stop_deadline_ms < wake)
            wake = s->stop_deadline_ms;
    }
    if (s->watchdog_interval_ms != 0 && s->last_watchdog_ms + s->watchdog_interval_ms / 2 < wake)
        wake = s->last_watchdog_ms + s->watchdog_interval_ms / 2;
    int client_wait = metrics_server_timeout_ms(s->metrics_server, now);
    if (client_wait >= 0 && now + (uint64_t)client_wait < wake)
        wake = now + (uint64_t)client_wait;
    return wake > now ? (int)(wake - now) : 0;
}

static void handle_signal(struct supervisor *s)
{
    struct signalfd_siginfo info;
    while (read(s->signal_fd, &info, sizeof(info)) == sizeof(info)) {
        switch (info.ssi_signo) {
        case SIGHUP:
            if (!s->stopping)
                reload(s);
            break;
        case SIGTERM:
        case SIGINT:
        case SIGQUIT:
            begin_stop(s, (int)info.ssi_signo);
            break;
        default:
            break;   /* SIGCHLD: reaped below */
        }
    }
}

static void run_loop(struct supervisor *s)
{
    while (!s->stopping || count_workers(s, NULL, 0) > 0) {
        struct pollfd fds[2 + METRICS_SERVER_CLIENTS + 1 + MAX_WORKERS + 1] = {
            { .fd = s->signal_fd, .events = POLLIN }, { .fd = s->ready_pipe_read, .events = POLLIN } };
        size_t metrics_fds = metrics_server_poll_fds(s->metrics_server, s->metrics_fd, fds + 2);
        struct pollfd *links = fds + 2 + metrics_fds;
        size_t link_fds = tun_service_poll_fds(s->tun, links, MAX_WORKERS + 1);
        int ready = poll(fds, 2 + metrics_fds + link_fds, poll_timeout_ms(s, event_loop_now_ms()));
        if (ready < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return;
        }
        if (ready > 0)
            tun_service_handle(s->tun, links, link_fds);
        if (ready > 0 && (fds[0].revents & POLLIN))
            handle_signal(s);
        reap(s);
        top_up_workers(s);
        if (ready > 0 && (fds[1].revents & POLLIN))
            read_ready_reports(s);
        uint64_t now = event_loop_now_ms();
        metrics_server_handle(s->metrics_server, fds + 2, ready > 0 ? metrics_fds : 0, now,
                              render_page, s);
        int healthy = check_worker_health(s, now);
        if (s->watchdog_interval_ms != 0 && healthy &&
            now - s->last_watchdog_ms >= s->watchdog_interval_ms / 2) {
            sd_notify(0, "WATCHDOG=1");
            s->last_watchdog_ms = now;
        }
        if (s->announced && !s->stopping && now - s->last_expiry_check_ms >= EXPIRY_CHECK_INTERVAL_MS)
            check_expiry(s);
        if (s->announced && !s->stopping && now - s->last_status_ms >= STATUS_INTERVAL_MS)
            notify_status(s);
    }
}

static int block_signals(struct supervisor *s)
{
    s->signal_fd = signals_open_fd();
    if (s->signal_fd < 0) {
        log_error("signalfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int supervisor_run(const char *config_path, struct config *config)
{
    int status = EXIT_FAILURE;
    struct supervisor *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        log_error("out of memory");
        config_free(config);
        return status;
    }
    s->config_path = config_path;
    s->signal_fd = s->ready_pipe_read = s->shared.ready_fd = s->metrics_fd = -1;
    s->shared.helper_link = s->shared.rules_link = s->shared.tun_link = -1;
    int ready_pipe[2];
    if (block_signals(s) < 0 || pipe2(ready_pipe, O_NONBLOCK) < 0) {
        log_error("cannot set up signals: %s", strerror(errno));
        config_free(config);
        goto out;
    }
    s->ready_pipe_read = ready_pipe[0];
    s->metrics_server = metrics_server_new();
    s->shared.ready_fd = ready_pipe[1];
    s->shared.limits = conn_limit_create();
    s->shared.heartbeat = heartbeat_create();
    s->shared.stats = stats_create();
    s->grants = grants_create();
    s->tun = tun_service_new();
    second_factor_use_grants(s->grants);
    if (s->shared.limits == NULL || s->shared.heartbeat == NULL || s->shared.stats == NULL ||
        s->grants == NULL || s->metrics_server == NULL || s->tun == NULL) {
        config_free(config);
        goto out;
    }
    uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0)
        s->watchdog_interval_ms = watchdog_usec / 1000u;
    if (systemd_sockets_collect() < 0) {
        config_free(config);
        goto out;
    }
    s->current = generation_create(config, NULL, s->shared.limits, s->shared.stats);
    if (s->current == NULL)
        goto out;
    systemd_sockets_warn_unused();
    prepare_runtime_dir(s->current);
    tun_service_sync(s->tun, s->current->config);
    /* Before the first worker, so every worker gets a link; a daemon without it
     * still serves, but gated tunnels refuse every login. */
    s->helper = helper_process_start(config_path, s->current->config, s->grants);
    tun_service_use_helper(s->tun, s->helper);
    /* Switching users was needed for the helper only: what started with capabilities
     * (the unit's ambient CAP_SETUID, CAP_SETGID) keeps none but the one a reload may
     * need to bind a new port below 1024, when a drop-in gave it, and CAP_NET_ADMIN
     * while network tunnels need devices. Root keeps root. */
    if (privdrop_clear_capabilities(1ULL << CAP_NET_BIND_SERVICE |
                                    (uint64_t)tun_service_needed(s->current->config) << CAP_NET_ADMIN) < 0)
        goto out;
    top_up_workers(s);
    if (count_workers(s, s->current, 0) == 0)
        goto out;
    run_loop(s);
    log_notice("stopped");
    status = EXIT_SUCCESS;
out:
    helper_process_stop(s->helper);
    tun_service_free(s->tun);
    generation_free(s->current);
    for (size_t i = 0; i < s->retired_count; i++)
        generation_free(s->retired[i]);
    free(s->retired);
    if (s->signal_fd >= 0)
        close(s->signal_fd);
    if (s->ready_pipe_read >= 0)
        close(s->ready_pipe_read);
    metrics_server_free(s->metrics_server);
    if (s->metrics_fd >= 0)
        listener_close(s->metrics_fd, &s->metrics_address);
    if (s->shared.ready_fd >= 0)
        close(s->shared.ready_fd);
    conn_limit_free(s->shared.limits);
    heartbeat_free(s->shared.heartbeat);
    stats_free(s->shared.stats);
    grants_free(s->grants);
    free(s);
    return status;
}
