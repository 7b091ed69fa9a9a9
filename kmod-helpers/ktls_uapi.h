/* ktls_uapi — the kernel TLS constants Debian 12's glibc and linux-libc-dev headers may
 * leave out. Where a header defines one, that definition wins; on older headers the
 * kernel simply refuses what it lacks. */
#ifndef KTLSTUN_KTLS_UAPI_H
#define KTLSTUN_KTLS_UAPI_H

#include <linux/tls.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#ifndef SOL_TLS
#define SOL_TLS 282                /* linux/socket.h; glibc 2.36 does not export it */
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef TLS_TX_ZEROCOPY_RO
#define TLS_TX_ZEROCOPY_RO 3       /* linux 6.0 */
#endif
#ifndef TLS_RX_EXPECT_NO_PAD
#define TLS_RX_EXPECT_NO_PAD 4     /* linux 6.0 */
#endif

#endif
