/* script.c - runs the dispatcher's script (src/redis/scripts/dispatch.lua), which the
 * dispatcher, its API and its reply reader all change conversations through. */
#include "dispatch/script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "redis/scripts.h"
#include "services/services.h"
#include "util/id.h"

static struct db_redis_script *script;

void db_dispatch_run(struct db_services *svc, db_redis_cb cb, void *arg, const char *op,
                     int nargs, const char **args, const size_t *lens)
{
    /* One script object for the process: it lives as long as the process does. */
    if (!script) script = db_redis_script_new(db_lua_dispatch);
    const char **argv = malloc((size_t)(3 + nargs) * sizeof *argv);
    size_t *argl = malloc((size_t)(3 + nargs) * sizeof *argl);
    char now[24];
    if (!script || !argv || !argl) {
        free(argv);
        free(argl);
        if (cb) cb(DB_EAGAIN, NULL, "out of memory", arg);
        return;
    }
    snprintf(now, sizeof now, "%lld", (long long)db_now_ms());
    argv[0] = op, argv[1] = svc->cfg->cfg->prefix, argv[2] = now;
    for (int i = 0; i < 3; i++) argl[i] = strlen(argv[i]);
    for (int i = 0; i < nargs; i++) {
        argv[3 + i] = args[i];
        argl[3 + i] = lens ? lens[i] : strlen(args[i]);
    }
    db_redis_eval(svc->redis, script, cb, arg, 0, NULL, 3 + nargs, argv, argl);
    free(argv);
    free(argl);
}

