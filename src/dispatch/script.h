/* script.h - the one way into the dispatcher's Lua script: every state change of a
 * conversation or an agent is one run of it (docs/dispatcher.md). */
#ifndef DB_DISPATCH_SCRIPT_H
#define DB_DISPATCH_SCRIPT_H

#include "redis/redis.h"

struct db_services;

/* Runs operation op of the dispatcher's script with args (lens NULL = strlen) after the
 * prefix and the time; cb (may be NULL) as db_redis_eval's. */
void db_dispatch_run(struct db_services *svc, db_redis_cb cb, void *arg, const char *op,
                     int nargs, const char **args, const size_t *lens);

#endif
