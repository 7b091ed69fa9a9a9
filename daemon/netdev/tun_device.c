#include "netdev/tun_device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int tun_device_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= IFNAMSIZ || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == ':')
            return 0;
    }
    return 1;
}

int tun_device_open(const char *name, unsigned flags, char *err, size_t errlen)
{
    struct ifreq ifr;
    int fd = -1;

    if (!tun_device_name_valid(name)) {
        snprintf(err, errlen, "tun device '%.*s': not a valid interface name", IFNAMSIZ, name);
        goto fail;
    }
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "tun device %s: /dev/net/tun: %s", name, strerror(errno));
        goto fail;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (flags & TUN_DEVICE_MULTI_QUEUE)
        ifr.ifr_flags |= IFF_MULTI_QUEUE;
    memcpy(ifr.ifr_name, name, strlen(name));
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        /* EINVAL/EBUSY here mostly mean a device of that name that is not ours. */
        snprintf(err, errlen, "tun device %s: cannot create or attach: %s%s", name,
                 strerror(errno),
                 errno == EINVAL || errno == EBUSY ? " (a device of another kind, or in use?)"
                                                   : "");
        goto fail;
    }
    if (ioctl(fd, TUNSETPERSIST, (flags & TUN_DEVICE_PERSIST) ? 1L : 0L) != 0) {
        snprintf(err, errlen, "tun device %s: cannot set persistence: %s", name,
                 strerror(errno));
        goto fail;
    }
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}
