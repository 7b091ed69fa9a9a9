/* notify_capture PATH: plays systemd's side of NOTIFY_SOCKET for tests. Binds a unix
 * datagram socket at PATH and prints each message on one line, prefixed with the
 * CLOCK_MONOTONIC milliseconds it arrived at (newlines inside a message become '|'). */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: notify_capture PATH\n");
        return 2;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "notify_capture: path too long\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    unlink(argv[1]);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("notify_capture: bind");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("listening\n");
    char message[4096];
    for (;;) {
        ssize_t n = recv(fd, message, sizeof(message) - 1, 0);
        if (n < 0)
            return 1;
        message[n] = '\0';
        for (ssize_t i = 0; i < n; i++)
            if (message[i] == '\n')
                message[i] = '|';
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        printf("%lld %s\n", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, message);
    }
}
