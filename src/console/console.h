/* console.h - the agent console: a web inbox served by the gateway (docs/console.md).
 *
 * People sign in here, not with API tokens: an agent's sign-in secret is set by the operator
 * (or the agent's tenant) through the API or a one-time invitation link, and a signed-in agent
 * holds a session (a random id in an HttpOnly, SameSite=Strict cookie; the session itself in
 * Redis with an idle and an absolute expiry).  Everything an agent does goes through the
 * dispatcher's script and the store, like the API; an agent sees its own conversations and
 * the queue of the accounts it serves, a supervisor every conversation of its tenant.
 * Section [console] holds the settings. */
#ifndef DB_CONSOLE_H
#define DB_CONSOLE_H

#include <stddef.h>

#include "deskbridge/status.h"

struct db_services;
struct db_config;
struct db_conf_section;

struct db_console_opts {
    int behind_tls;            /* cookies marked Secure */
    long session_idle_s;       /* a session unused this long ends */
    long session_max_s;        /* a session ends this long after sign-in, used or not */
    long password_iterations;  /* PBKDF2 rounds of a new hash */
    long invite_ttl_s;         /* a sign-in link is good this long */
    long max_failures_agent;   /* failed sign-ins of one agent within the window, then 429 */
    long max_failures_addr;    /* the same from one address */
    long failure_window_s;
    const char *public_url;    /* where people reach the gateway, for links; NULL: unknown */
};

/* The [console] settings of cfg with their defaults (borrowed strings, from cfg). */
struct db_console_opts db_console_opts_of(const struct db_config *cfg);
/* The key table of [console] (listed in app/features.c). */
struct db_conf_table;
extern const struct db_conf_table db_console_conf_table;

/* Registers the console: its files at /console/, its own calls under /console/api/
 * (session), and the operator's /v1/console/agents/{id}/secret and .../invite (token).
 * Sets the router's session lookup.  DB_OK or DB_ENOMEM. */
int db_console_routes(struct db_services *svc, struct db_err *e) DB_MUST_CHECK;

/* `deskbridge agent invite ID`: makes a one-time sign-in link for agent id on the blocking
 * connection c (the same script as the API's route; the operator's scope) and writes its URL
 * into url (n bytes).  DB_OK; DB_ENOTFOUND for an unknown agent; DB_EIO with the reason in e. */
struct redisContext;
int db_console_invite_sync(struct redisContext *c, const struct db_config *cfg,
                           const char *agent, int supervisor, char *url, size_t n,
                           struct db_err *e) DB_MUST_CHECK;

#endif
