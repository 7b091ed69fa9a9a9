#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "conn_limit.h"
#include "generation.h"
#include "log.h"
#include "worker.h"

#define MAX_WORKERS 1024
#define RESPAWN_BURST 10   /* deaths within RESPAWN_WINDOW_MS before we slow down */
#define RESPAWN_WINDOW_MS 10000

struct worker_process {
    pid_t pid;
    int slot;
    struct generation *gen;   /* the generation it serves (parent's copy) */
    int draining;
};

struct supervisor {
    const char *config_path;
    struct conn_limit *limits;
    struct generation *current;
    struct generation *retired[64];   /* replaced generations whose workers still drain */
    struct worker_process workers[MAX_WORKERS];
    int signal_fd;
    int stopping;
    uint64_t stop_deadline_ms;
    uint64_t deaths_window_start_ms;
    unsigned deaths_in_window;
};

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static int spawn_worker(struct supervisor *s, struct generation *gen)
{
    struct worker_process *slot = NULL;
    for (int i = 0; i < MAX_WORKERS && slot == NULL; i++)
        if (s->workers[i].pid == 0)
            slot = &s->workers[i];
    int limit_slot = slot != NULL ? conn_limit_take_worker_slot(s->limits) : -1;
    if (limit_slot < 0) {
        log_error("too many worker processes");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        conn_limit_release_worker_slot(s->limits, limit_slot);
        return -1;
    }
    if (pid == 0) {
        close(s->signal_fd);
        int status = worker_run(gen, s->limits, limit_slot);
        _exit(status);
    }
    *slot = (struct worker_process){ .pid = pid, .slot = limit_slot, .gen = gen };
    return 0;
}

static unsigned live_workers_of(const struct supervisor *s, const struct generation *gen)
{
    unsigned count = 0;
    for (int i = 0; i < MAX_WORKERS; i++)
        if (s->workers[i].pid != 0 && s->workers[i].gen == gen)
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
    for (size_t i = 0; i < sizeof(s->retired) / sizeof(s->retired[0]); i++) {
        if (s->retired[i] != NULL && live_workers_of(s, s->retired[i]) == 0) {
            generation_free(s->retired[i]);
            s->retired[i] = NULL;
        }
    }
}

static void retire(struct supervisor *s, struct generation *gen)
{
    for (size_t i = 0; i < sizeof(s->retired) / sizeof(s->retired[0]); i++) {
        if (s->retired[i] == NULL) {
            s->retired[i] = gen;
            return;
        }
    }
    /* More reloads pending than slots: its workers keep their own copies anyway. */
    generation_free(gen);
}

/* Keeps the configured number of workers serving the current generation; this is
 * both how workers start and how a dead one is replaced. */
static void top_up_workers(struct supervisor *s)
{
    if (s->stopping)
        return;
    unsigned have = live_workers_of(s, s->current);
    while (have < s->current->config->global.workers && spawn_worker(s, s->current) == 0)
        have++;
}

static void forget_unused_tunnel_slots(struct supervisor *s)
{
    const char *names[CONN_LIMIT_TUNNEL_SLOTS];
    unsigned count = 0;
    for (size_t i = 0; i < s->current->tunnel_count && count < CONN_LIMIT_TUNNEL_SLOTS; i++)
        names[count++] = s->current->tunnels[i].config->name;
    conn_limit_forget_unused(s->limits, names, count);
}

static void reload(struct supervisor *s)
{
    log_notice("reloading configuration from %s", s->config_path);
    char *errors = NULL;
    struct config *config = config_load(s->config_path, &errors);
    if (config == NULL) {
        for (char *line = strtok(errors, "\n"); line != NULL; line = strtok(NULL, "\n"))
            log_error("%s", line);
        log_error("reload refused, keeping the running configuration: %s has errors",
                  s->config_path);
        free(errors);
        return;
    }
    struct generation *next = generation_create(config, s->current, s->limits);
    if (next == NULL) {
        log_error("reload refused, keeping the running configuration: "
                  "certificates, keys or listeners did not load");
        return;
    }
    signal_workers(s, s->current, SIGQUIT);
    retire(s, s->current);
    s->current = next;
    log_set_level(next->config->global.log_level);
    forget_unused_tunnel_slots(s);
    top_up_workers(s);
    log_notice("reloaded configuration (generation %u, %zu tunnels, %u workers)", next->number,
               next->tunnel_count, live_workers_of(s, next));
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
        if (w == NULL)
            continue;
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        int replace = !w->draining && !s->stopping && w->gen == s->current;
        conn_limit_release_worker_slot(s->limits, w->slot);
        *w = (struct worker_process){ 0 };
        if (!clean || replace) {
            if (WIFSIGNALED(status))
                log_error("worker %d killed by signal %d", (int)pid, WTERMSIG(status));
            else if (!clean)
                log_error("worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
            else
                log_error("worker %d exited unexpectedly", (int)pid);
        }
        if (!replace)
            continue;
        uint64_t now = now_ms();
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

static void begin_stop(struct supervisor *s, int signo)
{
    if (s->stopping) {
        log_notice("second stop signal: closing every connection now");
        signal_workers(s, NULL, SIGKILL);
        return;
    }
    s->stopping = 1;
    uint64_t grace = s->current->config->global.shutdown_timeout;
    log_notice("shutting down (signal %d): finishing connections for up to %llus", signo,
               (unsigned long long)grace);
    /* Workers close what is left at the deadline themselves; this is the backstop. */
    s->stop_deadline_ms = now_ms() + grace * 1000u + 5000u;
    signal_workers(s, NULL, SIGTERM);
}

static int any_worker(const struct supervisor *s)
{
    for (int i = 0; i < MAX_WORKERS; i++)
        if (s->workers[i].pid != 0)
            return 1;
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
    s->signal_fd = -1;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGQUIT);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (s->signal_fd < 0) {
        log_error("signalfd: %s", strerror(errno));
        config_free(config);
        goto out;
    }
    s->limits = conn_limit_create();
    if (s->limits == NULL) {
        config_free(config);
        goto out;
    }
    s->current = generation_create(config, NULL, s->limits);
    if (s->current == NULL)
        goto out;
    top_up_workers(s);
    if (live_workers_of(s, s->current) == 0)
        goto out;
    log_notice("ready (%zu tunnels, %u workers)", s->current->tunnel_count,
               live_workers_of(s, s->current));

    while (!s->stopping || any_worker(s)) {
        int timeout_ms = -1;
        if (s->stopping) {
            uint64_t now = now_ms();
            if (now >= s->stop_deadline_ms) {
                signal_workers(s, NULL, SIGKILL);
                timeout_ms = 1000;
            } else {
                timeout_ms = (int)(s->stop_deadline_ms - now);
            }
        }
        struct pollfd pfd = { .fd = s->signal_fd, .events = POLLIN };
        int ready = poll(&pfd, 1, timeout_ms);
        if (ready < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            break;
        }
        struct signalfd_siginfo info;
        if (ready > 0 && read(s->signal_fd, &info, sizeof(info)) == sizeof(info)) {
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
            case SIGCHLD:
                break;
            }
        }
        reap(s);
        top_up_workers(s);
    }
    log_notice("stopped");
    status = EXIT_SUCCESS;
out:
    if (s->current != NULL)
        generation_free(s->current);
    for (size_t i = 0; i < sizeof(s->retired) / sizeof(s->retired[0]); i++)
        generation_free(s->retired[i]);
    if (s->signal_fd >= 0)
        close(s->signal_fd);
    conn_limit_free(s->limits);
    free(s);
    return status;
}
