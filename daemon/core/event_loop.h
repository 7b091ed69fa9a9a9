/* event_loop — epoll, edge-triggered: each watched fd points at an event_source. */
#ifndef KTLSTUN_EVENT_LOOP_H
#define KTLSTUN_EVENT_LOOP_H

#include <stdint.h>

struct event_source {
    void (*handle)(struct event_source *source, uint32_t events);
};

struct event_loop;

/* Returns a new loop, or NULL after logging. */
struct event_loop *event_loop_create(void);

/* Frees LOOP (its epoll fd; watched fds stay open). */
void event_loop_free(struct event_loop *loop);

/* Watches FD for EVENTS (EPOLLIN, EPOLLOUT, ...; edge-triggered unless LEVEL is set),
 * calling SOURCE->handle. Returns 0, or -1 after logging. */
int event_loop_watch(struct event_loop *loop, int fd, uint32_t events, int level,
                     struct event_source *source);

/* Stops watching FD (closing FD also does). */
void event_loop_unwatch(struct event_loop *loop, int fd);

/* Waits up to TIMEOUT_MS (-1: forever) and dispatches what is ready.
 * Returns the number of events handled, or -1 on a fatal epoll error (logged). */
int event_loop_run_once(struct event_loop *loop, int timeout_ms);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t event_loop_now_ms(void);

#endif
