/* console_internal.h - what the console's files share (never included from outside). */
#ifndef DB_CONSOLE_INTERNAL_H
#define DB_CONSOLE_INTERNAL_H

#include <stddef.h>

#include "redis/redis.h"

struct db_services;
struct db_httpd_req;
struct db_session;
struct db_router_pending;

#define DB_CONSOLE_COOKIE "db_session"

/* Runs operation op of console_auth.lua with args after the prefix and the time. */
void db_console_auth_run(struct db_services *svc, db_redis_cb cb, void *arg, const char *op,
                         int nargs, const char **args);
/* Hex SHA-256 of s into out: how a session id or an invitation token is named in Redis, so
 * a copy of Redis does not hold a usable cookie or link. */
void db_console_name_of(const char *s, char out[65]);
/* The request's session id from its Cookie header into out (64 hex characters); 0 when it
 * has none of that shape. */
int db_console_cookie_id(const struct db_httpd_req *req, char out[65]);
/* The caller's address without the port (for the per-address throttle). */
void db_console_peer_addr(const struct db_httpd_req *req, char *out, size_t n);
/* The router's session lookup (console.c). */
void db_console_session_lookup(struct db_httpd_req *req, struct db_router_pending *p,
                               void *arg);

/* Sign-in, invitations, sign-out and the operator's routes (auth_api.c). */
int db_console_auth_routes(struct db_services *svc);
/* The console's files (files.c). */
int db_console_file_routes(struct db_services *svc);
/* The agent's calls: inbox, conversations, replies, presence, stream (agent_api.c). */
int db_console_agent_routes(struct db_services *svc);
/* A supervisor's figures per agent and per account (stats_api.c). */
int db_console_stats_routes(struct db_services *svc);

/* The console's live stream for session s of tenant (NULL: the operator's) (live.c): the
 * agent's inbox, the ticks of its conversations and hints that the queue changed. */
struct db_tenant;
void db_console_live_stream(struct db_services *svc, struct db_httpd_req *req,
                            const struct db_session *s, const struct db_tenant *tenant);
/* The agent opened conv: its live streams show its ticks from now on. */
void db_console_live_note(const char *agent, const char *conv);

/* Security headers of every console answer, NULL-terminated. */
extern const char *const db_console_headers[];

#endif
