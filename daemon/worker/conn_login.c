#include "worker/conn_login.h"

#include "auth/auth_channel.h"
#include "auth/second_factor.h"
#include "auth/web_login.h"
#include "core/limits.h"

int conn_login_start(struct conn *c, void (*wake)(void *))
{
    char source[LIMIT_SOURCE_ADDRESS + 1];
    second_factor_peer_address(c->tls_fd, source, sizeof(source));
    if (second_factor_is_web_login(c->ssl))
        c->web = web_login_start(c->host->pam_link, c->tunnel->config, c->ssl, c->peer.identity,
                                 source, wake, c);
    else
        c->login = auth_channel_start(c->host->pam_link, c->tunnel->config, c->ssl,
                                      c->peer.identity, source, wake, c);
    return c->login != NULL || c->web != NULL ? 0 : -1;
}

const char *conn_login_step(struct conn *c)
{
    return c->web != NULL ? web_login_step(c->web) : auth_channel_step(c->login);
}

int conn_login_expire(struct conn *c, uint64_t now_ms)
{
    if (c->web != NULL && now_ms >= web_login_deadline_ms(c->web)) {
        web_login_time_out(c->web);
        return 1;
    }
    if (c->login != NULL && now_ms >= auth_channel_deadline_ms(c->login)) {
        auth_channel_time_out(c->login);
        return 1;
    }
    return 0;
}

void conn_login_free(struct conn *c)
{
    auth_channel_free(c->login);
    c->login = NULL;
    web_login_free(c->web);
    c->web = NULL;
}
