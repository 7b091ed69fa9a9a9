/* web_login — the server side of one browser login connection: a browser without a
 * grant that the gate let in for the login page only (browser_login = yes), inside a
 * worker's event loop, in userspace TLS, never connected to the target.
 *
 * It speaks HTTP/1.1 (http_request, web_page) and relays the same PAM conversation as
 * auth_channel, over the same pam_link and helper messages, so the user map, PAM,
 * lockout, alerts and the login log are those of `ktlstun login`. A GET begins an
 * attempt and answers with the form for PAM's first prompt; each POST (checked
 * against the connection's CSRF token in constant time; a mismatch is 403 and counts
 * nothing) answers one prompt and gets the next prompt's form, the failure shown
 * above a new attempt's form, or, once granted, a 303 to the path first asked for
 * (a local path only) with "Connection: close", so that the browser's next connection
 * passes the gate. Limits: AUTH_MAX_ATTEMPTS attempts and AUTH_MAX_MESSAGES messages
 * per attempt, the tunnel's handshake_timeout for the first request,
 * AUTH_ANSWER_TIMEOUT_S per answer, pam_timeout (+ a margin) for the helper, requests
 * bounded by http_request. Answers are wiped from every buffer once forwarded. */
#ifndef KTLSTUN_WEB_LOGIN_H
#define KTLSTUN_WEB_LOGIN_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "core/identity.h"
#include "auth/pam_link.h"

struct web_login;

/* Starts the login page of SSL (handshake done, admitted by the gate for the page
 * only) on TUNNEL for the peer ID at SOURCE (an address without port). WAKE(WAKE_ARG)
 * is called when the helper's reply needs the page to run (web_login_step). Returns
 * the page, or NULL when out of memory or randomness (logged). SSL, ID and TUNNEL
 * stay the caller's and must outlive it. */
struct web_login *web_login_start(struct pam_link *link, const struct tunnel_config *tunnel,
                                  SSL *ssl, const struct identity *id, const char *source,
                                  void (*wake)(void *), void *wake_arg);

/* Moves the page along: writes the pending response, reads and handles requests.
 * Returns NULL while it goes on, or the reason it ended (valid until it is freed):
 * the caller then closes the connection. */
const char *web_login_step(struct web_login *page);

/* Returns the CLOCK_MONOTONIC millisecond deadline of what the page waits for. */
uint64_t web_login_deadline_ms(const struct web_login *page);

/* The deadline passed: queues the last response when one is owed (the next step
 * flushes it and ends the page), or ends it at the next step. */
void web_login_time_out(struct web_login *page);

/* Frees PAGE (NULL is fine), cancelling its PAM login if one is running. */
void web_login_free(struct web_login *page);

#endif
