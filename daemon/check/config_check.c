#include "check/config_check.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/ssl.h>

#include "config/config.h"
#include "core/log.h"
#include "core/privdrop.h"
#include "tls/tls_context.h"

int config_check_file(const char *path)
{
    log_use_plain_stderr();
    char *errors = NULL;
    struct config *config = config_load(path, &errors);
    if (config == NULL) {
        fprintf(stderr, "%s", errors != NULL ? errors : "configuration could not be loaded\n");
        free(errors);
        return 1;
    }
    int failed = 0;
    struct privdrop_target run_as;
    char reason[256];
    if (privdrop_resolve(config->global.user, config->global.group, &run_as, reason,
                         sizeof(reason)) < 0) {
        fprintf(stderr, "%s: [global] user/group: %s\n", path, reason);
        failed = 1;
    }
    for (size_t i = 0; i < config->tunnel_count; i++) {
        SSL_CTX *ctx = tls_context_create(&config->tunnels[i]);
        if (ctx == NULL)
            failed = 1;
        SSL_CTX_free(ctx);
    }
    config_free(config);
    if (failed)
        return 1;
    printf("configuration %s is ok\n", path);
    return 0;
}
