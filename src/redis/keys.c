/* keys.c - builds the key names of keys.h. */
#include "redis/keys.h"

#include "util/join.h"

const char *const db_key_suffixes[] = {
    DB_KEY_EVENTS,         DB_KEY_STATUS,         DB_KEY_OUTBOX,        DB_KEY_DEAD,
    DB_KEY_DEDUPE,         DB_KEY_CURSOR,         DB_KEY_MSG,           DB_KEY_EXT,
    DB_KEY_EARLY,          DB_KEY_CLIENT,         DB_KEY_GRANT,         DB_KEY_MEDIAURL,
    DB_KEY_MEDIA,          DB_KEY_MEDIAREC,       DB_KEY_MEDIAIDX,      DB_KEY_MEDIACONV,
    DB_KEY_CONVS,          DB_KEY_CONV,
    DB_KEY_DISPATCH_ACTIVE, DB_KEY_DISPATCH_QUEUE, DB_KEY_DISPATCH_RR,  DB_KEY_DISPATCH_QWAIT,
    DB_KEY_AGENTS,         DB_KEY_AGENT_INFO,     DB_KEY_AGENT_CONVS,   DB_KEY_AGENT_INBOX,
    DB_KEY_STATS,          DB_KEY_AUTOREPLY,      DB_KEY_AGENT_AUTH,    DB_KEY_AGENT_SESSIONS,
    DB_KEY_SESSION,        DB_KEY_INVITE,         DB_KEY_SIGNIN_FAIL,   DB_KEY_SEARCH,
    DB_KEY_WAKE,           DB_KEY_STATS_FRT,      DB_KEY_STATS_WAIT,    DB_KEY_STATS_CSAT,
    DB_KEY_STATS_HANDLED,  DB_KEY_DEDUPE_MOVED,   NULL,
};

const char *db_key(char *buf, size_t n, const char *prefix, const char *suffix)
{
    DB_JOIN(buf, n, prefix, ":", suffix);
    return buf;
}

const char *db_key_tagged(char *buf, size_t n, const char *prefix, const char *suffix,
                          const char *id)
{
    DB_JOIN(buf, n, prefix, ":", suffix, ":{", id, "}");
    return buf;
}
