/* admin_protocol — what `ktlstun unlock`, `ktlstun revoke` and the PAM helper say to
 * each other, and the lock state file unlock and the helper may edit.
 *
 * The helper listens on runtime_dir/ADMIN_PROTOCOL_SOCKET (SOCK_SEQPACKET, mode 0600;
 * it also checks that the peer is root or its own user). One request per connection,
 * in one datagram:
 *
 *   list           the locks in force
 *   unlock KEY     lift KEY's locks (an identity or an address, at most
 *                  LIMIT_IDENTITY bytes, no newline) and clear its failure counts
 *   revoke TUNNEL KEY
 *                  withdraw the second-factor grants of KEY (the name a grant
 *                  carries, or a SHA-256 fingerprint) on TUNNEL, or on every
 *                  tunnel when TUNNEL is "*", here and through the shared state
 *                  store on every gateway; the text says how many
 *
 * One reply datagram of at most ADMIN_PROTOCOL_REPLY_MAX bytes: a status word, a
 * newline, then text for the user:
 *
 *   ok             done; the text is the list or what was lifted
 *   not-locked     KEY had failures on record but no lock in force (they were cleared)
 *   unknown        KEY has no failures or locks on record; revoke: no such tunnel
 *   denied         the peer may not change locks
 *   error          an unknown request, or the helper is busy
 *
 * With no daemon listening, `ktlstun unlock` edits state_dir/ADMIN_PROTOCOL_STATE_FILE
 * itself (lock_state), the file the helper reads at start. */
#ifndef KTLSTUN_ADMIN_PROTOCOL_H
#define KTLSTUN_ADMIN_PROTOCOL_H

#define ADMIN_PROTOCOL_SOCKET "second-factor.sock"
#define ADMIN_PROTOCOL_STATE_FILE "lockout.state"
#define ADMIN_PROTOCOL_REPLY_MAX 16384

#define ADMIN_PROTOCOL_LIST "list"
#define ADMIN_PROTOCOL_UNLOCK "unlock "      /* followed by the key */
#define ADMIN_PROTOCOL_REVOKE "revoke "      /* followed by the tunnel, a space, the key */
#define ADMIN_PROTOCOL_ALL_TUNNELS "*"

#define ADMIN_PROTOCOL_OK "ok"
#define ADMIN_PROTOCOL_NOT_LOCKED "not-locked"
#define ADMIN_PROTOCOL_UNKNOWN "unknown"
#define ADMIN_PROTOCOL_DENIED "denied"
#define ADMIN_PROTOCOL_ERROR "error"

#endif
