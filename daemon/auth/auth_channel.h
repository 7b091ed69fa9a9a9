/* auth_channel — the server side of one login connection (ALPN "ktlstun-auth/1"),
 * inside a worker's event loop.
 *
 * It maps the client certificate to a local user (user_map), then relays the PAM
 * conversation: the client's START and ANSWER frames go to the PAM helper over the
 * worker's pam_link, the helper's prompts and result come back as frames. Limits:
 * AUTH_MAX_ATTEMPTS attempts per connection, AUTH_MAX_MESSAGES messages per attempt,
 * the tunnel's handshake_timeout to begin an attempt, AUTH_ANSWER_TIMEOUT_S per answer,
 * pam_timeout (+ a margin) for the helper; frames above AUTH_FRAME_MAX_PAYLOAD,
 * unknown types and frames out of turn end the connection with a PROTOCOL_ERROR
 * result. Answers are wiped from every buffer once forwarded. */
#ifndef KTLSTUN_AUTH_CHANNEL_H
#define KTLSTUN_AUTH_CHANNEL_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "core/identity.h"
#include "auth/pam_link.h"

struct auth_channel;

/* Starts the login channel of SSL (handshake done, login protocol negotiated) on
 * TUNNEL for the peer ID at SOURCE (an address without port). WAKE(WAKE_ARG) is
 * called when the helper's reply needs the channel to run (auth_channel_step).
 * Returns the channel, or NULL when out of memory (logged). SSL, ID and TUNNEL stay
 * the caller's and must outlive the channel. */
struct auth_channel *auth_channel_start(struct pam_link *link, const struct tunnel_config *tunnel,
                                        SSL *ssl, const struct identity *id, const char *source,
                                        void (*wake)(void *), void *wake_arg);

/* Moves the channel along: writes pending frames, reads and handles the client's.
 * Returns NULL while it goes on, or the reason it ended (valid until the channel is
 * freed): the caller then closes the connection. */
const char *auth_channel_step(struct auth_channel *channel);

/* Returns the CLOCK_MONOTONIC millisecond deadline of what the channel waits for. */
uint64_t auth_channel_deadline_ms(const struct auth_channel *channel);

/* The deadline passed: queues a result telling the client so (the next step flushes
 * it and ends the channel); a channel already ending gives up at its next step. */
void auth_channel_time_out(struct auth_channel *channel);

/* Frees CHANNEL (NULL is fine), cancelling its PAM login if one is running. */
void auth_channel_free(struct auth_channel *channel);

#endif
