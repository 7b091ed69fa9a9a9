/* store_process — the process that speaks to the shared state store for one gateway.
 *
 * The PAM helper forks it (as its own user) when [global] state_store is a connection
 * string, so that no database call ever runs in a worker's loop or the helper's:
 * libpq may block here, bounded by store_connect's timeouts, and nowhere else. It
 *   - connects, creates or migrates the schema, records this gateway in
 *     ktlstun_gateway and keeps its last_seen current;
 *   - LISTENs on the event channel and hands the helper every event another gateway
 *     published (grants, withdrawals, disconnects), in id order; on each (re)connect
 *     it first hands over every live grant, then the withdrawals and recent
 *     disconnects it missed while away;
 *   - publishes the events the helper sends (this gateway's grants and withdrawals),
 *     keeping them while the store is away and publishing them once it is back;
 *   - tells the helper whether the store is reachable (STATE), and retries every few
 *     seconds when it is not (several hosts with target_session_attrs=read-write
 *     follow a promoted standby). */
#ifndef KTLSTUN_STORE_PROCESS_H
#define KTLSTUN_STORE_PROCESS_H

/* Runs until the helper's end of FD closes. CONNINFO is the state_store setting,
 * GATEWAY this gateway's name, INSTANCE its id (state_dir/gateway.id): a row of
 * ktlstun_gateway with the same name, another id and a recent last_seen is another
 * gateway, and this one stays away from the store (logins refused) until that one is
 * gone, since each would take the other's events for its own. Returns the exit
 * status. */
int store_process_run(int fd, const char *conninfo, const char *gateway, const char *instance);

#endif
