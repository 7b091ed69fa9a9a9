#include "cli/login.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "cli/cli_args.h"
#include "cli/proxy_dial.h"
#include "core/address.h"
#include "proto/auth_protocol.h"
#include "config/config.h"
#include "core/log.h"
#include "tls/tls_context.h"

#define EXIT_GRANTED 0
#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
/* The server bounds every wait; this only keeps a dead peer from hanging us. */
#define READ_TIMEOUT_S (AUTH_ANSWER_TIMEOUT_S + 300)

struct session {
    const struct tunnel_config *tunnel;
    char server[300];
    SSL *ssl;
    int answer_fd;            /* -1: the terminal */
    int tty;                  /* /dev/tty, or -1 */
    FILE *prompts;            /* where prompts and infos go */
    size_t in_len;
    unsigned char in[2 * AUTH_FRAME_MAX];
};

/* The terminal must never stay silent after an interrupted prompt. */
static struct termios saved_termios;
static volatile sig_atomic_t termios_saved_fd = -1;

static void restore_terminal_and_exit(int signo)
{
    if (termios_saved_fd >= 0)
        tcsetattr(termios_saved_fd, TCSAFLUSH, &saved_termios);
    signal(signo, SIG_DFL);
    raise(signo);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ktlstun login TUNNEL [-c FILE] [--answer-fd N]\n"
                 "  TUNNEL        the client tunnel whose server asks for a second factor\n"
                 "  -c FILE       configuration file (default %s)\n"
                 "  --answer-fd N read answers line by line from file descriptor N instead of\n"
                 "                the terminal (for scripts; prompts go to stderr)\n",
                 CONFIG_DEFAULT_PATH);
}

static void say(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(FILE *out, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vfprintf(out, fmt, args);
    va_end(args);
    fflush(out);
}

static void format_local_time(int64_t epoch, char *buf, size_t len)
{
    struct tm tm;
    time_t when = (time_t)epoch;
    if (localtime_r(&when, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)epoch);
}

static void format_span(int64_t seconds, char *buf, size_t len)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds >= 3600)
        snprintf(buf, len, "%lldh %02lldm", (long long)(seconds / 3600),
                 (long long)(seconds % 3600 / 60));
    else if (seconds >= 60)
        snprintf(buf, len, "%lldm %02llds", (long long)(seconds / 60), (long long)(seconds % 60));
    else
        snprintf(buf, len, "%llds", (long long)seconds);
}

static const struct tunnel_config *find_tunnel(const struct config *config, const char *name)
{
    for (size_t i = 0; i < config->tunnel_count; i++)
        if (strcmp(config->tunnels[i].name, name) == 0)
            return &config->tunnels[i];
    return NULL;
}

static void list_client_tunnels(const struct config *config)
{
    int any = 0;
    for (size_t i = 0; i < config->tunnel_count; i++) {
        if (config->tunnels[i].mode != TUNNEL_MODE_CLIENT)
            continue;
        fprintf(stderr, "%s%s", any ? ", " : "client tunnels in this configuration: ",
                config->tunnels[i].name);
        any = 1;
    }
    fprintf(stderr, any ? "\n" : "this configuration has no client tunnel\n");
}

/* Connects within TIMEOUT_S. Returns a blocking socket, or -1 with REASON set. */
static int connect_to(const struct tunnel_config *t, uint64_t timeout_s, char *reason, size_t len)
{
    /* Behind an HTTP proxy, as the tunnel itself goes: the proxy first, then CONNECT. */
    const struct sockaddr_storage *to = t->proxy.enabled ? &t->proxy.addr : &t->target_addr;
    socklen_t to_len = t->proxy.enabled ? t->proxy.addr_len : t->target_addr_len;
    int fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(reason, len, "%s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)to, to_len) < 0) {
        if (errno != EINPROGRESS) {
            snprintf(reason, len, "%s", strerror(errno));
            close(fd);
            return -1;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int ready = poll(&pfd, 1, (int)(timeout_s * 1000));
        int error = 0;
        socklen_t elen = sizeof(error);
        if (ready == 0)
            error = ETIMEDOUT;
        else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &elen) < 0)
            error = errno;
        if (error != 0) {
            snprintf(reason, len, "%s", strerror(error));
            close(fd);
            return -1;
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static void set_timeouts(int fd, uint64_t seconds)
{
    struct timeval tv = { .tv_sec = (time_t)seconds };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int send_frame(struct session *s, const unsigned char *frame, size_t len)
{
    size_t sent = 0;
    while (sent < len) {
        ERR_clear_error();
        int n = SSL_write(s->ssl, frame + sent, (int)(len - sent));
        if (n <= 0)
            return -1;
        sent += (size_t)n;
    }
    return 0;
}

/* Reads the next whole frame. Returns 1, 0 when the server closed, -1 on an error
 * (REASON set). The frame's text points into the session buffer until the next call. */
static int read_frame(struct session *s, struct auth_frame *frame, size_t *consumed,
                      char *reason, size_t len)
{
    if (*consumed > 0) {
        memmove(s->in, s->in + *consumed, s->in_len - *consumed);
        s->in_len -= *consumed;
        *consumed = 0;
    }
    for (;;) {
        enum auth_parse_status status =
            auth_protocol_parse(s->in, s->in_len, AUTH_FROM_SERVER, frame, consumed);
        if (status == AUTH_PARSE_OK)
            return 1;
        if (status != AUTH_PARSE_NEED_MORE) {
            snprintf(reason, len, "the server sent a bad frame (%s)",
                     auth_protocol_parse_error(status));
            return -1;
        }
        ERR_clear_error();
        int n = SSL_read(s->ssl, s->in + s->in_len, (int)(sizeof(s->in) - s->in_len));
        if (n > 0) {
            s->in_len += (size_t)n;
            continue;
        }
        int error = SSL_get_error(s->ssl, n);
        if (error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && errno == 0))
            return 0;
        unsigned long code = ERR_peek_error();
        int r = ERR_GET_REASON(code);
        if (r >= SSL_AD_REASON_OFFSET && r < SSL_AD_REASON_OFFSET + 256)
            snprintf(reason, len, "the server sent alert: %s",
                     SSL_alert_desc_string_long(r - SSL_AD_REASON_OFFSET));
        else if (error == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
            snprintf(reason, len, "the server did not answer for %d s", READ_TIMEOUT_S);
        else
            snprintf(reason, len, "%s", code ? ERR_reason_error_string(code) : strerror(errno));
        ERR_clear_error();
        return -1;
    }
}

/* Reads one answer line into ANSWER (cap AUTH_TEXT_MAX + 1). Returns its length or
 * -1 (no more answers). */
static ssize_t read_answer(struct session *s, int echo, char *answer)
{
    int fd = s->answer_fd >= 0 ? s->answer_fd : s->tty;
    struct termios quiet;
    int silenced = 0;
    if (s->answer_fd < 0 && !echo && tcgetattr(fd, &saved_termios) == 0) {
        quiet = saved_termios;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        quiet.c_lflag |= ECHONL;
        termios_saved_fd = fd;
        silenced = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    size_t used = 0;
    int got_any = 0;
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got_any = 1;
        if (c == '\n')
            break;
        if (used < AUTH_TEXT_MAX && c != '\0')
            answer[used++] = c;
    }
    if (silenced)
        tcsetattr(fd, TCSAFLUSH, &saved_termios);
    termios_saved_fd = -1;
    if (used > 0 && answer[used - 1] == '\r')
        used--;
    answer[used] = '\0';
    return got_any ? (ssize_t)used : -1;
}

static int send_start(struct session *s)
{
    unsigned char frame[AUTH_FRAME_HEADER_LEN];
    size_t len = auth_protocol_encode(AUTH_FRAME_START, NULL, 0, frame, sizeof(frame));
    return send_frame(s, frame, len);
}

/* Returns the exit status for RESULT, or -1 to go on with another attempt. */
static int report_result(struct session *s, const struct auth_frame *result, int may_retry)
{
    char text[AUTH_TEXT_MAX * 4 + 1], when[64], span[32];
    auth_protocol_printable(result->text, result->text_len, 1, text, sizeof(text));
    int64_t now = (int64_t)time(NULL);
    int64_t value = (int64_t)result->value;
    switch (result->status) {
    case AUTH_RESULT_GRANTED:
        format_local_time(value, when, sizeof(when));
        format_span(value - now, span, sizeof(span));
        say(stdout, "Access granted through %s until %s (%s from now).\n", s->tunnel->name, when,
            span);
        return EXIT_GRANTED;
    case AUTH_RESULT_DENIED:
    case AUTH_RESULT_TIMEOUT:
        say(stderr, "%s: %s.\n",
            result->status == AUTH_RESULT_DENIED ? "Wrong code" : "The server's login check timed out",
            text);
        if (may_retry && result->attempts_left > 0) {
            say(stderr, "Try again (%u attempt%s left on this connection).\n",
                result->attempts_left, result->attempts_left == 1 ? "" : "s");
            return -1;
        }
        return EXIT_REFUSED;
    case AUTH_RESULT_LOCKED:
        format_local_time(value, when, sizeof(when));
        format_span(value - now, span, sizeof(span));
        say(stderr, "Locked: %s. Try again in %s (at %s), or ask an administrator to run "
                    "`ktlstun unlock` for you.\n", text, span, when);
        return EXIT_REFUSED;
    case AUTH_RESULT_UNMAPPED:
        say(stderr, "The server does not know whose certificate this is: %s.\nAsk its "
                    "administrator to map it to your user (user_map).\n", text);
        return EXIT_REFUSED;
    case AUTH_RESULT_ACCOUNT_REFUSED:
        say(stderr, "The code was right, but the server's account check refused the login: "
                    "%s.\n", text);
        return EXIT_REFUSED;
    case AUTH_RESULT_UNAVAILABLE:
        say(stderr, "The login service of %s is unavailable: %s.\n", s->server, text);
        return EXIT_UNREACHABLE;
    case AUTH_RESULT_PROTOCOL_ERROR:
    default:
        say(stderr, "The server ended the login: %s.\n", text);
        return EXIT_REFUSED;
    }
}

static void show_message(struct session *s, const struct auth_frame *frame)
{
    char text[AUTH_TEXT_MAX * 4 + 1];
    auth_protocol_printable(frame->text, frame->text_len, 0, text, sizeof(text));
    size_t len = strlen(text);
    int prompt = frame->type == AUTH_FRAME_PROMPT_ECHO_OFF || frame->type == AUTH_FRAME_PROMPT_ECHO_ON;
    /* PAM prompts end in ": " by convention; messages get their own line. */
    say(s->prompts, "%s%s", text, !prompt && (len == 0 || text[len - 1] != '\n') ? "\n" : "");
    if (prompt && len > 0 && text[len - 1] != ' ' && text[len - 1] != '\n')
        say(s->prompts, " ");
}

static int converse(struct session *s)
{
    char reason[300];
    size_t consumed = 0;
    int interactive = s->answer_fd < 0;
    if (send_start(s) < 0) {
        say(stderr, "ktlstun login: the connection to %s failed while starting the login\n",
            s->server);
        return EXIT_UNREACHABLE;
    }
    for (;;) {
        struct auth_frame frame;
        int got = read_frame(s, &frame, &consumed, reason, sizeof(reason));
        if (got <= 0) {
            say(stderr, "ktlstun login: %s ended the login without a result%s%s\n", s->server,
                got < 0 ? ": " : "", got < 0 ? reason : "");
            return EXIT_UNREACHABLE;
        }
        switch (frame.type) {
        case AUTH_FRAME_PROMPT_ECHO_OFF:
        case AUTH_FRAME_PROMPT_ECHO_ON: {
            char answer[AUTH_TEXT_MAX + 1];
            unsigned char out[AUTH_FRAME_MAX];
            show_message(s, &frame);
            ssize_t len = read_answer(s, frame.type == AUTH_FRAME_PROMPT_ECHO_ON, answer);
            if (!interactive)
                say(s->prompts, "\n");
            if (len < 0) {
                say(stderr, "\nktlstun login: no answer to give (%s)\n",
                    interactive ? "end of input" : "the answer fd reached its end");
                OPENSSL_cleanse(answer, sizeof(answer));
                return EXIT_REFUSED;
            }
            size_t frame_len = auth_protocol_encode(AUTH_FRAME_ANSWER, answer, (size_t)len, out,
                                                    sizeof(out));
            OPENSSL_cleanse(answer, sizeof(answer));
            int sent = send_frame(s, out, frame_len);
            OPENSSL_cleanse(out, sizeof(out));
            if (sent < 0) {
                say(stderr, "ktlstun login: the connection to %s failed\n", s->server);
                return EXIT_UNREACHABLE;
            }
            break;
        }
        case AUTH_FRAME_INFO:
        case AUTH_FRAME_ERROR:
            show_message(s, &frame);
            break;
        case AUTH_FRAME_RESULT: {
            int status = report_result(s, &frame, interactive);
            if (status >= 0)
                return status;
            if (send_start(s) < 0) {
                say(stderr, "ktlstun login: the connection to %s failed\n", s->server);
                return EXIT_UNREACHABLE;
            }
            break;
        }
        default:
            break;
        }
    }
}

static int handshake(struct session *s, struct tls_peer *peer)
{
    ERR_clear_error();
    int done = SSL_connect(s->ssl);
    if (done == 1)
        return 0;
    char reason[600];
    tls_context_handshake_failure(s->ssl, peer, SSL_get_error(s->ssl, done), reason,
                                  sizeof(reason));
    say(stderr, "ktlstun login: TLS handshake with %s failed: %s\n", s->server, reason);
    return -1;
}

static int parse_args(int argc, char **argv, const char **config_path, const char **tunnel,
                      int *answer_fd)
{
    static const struct cli_args_spec spec = {
        .own = { { "answer-fd", 0, 1 } }, .min_args = 1, .max_args = 1, .usage = usage,
    };
    struct cli_args args;
    int parsed = cli_args_parse(argc, argv, &spec, &args);
    if (parsed == 0)
        exit(0);
    if (parsed > 0)
        return -1;
    const char *fd_text = args.own[0];
    if (fd_text != NULL) {
        char *end;
        long fd = strtol(fd_text, &end, 10);
        if (*fd_text == '\0' || *end != '\0' || fd < 0 || fd > 65535 ||
            fcntl((int)fd, F_GETFD) < 0) {
            fprintf(stderr, "ktlstun login: --answer-fd %s is not an open file descriptor\n",
                    fd_text);
            return -1;
        }
        *answer_fd = (int)fd;
    }
    *config_path = args.config_path;
    *tunnel = args.args[0];
    return 0;
}

int login_command(int argc, char **argv)
{
    const char *config_path = CONFIG_DEFAULT_PATH, *name = NULL;
    struct session s = { .answer_fd = -1, .tty = -1 };
    struct tls_peer peer = { 0 };
    struct config *config = NULL;
    SSL_CTX *ctx = NULL;
    int fd = -1, status = EXIT_USAGE;
    char *errors = NULL, reason[300];

    if (parse_args(argc, argv, &config_path, &name, &s.answer_fd) < 0)
        return EXIT_USAGE;
    config = config_load(config_path, &errors);
    if (config == NULL) {
        fprintf(stderr, "%sktlstun login: %s has errors\n", errors ? errors : "", config_path);
        free(errors);
        return EXIT_USAGE;
    }
    s.tunnel = find_tunnel(config, name);
    if (s.tunnel == NULL || s.tunnel->mode != TUNNEL_MODE_CLIENT) {
        fprintf(stderr, "ktlstun login: %s is %s in %s\n", name,
                s.tunnel == NULL ? "not a tunnel" : "a server tunnel, not a client tunnel",
                config_path);
        list_client_tunnels(config);
        goto out;
    }
    address_format(&s.tunnel->target, s.server, sizeof(s.server));
    if (s.answer_fd < 0) {
        s.tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s.tty < 0) {
            fprintf(stderr, "ktlstun login: no terminal to ask for the code on (%s); use "
                            "--answer-fd N\n", strerror(errno));
            goto out;
        }
        s.prompts = fdopen(dup(s.tty), "w");
        signal(SIGINT, restore_terminal_and_exit);
        signal(SIGTERM, restore_terminal_and_exit);
        signal(SIGHUP, restore_terminal_and_exit);
    }
    if (s.prompts == NULL)
        s.prompts = stderr;
    signal(SIGPIPE, SIG_IGN);

    ctx = tls_context_create(s.tunnel);
    static const unsigned char alpn[] = "\x0e" AUTH_PROTOCOL_ALPN;
    if (ctx == NULL || SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        fprintf(stderr, "ktlstun login: cannot set up TLS for [%s]\n", name);
        goto out;
    }
    /* Prompts and results only come back, but nothing read here outlives its use. */
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
    status = EXIT_UNREACHABLE;
    fd = connect_to(s.tunnel, s.tunnel->handshake_timeout, reason, sizeof(reason));
    if (fd < 0) {
        fprintf(stderr, "ktlstun login: cannot reach %s: %s\n", s.server, reason);
        goto out;
    }
    set_timeouts(fd, s.tunnel->handshake_timeout);
    if (s.tunnel->proxy.enabled && proxy_dial_connect(fd, s.tunnel, reason, sizeof(reason)) < 0) {
        fprintf(stderr, "ktlstun login: cannot reach %s: %s\n", s.server, reason);
        goto out;
    }
    s.ssl = tls_context_new_ssl(ctx, s.tunnel, fd, &peer);
    if (s.ssl == NULL || handshake(&s, &peer) < 0)
        goto out;
    const unsigned char *chosen = NULL;
    unsigned int chosen_len = 0;
    SSL_get0_alpn_selected(s.ssl, &chosen, &chosen_len);
    if (chosen_len != sizeof(AUTH_PROTOCOL_ALPN) - 1 ||
        memcmp(chosen, AUTH_PROTOCOL_ALPN, chosen_len) != 0) {
        fprintf(stderr, "ktlstun login: %s does not offer a second-factor login on this port "
                        "(its tunnel does not set second_factor = pam); no login is needed, or "
                        "the address is wrong\n", s.server);
        goto out;
    }
    set_timeouts(fd, READ_TIMEOUT_S);
    status = converse(&s);
    SSL_shutdown(s.ssl);
out:
    if (status != EXIT_GRANTED)
        ERR_clear_error();
    SSL_free(s.ssl);
    tls_context_forget_peer(&peer);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    if (s.prompts != NULL && s.prompts != stderr)
        fclose(s.prompts);
    if (s.tty >= 0)
        close(s.tty);
    OPENSSL_cleanse(s.in, sizeof(s.in));
    config_free(config);
    return status;
}
