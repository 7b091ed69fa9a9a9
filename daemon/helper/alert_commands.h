/* alert_commands — the alert_command processes the PAM helper has running: at most
 * ALERT_COMMANDS_MAX at once; one that runs past ALERT_COMMAND_TIMEOUT_S is killed with
 * its process group, and one that fails is logged when it is reaped. */
#ifndef KTLSTUN_ALERT_COMMANDS_H
#define KTLSTUN_ALERT_COMMANDS_H

#include <stdint.h>
#include <sys/types.h>

#include "core/string_list.h"
#include "helper/alert.h"

#define ALERT_COMMANDS_MAX 64

struct alert_commands;

/* Returns an empty set, or NULL when out of memory. */
struct alert_commands *alert_commands_create(void);

/* Frees COMMANDS (NULL is fine); commands still running are left to finish. */
void alert_commands_free(struct alert_commands *commands);

/* Starts COMMAND (TUNNEL's alert_command; empty: nothing to run) for EVENT, unless
 * ALERT_COMMANDS_MAX are still running (logged). */
void alert_commands_start(struct alert_commands *commands, const char *tunnel,
                          const struct string_list *command, const struct alert_event *event);

/* Kills the commands whose deadline passed at NOW_MS (event_loop_now_ms), logging it. */
void alert_commands_expire(struct alert_commands *commands, uint64_t now_ms);

/* PID exited with STATUS. Returns 1 when it was an alert command (its failure is
 * logged), else 0. */
int alert_commands_reaped(struct alert_commands *commands, pid_t pid, int status);

/* Returns the earlier of SOONEST and the next deadline of a running command. */
uint64_t alert_commands_next_deadline(const struct alert_commands *commands, uint64_t soonest);

#endif
