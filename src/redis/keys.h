/* keys.h - every Redis key and consumer-group name of the gateway, in one place.
 *
 * A key is "<prefix>:<suffix>", the prefix being [gateway] redis_prefix (P below).  C code
 * builds keys only with db_key() and db_key_tagged() from the names here; the scripts in
 * src/redis/scripts/ build theirs from P in Lua and use exactly the suffixes listed in
 * db_key_suffixes (tests/unit/test_redis_scripts.c checks that no script spells one that is
 * not listed).  docs/stream-contract.md describes the streams; docs/dispatcher.md the
 * dispatcher's keys. */
#ifndef DB_REDIS_KEYS_H
#define DB_REDIS_KEYS_H

#include <stddef.h>

/* ---- streams (docs/stream-contract.md) ---- */
#define DB_KEY_EVENTS "events" /* P:events, field `event`: inbound facts */
#define DB_KEY_STATUS "status" /* P:status, field `status`: delivery-state changes */
#define DB_KEY_OUTBOX "outbox" /* P:outbox, field `command`: messages to send */
#define DB_KEY_DEAD "dead"     /* P:dead: entries given up on, with the reason */

/* ---- the event store (src/store/, scripts ingest*, enqueue, set_status, msg_get) ---- */
#define DB_KEY_DEDUPE "dedupe" /* P:dedupe:<platform>:<account>:<key>: redelivery guard, TTL;
                                  in database dedupe_db when set */
#define DB_KEY_DEDUPE_MOVED "dedupe_moved" /* "<until> <db>": until when the main database's
                                              dedupe keys still count (dedupe_moved.lua) */
#define DB_KEY_CURSOR "cursor" /* P:cursor:<platform>:<account>: a poller's position */
#define DB_KEY_MSG "msg"       /* P:msg:{<id>}: one outbound message; P:msg:{<id>}:history */
#define DB_KEY_EXT "ext"       /* P:ext:<platform>:<account>:<external id> -> message id */
#define DB_KEY_EARLY "early"   /* P:early:<platform>:<account>:<external id>: early receipts */
#define DB_KEY_CLIENT "client" /* P:client:<client id> -> message id (idempotency) */
#define DB_KEY_MEDIAURL "mediaurl" /* P:mediaurl:<platform>:<account>:<media id> -> the URL
                                       a webhook named (Viber), TTL dedupe_ttl_s */
#define DB_KEY_GRANT "grant"   /* P:grant:<platform>:<account>:<id>: a platform grant's state
                                  (Telegram business connections; docs/platforms/telegram.md) */

/* ---- the media store (src/mediastore/, src/media/; docs/media.md) ---- */
#define DB_KEY_MEDIA "media"       /* P:media: stream, field `media`: files stored or lost */
#define DB_KEY_MEDIAREC "mediarec" /* P:mediarec:<platform>:<account>:<media id>: a file's record */
#define DB_KEY_MEDIAIDX "mediaidx" /* P:mediaidx: sorted set of records by time stored */
#define DB_KEY_MEDIACONV "mediaconv" /* P:mediaconv:<conversation>: set of a conversation's records */
#define DB_KEY_TEMPLATES "templates" /* P:templates:<platform>:<account>: the cached list */
#define DB_KEY_CUSTOMER "customer" /* P:customer:{<c>}: "<ts> <id>" of the customer's newest
                                      message (WhatsApp: its window and read marks) */

/* ---- the dispatcher (scripts dispatch, metrics_convs; docs/dispatcher.md) ---- */
#define DB_KEY_CONVS "convs"                     /* sorted set of every conversation */
#define DB_KEY_CONV "conv"                       /* P:conv:{<c>}, P:conv:{<c>}:items */
#define DB_KEY_DISPATCH_ACTIVE "dispatch:active" /* conversations not closed */
#define DB_KEY_DISPATCH_QUEUE "dispatch:queue"   /* queued conversations by priority, age */
#define DB_KEY_DISPATCH_RR "dispatch:rr"         /* tie counter */
#define DB_KEY_DISPATCH_QWAIT "dispatch:qwait"   /* P:dispatch:qwait:{<c>}: last wait told */
#define DB_KEY_AGENTS "agents"                   /* set of agent ids */
#define DB_KEY_AGENT_INFO "agentinfo"            /* P:agentinfo:{<a>}: an agent's hash */
#define DB_KEY_AGENT_CONVS "agentconvs"          /* P:agentconvs:{<a>}: assigned to an agent */
#define DB_KEY_AGENT_INBOX "agent"               /* P:agent:{<a>}: an agent's inbox stream */
#define DB_KEY_STATS "stats"                     /* P:stats:<kind>: the samples below */
#define DB_KEY_STATS_FRT "stats:frt"             /* first responses (zset, 24 h) */
#define DB_KEY_STATS_WAIT "stats:wait"           /* queue waits (zset, 24 h) */
#define DB_KEY_STATS_CSAT "stats:csat"           /* satisfaction answers (zset, 24 h): member
                                                    "score|conversation|at|agent|platform:account" */
#define DB_KEY_STATS_HANDLED "stats:handled"     /* agent|account|conversation by last reply */

/* ---- automatic answers (src/auto/) ---- */
#define DB_KEY_AUTOREPLY "autoreply" /* P:autoreply:<what>:<conversation>[:<period>] */

/* ---- live streams (src/stream/wake.c) ---- */
#define DB_KEY_WAKE "wake" /* P:wake:{<host-pid>}: a process's kick stream, MAXLEN 1, expiring */

/* ---- the agent console (src/console/, docs/console.md) ---- */
#define DB_KEY_AGENT_AUTH "agentauth"         /* P:agentauth:{<a>}: sign-in hash and role */
#define DB_KEY_AGENT_SESSIONS "agentsessions" /* P:agentsessions:{<a>}: its session names */
#define DB_KEY_SESSION "session"              /* P:session:<sha256 of the cookie>: a session */
#define DB_KEY_INVITE "invite"                /* P:invite:<sha256 of the token>: a sign-in link */
#define DB_KEY_SIGNIN_FAIL "signinfail"       /* P:signinfail:agent:<a>, :addr:<ip>: counters */
#define DB_KEY_SEARCH "search"                /* P:search:<tenant>:<token>: conversations */

/* ---- consumer groups ---- */
#define DB_SENDER_GROUP "deskbridge-senders"      /* on P:outbox */
#define DB_DISPATCH_GROUP "deskbridge-dispatch"   /* on P:events */
#define DB_DISPATCH_REPLIES_GROUP "deskbridge-dispatch-replies" /* on P:outbox: replies */
#define DB_AUTOREPLY_GROUP "deskbridge-autoreply" /* on P:events */
#define DB_MEDIA_GROUP "deskbridge-media"     /* on P:events: the media store */
#define DB_HOOKOUT_GROUP_PREFIX "deskbridge-hook-" /* + endpoint name, on P:events and P:status */

/* Every suffix above, NULL-terminated: what a script may append to P. */
extern const char *const db_key_suffixes[];

/* "<prefix>:<suffix>" into buf of n bytes (cut short, still terminated, when it does not
 * fit); returns buf. */
const char *db_key(char *buf, size_t n, const char *prefix, const char *suffix);
/* "<prefix>:<suffix>:{<id>}": a key of one entity, hash-tagged by its id; returns buf. */
const char *db_key_tagged(char *buf, size_t n, const char *prefix, const char *suffix,
                          const char *id);

#endif
