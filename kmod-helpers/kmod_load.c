#include "kmod_load.h"

#include "core/log.h"

#include <errno.h>
#include <libkmod.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define AVAILABLE_ULP_PATH "/proc/sys/net/ipv4/tcp_available_ulp"

/* The kernel would load most of these on demand when a cipher is first set, but only
 * through /sbin/modprobe, and a slow first handshake or a missing modprobe in a
 * container is worse than loading them once at start. Arch-specific ones are absent
 * on other architectures, and some are built in: neither is an error. */
static const char *const aead_modules[] = {
    "aesni-intel", "ghash-clmulni-intel", "ctr", "gcm", "ccm",
    "chacha-x86_64", "poly1305-x86_64", "chacha_generic", "poly1305_generic",
    /* Newer kernels (7.x) name the ChaCha20 skcipher module "chacha". */
    "chacha", "chacha20poly1305",
};

/* Module loading needs CAP_SYS_MODULE, not just uid 0 (containers, systemd sandboxing). */
static bool has_cap_sys_module(void)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &header, data) != 0)
        return false;
    return (data[CAP_TO_INDEX(CAP_SYS_MODULE)].effective & CAP_TO_MASK(CAP_SYS_MODULE)) != 0;
}

static bool list_has_word(const char *list, const char *word)
{
    size_t word_len = strlen(word);
    const char *p = list;

    while (*p != '\0') {
        p += strspn(p, " \t");
        size_t len = strcspn(p, " \t");
        if (len == word_len && strncmp(p, word, len) == 0)
            return true;
        p += len;
    }
    return false;
}

/* The kernel lists its ULPs only in the initial network namespace: elsewhere (a
 * container, `ip netns exec`) the file is absent. There, ask for the tls ULP on an
 * unconnected TCP socket: a registered tls ULP refuses it with ENOTCONN (it needs an
 * established connection), an unknown one gives ENOENT. */
static int ask_for_tls_ulp(char *buf, size_t size)
{
    int result = -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
        snprintf(buf, size, "cannot read %s, nor open a TCP socket to ask: %s", AVAILABLE_ULP_PATH,
                 strerror(errno));
        goto out;
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) == 0 || errno == ENOTCONN) {
        snprintf(buf, size, "tls");
        result = 1;
    } else if (errno == ENOENT) {
        buf[0] = '\0';
        result = 0;
    } else {
        snprintf(buf, size, "cannot read %s, and setsockopt(TCP_ULP, tls) says: %s",
                 AVAILABLE_ULP_PATH, strerror(errno));
    }
out:
    if (fd >= 0)
        close(fd);
    return result;
}

int kmod_load_available_ulps(char *buf, size_t size)
{
    int result = -1;
    FILE *file = NULL;
    char line[1024] = "";

    file = fopen(AVAILABLE_ULP_PATH, "re");
    if (file == NULL && errno == ENOENT) {
        result = ask_for_tls_ulp(line, sizeof(line));
        snprintf(buf, size, "%s", line);
        goto out;
    }
    if (file == NULL) {
        snprintf(buf, size, "cannot read %s: %s", AVAILABLE_ULP_PATH, strerror(errno));
        goto out;
    }
    /* An empty file is a kernel with no ULP at all, not an error. */
    if (fgets(line, sizeof(line), file) == NULL)
        line[0] = '\0';
    line[strcspn(line, "\n")] = '\0';
    snprintf(buf, size, "%s", line);
    result = list_has_word(line, "tls") ? 1 : 0;
out:
    if (file != NULL)
        fclose(file);
    return result;
}

/* Returns 0 when MODULE is now loaded or built in, 1 when this kernel has no such
 * module, -1 when it exists but failed to load (reason logged at LEVEL). */
static int load_module(struct kmod_ctx *ctx, const char *name, enum log_level level)
{
    int result = -1;
    struct kmod_list *found = NULL;
    struct kmod_list *item;

    int err = kmod_module_new_from_lookup(ctx, name, &found);
    if (err < 0) {
        log_msg(level, "kernel module %s: lookup failed: %s", name, strerror(-err));
        goto out;
    }
    if (found == NULL) {
        result = 1;
        goto out;
    }
    result = 0;
    kmod_list_foreach(item, found) {
        struct kmod_module *mod = kmod_module_get_module(item);
        err = kmod_module_probe_insert_module(mod, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL,
                                              NULL, NULL);
        if (err < 0) {
            log_msg(level, "kernel module %s (%s): %s", name, kmod_module_get_name(mod),
                    err == -ENOENT ? "blacklisted or not found" : strerror(-err));
            result = -1;
        } else {
            log_debug("kernel module %s: loaded (%s)", name, kmod_module_get_name(mod));
        }
        kmod_module_unref(mod);
    }
out:
    if (found != NULL)
        kmod_module_unref_list(found);
    return result;
}

int kmod_load_tls_modules(void)
{
    int result = -1;
    char ulps[256];
    struct kmod_ctx *ctx = NULL;
    struct utsname uts;
    const char *why = NULL;
    char why_buf[320];

    if (uname(&uts) != 0)
        snprintf(uts.release, sizeof(uts.release), "?");
    if (!has_cap_sys_module()) {
        why = "the tls module is not loaded and this process lacks CAP_SYS_MODULE to load "
              "it (list it in /etc/modules-load.d/)";
        goto check;
    }
    ctx = kmod_new(NULL, NULL);
    if (ctx == NULL) {
        why = "libkmod could not be initialised to load the tls module";
        goto check;
    }
    if (access(kmod_get_dirname(ctx), F_OK) != 0) {
        snprintf(why_buf, sizeof(why_buf), "%s does not exist (no modules installed for "
                 "this kernel) and tls is not built in", kmod_get_dirname(ctx));
        why = why_buf;
        goto check;
    }
    switch (load_module(ctx, "tls", LOG_LEVEL_WARNING)) {
    case 1:
        why = "this kernel has no tls module and none built in (CONFIG_TLS off?)";
        break;
    case -1:
        why = "loading the tls module failed (reason above)";
        break;
    default:
        why = "the tls module loaded but registered no tls ULP";
        break;
    }
    for (size_t i = 0; i < sizeof(aead_modules) / sizeof(aead_modules[0]); i++) {
        if (load_module(ctx, aead_modules[i], LOG_LEVEL_DEBUG) == 1)
            log_debug("kernel module %s: not present in this kernel", aead_modules[i]);
    }
check:
    switch (kmod_load_available_ulps(ulps, sizeof(ulps))) {
    case 1:
        result = 0;
        break;
    case 0:
        log_warning("kernel TLS unavailable on %s: %s; connections use userspace TLS",
                    uts.release, why);
        break;
    default:
        log_warning("kernel TLS unavailable on %s: %s", uts.release, ulps);
        break;
    }
    if (ctx != NULL)
        kmod_unref(ctx);
    return result;
}
