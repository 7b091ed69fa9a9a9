#include "helper/alert_commands.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "core/event_loop.h"
#include "core/log.h"

struct alert_child {
    pid_t pid;
    uint64_t deadline_ms;     /* 0 once killed: only the reaping is left */
};

struct alert_commands {
    size_t count;
    struct alert_child children[ALERT_COMMANDS_MAX];
};

struct alert_commands *alert_commands_create(void)
{
    return calloc(1, sizeof(struct alert_commands));
}

void alert_commands_free(struct alert_commands *commands)
{
    free(commands);
}

void alert_commands_start(struct alert_commands *commands, const char *tunnel,
                          const struct string_list *command, const struct alert_event *event)
{
    if (command->count == 0)
        return;
    if (commands->count == ALERT_COMMANDS_MAX) {
        log_error("[%s] alert_command not run: %d alert commands are still running", tunnel,
                  ALERT_COMMANDS_MAX);
        return;
    }
    pid_t pid = alert_run_command(command, event);
    if (pid > 0)
        commands->children[commands->count++] = (struct alert_child){
            .pid = pid, .deadline_ms = event_loop_now_ms() + (uint64_t)ALERT_COMMAND_TIMEOUT_S * 1000 };
}

void alert_commands_expire(struct alert_commands *commands, uint64_t now_ms)
{
    for (size_t i = 0; i < commands->count; i++) {
        struct alert_child *child = &commands->children[i];
        if (now_ms >= child->deadline_ms && child->deadline_ms != 0) {
            log_warning("alert_command (pid %d) still running after %ds; killed it",
                        (int)child->pid, ALERT_COMMAND_TIMEOUT_S);
            kill(-child->pid, SIGKILL);
            child->deadline_ms = 0;
        }
    }
}

int alert_commands_reaped(struct alert_commands *commands, pid_t pid, int status)
{
    for (size_t i = 0; i < commands->count; i++) {
        if (commands->children[i].pid != pid)
            continue;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            log_warning("alert_command (pid %d) failed: %s %d", (int)pid,
                        WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        commands->children[i] = commands->children[--commands->count];
        return 1;
    }
    return 0;
}

uint64_t alert_commands_next_deadline(const struct alert_commands *commands, uint64_t soonest)
{
    for (size_t i = 0; i < commands->count; i++)
        if (commands->children[i].deadline_ms != 0 && commands->children[i].deadline_ms < soonest)
            soonest = commands->children[i].deadline_ms;
    return soonest;
}
