/* second_factor — the gate of a tunnel with second_factor = pam.
 *
 * Data connections stay plain mTLS; the gate runs inside certificate verification
 * (after the chain and allow rules) and admits a connection only while its
 * certificate's SHA-256 holds a live grant for the tunnel (from the same address,
 * with bind_grant_to_address). Otherwise the handshake fails with a TLS
 * insufficient_security alert (tls_alert; the client tunnel words it as "run: ktlstun
 * login NAME", see tls/refusal_words.h) and a refusal telling the user to run
 * `ktlstun login`. A connection that negotiated ALPN "ktlstun-auth/1" is the login
 * channel itself and passes the gate; conn hands it to auth_channel. With
 * browser_login = yes, a client offering ALPN "http/1.1" gets it, and one of them
 * without a grant passes the gate marked for the login page (web_login) instead of
 * the refusal: it never reaches the target. */
#ifndef KTLSTUN_SECOND_FACTOR_H
#define KTLSTUN_SECOND_FACTOR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "proto/grants.h"
#include "core/identity.h"
#include "tls/tls_context.h"

struct pam_link;

/* Parent, before forking: where grants are read. Without it gated tunnels refuse
 * every data connection. */
void second_factor_use_grants(struct grants *grants);

/* Worker: writes the live grants (status_record "grant" lines) to OUT; nothing when
 * no tunnel is gated. */
void second_factor_describe_grants(FILE *out);

/* The gate tls_context calls for gated tunnels: second_factor_prepare_ctx and
 * second_factor_admit. The daemon registers it with tls_context_set_gate. */
extern const struct tls_gate second_factor_gate;

/* Sets up CTX of a gated server tunnel: ALPN selection of the login protocol and the
 * refusal alert. Does nothing for other tunnels. Call last when building CTX.
 * Returns 0, or -1 after logging. */
int second_factor_prepare_ctx(SSL_CTX *ctx, const struct tunnel_config *tunnel);

/* From the verify callback, once ID passed the chain and allow rules on TUNNEL:
 * returns 1 to admit SSL's connection, or 0 after writing the refusal into REFUSAL
 * (and sending insufficient_security when possible). */
int second_factor_admit(SSL *ssl, const struct tunnel_config *tunnel, const struct identity *id,
                        char *refusal, size_t refusal_len);

/* Worker, for a live data connection of ID from SOURCE (an address without port) on
 * TUNNEL, whose rules in force now are those given: returns 1 while a grant admits
 * it, or when TUNNEL asks for no second factor, and sets *UNTIL_MS to when that grant
 * ends (UINT64_MAX when ungated). Otherwise returns 0 with the reason in REASON
 * ("second-factor grant of alice (sha256 …) ended", or "… revoked by an administrator"). */
int second_factor_grant_holds(const struct tunnel_config *tunnel, const struct identity *id,
                              const char *source, uint64_t now_ms, uint64_t *until_ms,
                              char *reason, size_t reason_len);

/* Worker: grants_withdrawals() of the table in use, 0 without one. */
uint64_t second_factor_grant_withdrawals(void);

/* Returns 1 when SSL (handshake done) is a login: it negotiated the login protocol,
 * or the gate admitted it to the browser login page only. Such a connection never
 * reaches the target. */
int second_factor_is_login(const SSL *ssl);

/* Returns 1 when the gate admitted SSL to the browser login page only (a browser
 * without a grant on a tunnel with browser_login = yes). */
int second_factor_is_web_login(const SSL *ssl);

/* Worker, after a failed handshake on TUNNEL: counts it towards
 * max_handshake_failures unless the gate itself refused it (a missing grant is not
 * an attack) or the peer just went away (SSL_ERROR is not SSL_ERROR_SSL). */
void second_factor_handshake_failed(struct pam_link *link, const struct tunnel_config *tunnel,
                                    SSL *ssl, int ssl_error, const char *reason);

/* Writes the address of FD's peer, without port ("192.0.2.1", "2001:db8::1",
 * "local" for unix sockets), into BUF. Returns BUF. */
char *second_factor_peer_address(int fd, char *buf, size_t len);

#endif
