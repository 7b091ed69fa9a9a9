/* kmod_load — load the kernel TLS module and the AEAD modules its ciphers use (libkmod). */
#ifndef KTLSTUN_KMOD_LOAD_H
#define KTLSTUN_KMOD_LOAD_H

#include <stddef.h>

/* Loads "tls" and, where this kernel has them, the modules behind AES-GCM, AES-CCM and
 * ChaCha20-Poly1305 (generic and x86 accelerated). Without CAP_SYS_MODULE nothing is
 * loaded and only the check is made. A missing optional module is a debug line; a
 * missing "tls" is a warning that says why.
 * Returns 0 when the tls ULP is registered afterwards, -1 otherwise. */
int kmod_load_tls_modules(void);

/* Copies the kernel's list of available TCP ULPs (/proc/sys/net/ipv4/tcp_available_ulp,
 * blank separated, no newline) into BUF of SIZE bytes, truncating if needed. Outside
 * the initial network namespace, where the kernel shows no list, the kernel is asked
 * for the tls ULP itself and BUF holds "tls" or nothing.
 * Returns 1 when the list contains "tls", 0 when it does not, -1 when it cannot be read
 * (BUF then holds the reason). */
int kmod_load_available_ulps(char *buf, size_t size);

#endif
