/* control_protocol — what `ktlstun disconnect` and each worker say to each other.
 *
 * Every worker listens on RUNTIME_DIR/control-worker-PID.sock (SOCK_SEQPACKET, mode
 * 0600, owned by the worker's user; it also checks that the peer is root or that
 * user). The CLI asks every CONTROL_PROTOCOL_GLOB socket it finds, so workers of older
 * generations that still drain are reached too. One request per connection, in one
 * datagram:
 *
 *   disconnect KEY   end the live tunnels whose peer is KEY: a certificate's CN,
 *                    subject or SHA-256 fingerprint, or a peer address (at most
 *                    LIMIT_IDENTITY bytes, no newline)
 *
 * One reply datagram of at most CONTROL_PROTOCOL_REPLY_MAX bytes, a status word, a
 * newline, then:
 *
 *   ok               the number of tunnels this worker ended, in decimal
 *   denied           the peer may not ask (text for the user)
 *   error            an unknown request, or the worker is busy (text for the user) */
#ifndef KTLSTUN_CONTROL_PROTOCOL_H
#define KTLSTUN_CONTROL_PROTOCOL_H

#define CONTROL_PROTOCOL_SOCKET_FORMAT "%s/control-worker-%d.sock"   /* runtime_dir, pid */
#define CONTROL_PROTOCOL_GLOB "control-worker-*.sock"
#define CONTROL_PROTOCOL_REPLY_MAX 512

#define CONTROL_PROTOCOL_DISCONNECT "disconnect "   /* followed by the key */

#define CONTROL_PROTOCOL_OK "ok"
#define CONTROL_PROTOCOL_DENIED "denied"
#define CONTROL_PROTOCOL_ERROR "error"

#endif
