#include "core/event_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define EVENT_BATCH 64

struct event_loop {
    int epoll_fd;
};

struct event_loop *event_loop_create(void)
{
    struct event_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        log_error("event loop: out of memory");
        return NULL;
    }
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd < 0) {
        log_error("event loop: epoll_create1: %s", strerror(errno));
        free(loop);
        return NULL;
    }
    return loop;
}

void event_loop_free(struct event_loop *loop)
{
    if (loop == NULL)
        return;
    close(loop->epoll_fd);
    free(loop);
}

int event_loop_watch(struct event_loop *loop, int fd, uint32_t events, int level,
                     struct event_source *source)
{
    struct epoll_event event = { .events = events | (level ? 0 : EPOLLET), .data.ptr = source };
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) {
        log_error("event loop: watching fd %d: %s", fd, strerror(errno));
        return -1;
    }
    return 0;
}

void event_loop_unwatch(struct event_loop *loop, int fd)
{
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

int event_loop_run_once(struct event_loop *loop, int timeout_ms)
{
    struct epoll_event events[EVENT_BATCH];
    int ready = epoll_wait(loop->epoll_fd, events, EVENT_BATCH, timeout_ms);
    if (ready < 0) {
        if (errno == EINTR)
            return 0;
        log_error("event loop: epoll_wait: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < ready; i++) {
        struct event_source *source = events[i].data.ptr;
        source->handle(source, events[i].events);
    }
    return ready;
}

uint64_t event_loop_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}
