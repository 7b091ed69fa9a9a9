/* limits — bounds that several modules, or two processes, must agree on. A name, key
 * or address longer than its bound is refused where it is read (config, handshake),
 * so every table and message sized by these holds any value that got in. */
#ifndef KTLSTUN_LIMITS_H
#define KTLSTUN_LIMITS_H

#define LIMIT_TUNNEL_NAME 64        /* bytes in a tunnel's section name */
#define LIMIT_TUNNELS 256           /* tunnels one daemon serves (shared counter slots) */
#define LIMIT_IDENTITY 256          /* bytes of a certificate identity (CN or subject) */
#define LIMIT_GATEWAY_NAME 64       /* bytes of a gateway's name in the shared state store */
#define LIMIT_USER_NAME 32          /* bytes of the local user a certificate maps to */
#define LIMIT_SOURCE_ADDRESS 63     /* a peer address as text, without port */
#define LIMIT_WORKER_SLOTS 512      /* workers alive at once, draining ones included */
#define LIMIT_SHA256_HEX 64         /* a SHA-256 digest as lowercase hex */
#define LIMIT_MAX_FAILURES 50       /* the highest max_failures, max_handshake_failures */
#define LIMIT_LOCK_SECONDS 86400    /* the longest lock, doubling included: 24 h */
#define LIMIT_LOCK_TABLE_DEFAULT 4096  /* lock_table_size: records of failed logins kept */
#define LIMIT_LOCK_TABLE_MIN 16
#define LIMIT_LOCK_TABLE_MAX 65536

#endif
