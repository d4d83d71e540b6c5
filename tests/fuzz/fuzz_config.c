/* fuzz_config.c - the configuration file parser and the check pass over arbitrary text.
 * Secret files are switched off (the input must not name files to open); everything else
 * runs as in the daemon, the accounts too: the connectors read their sections through their
 * key tables, which arbitrary sections reach here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/features.h"
#include "conf/config.h"
#include "conf/config_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *const env[] = {NULL};
    struct db_config_opts o = {.features = db_feature_tables, .text = (const char *)data, .text_len = size,
                               .no_secret_files = 1};
    struct db_config *c = NULL;
    struct db_err e = {0};
    int rc = db_config_load_opts("fuzz.conf", env, &o, &c, &e);
    if (rc == DB_OK) {
        /* Walk what a caller would read, so a dangling pointer shows under ASan. */
        size_t n = strlen(c->listen) + strlen(c->prefix) + strlen(c->log_level);
        for (size_t i = 0; i < c->n_api_tokens; i++) n += strlen(c->api_tokens[i]);
        for (size_t i = 0; i < c->n_accounts; i++) {
            const struct db_account *a = &c->accounts[i];
            if (db_config_account(c, a->platform, a->id) == NULL || !a->state) abort();
            for (size_t k = 0; k < a->sec.n; k++)
                n += strlen(a->sec.kv[k].key) + strlen(a->sec.kv[k].value);
        }
        (void)n;
        db_config_free(c);
    } else if (c != NULL || e.code != rc || memchr(e.msg, '\0', sizeof e.msg) == NULL) {
        abort();
    }
    return 0;
}
