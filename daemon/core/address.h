/* address — the listen/target syntax: HOST:PORT, [V6]:PORT, unix:/path, and for listen
 * only systemd:NAME (a socket systemd passed with FileDescriptorName=NAME). */
#ifndef KTLSTUN_ADDRESS_H
#define KTLSTUN_ADDRESS_H

#include <stdint.h>
#include <sys/socket.h>

enum address_kind { ADDRESS_INET, ADDRESS_UNIX, ADDRESS_SYSTEMD };

struct address {
    enum address_kind kind;
    char host[256];   /* ADDRESS_INET: name or literal, without brackets; "" never */
    uint16_t port;    /* ADDRESS_INET: 1..65535 */
    char path[108];   /* ADDRESS_UNIX: absolute path (fits sun_path) */
    char fd_name[256];/* ADDRESS_SYSTEMD: the FileDescriptorName */
};

/* Parses TEXT into *out. Returns 0, or -1 with a static reason in *reason
 * ("missing port", "port out of range", "IPv6 literal needs brackets", ...). */
int address_parse(const char *text, struct address *out, const char **reason);

/* Formats ADDR as it was written (brackets for IPv6 literals) into BUF. Returns BUF. */
char *address_format(const struct address *addr, char *buf, size_t len);

/* Resolves ADDR (getaddrinfo for inet, sockaddr_un for unix; a systemd socket has no
 * address and is an error) into *ss and *sslen, first result only. Returns 0, or -1 with a reason written into ERR. Blocking: called at
 * config load and when a tunnel connects its target. */
int address_resolve(const struct address *addr, struct sockaddr_storage *ss, socklen_t *sslen,
                    char *err, size_t errlen);

/* Formats a socket address as "1.2.3.4:5", "[::1]:5" or "unix:/path" into BUF. Returns BUF. */
char *address_format_sockaddr(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

#endif
