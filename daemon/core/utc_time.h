/* utc_time — wall-clock time as locks and grants measure it: seconds since the epoch,
 * shown in UTC. */
#ifndef KTLSTUN_UTC_TIME_H
#define KTLSTUN_UTC_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Returns the current wall-clock time in seconds since the epoch. */
int64_t utc_time_now(void);

/* Formats EPOCH as "2026-01-31T12:00:00Z" into BUF (LEN bytes, at least 21); a time
 * that cannot be shown so is written as the bare number. Returns BUF. */
char *utc_time_format(int64_t epoch, char *buf, size_t len);

#endif
