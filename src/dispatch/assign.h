/* assign.h - the pure parts of assignment: priorities, queue order, keyword rules and the
 * agent choice, without Redis.  The dispatcher's Lua script applies the same rules inside
 * Redis (src/redis/scripts/dispatch.lua); tests/unit/test_assign.c checks both agree. */
#ifndef DB_ASSIGN_H
#define DB_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "deskbridge/status.h"

enum db_priority { DB_PRIO_LOW = 0, DB_PRIO_NORMAL, DB_PRIO_HIGH, DB_PRIO_URGENT };

/* The priority named s (low|normal|high|urgent), or -1. */
int db_priority_parse(const char *s);
/* Static name of p; "normal" for an unknown value. */
const char *db_priority_name(int p);
/* Score of a queued conversation in the queue's sorted set: lower is served first, higher
 * priority before lower, then older before newer. */
double db_queue_score(int priority, int64_t queued_at_ms);

/* Parses one priority_keyword value "word,word:priority" and appends "word\tpriority\n" per
 * word (ASCII letters lowered) to *rules (malloc'd, grown; caller frees, may start NULL).
 * DB_OK, DB_EINVAL with the reason in e, DB_ENOMEM. */
int db_assign_rules_add(char **rules, const char *spec, struct db_err *e) DB_MUST_CHECK;
/* The highest priority a rule set gives text (ASCII-case-insensitive substring match), or -1. */
int db_assign_rules_match(const char *rules, const char *text);

struct db_assign_agent {
    const char *id;
    int online;                 /* presence online */
    int capacity, load;         /* load = conversations assigned now */
    const char *const *languages; size_t n_languages; /* empty = any */
    const char *const *accounts; size_t n_accounts;   /* "platform:account"; empty = all */
};

struct db_assign_conv {
    const char *account;        /* "platform:account" */
    const char *language;       /* may be NULL */
    const char *previous_agent; /* may be NULL */
};

/* The index in agents of who gets c: the previous agent when online and under capacity,
 * else the least loaded online agent with room who serves the account and language; among
 * equals the (rr % ties)-th in id order.  -1 when nobody can take it (it waits in the queue). */
long db_assign_pick(const struct db_assign_conv *c, const struct db_assign_agent *agents,
                    size_t n, unsigned long rr);

#endif
