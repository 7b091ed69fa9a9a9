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

#endif
