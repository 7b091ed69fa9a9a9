/* message_ids — the journal MESSAGE_IDs ktlstund's events carry. Fixed forever: operators
 * filter on them (journalctl MESSAGE_ID=...). */
#ifndef KTLSTUN_MESSAGE_IDS_H
#define KTLSTUN_MESSAGE_IDS_H

/* A handshake or connection was refused (bad certificate, rules, limits, kTLS). */
#define MESSAGE_ID_REFUSED "7b7e7391851943809458bcee715856ca"
/* A tunnelled connection ended: the audit record. */
#define MESSAGE_ID_AUDIT "a6e522309f92496aaa02a7bb260033fb"
/* A certificate or CRL the daemon loaded is close to expiry. */
#define MESSAGE_ID_EXPIRY "311993a3649f45c48b771ce5c8211859"
/* A second-factor lock: too many failed logins of one identity or from one address. */
#define MESSAGE_ID_LOGIN_LOCKED "f21362cc05df43b08e83c1919a35bdb0"
/* A second-factor login failed or was refused (locked, unmapped, timed out). */
#define MESSAGE_ID_LOGIN_FAILED "fb499096394045d19af0a79d8e42d6fe"
/* A second-factor login succeeded: a grant was issued. */
#define MESSAGE_ID_LOGIN_SUCCEEDED "acaa087e013b45d4a9627ee425bfb762"
/* Too many refused handshakes from one address (max_handshake_failures). */
#define MESSAGE_ID_HANDSHAKE_FAILURES "67c976f4476d45368467d628eecf3094"
/* An administrator lifted second-factor locks (ktlstun unlock). */
#define MESSAGE_ID_LOGIN_UNLOCKED "fb5d728d7bba4a45b22f504adf893a97"

#endif
