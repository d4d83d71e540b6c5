/* redis_internal.h - what the files of src/redis/ share, and nothing else includes: the parsed
 * form of a Redis URL (redis_url.c), the script object (redis_script.c) and RESP formatting
 * (resp.c), used by the connection (redis.c) and the blocking helper (redis_sync.c). */
#ifndef DB_REDIS_INTERNAL_H
#define DB_REDIS_INTERNAL_H

#include <stddef.h>
#include <sys/un.h>

#include "deskbridge/status.h"

#define DB_REDIS_MAX_SENTINELS 8

enum db_redis_url_kind { URL_TCP, URL_UNIX, URL_SENTINEL };

struct db_redis_hostport {
    char host[256];
    int port;
};

struct db_redis_url {
    enum db_redis_url_kind kind;
    struct db_redis_hostport addr;                          /* URL_TCP */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* URL_UNIX */
    struct db_redis_hostport sent[DB_REDIS_MAX_SENTINELS];  /* URL_SENTINEL */
    int nsent;
    char master[128];
    char user[128];
    char pass[256];
    int has_pass;
    int db;
};

/* Parses url (the forms of redis.h) into *u.  DB_OK, or DB_ECONFIG with the reason in e (never
 * quoting the password). */
int db_redis_url_parse(const char *url, struct db_redis_url *u, struct db_err *e);
/* Wipes the password held in u. */
void db_redis_url_clear(struct db_redis_url *u);
/* The decimal number s[0..n) when it is within [lo, hi], else -1. */
long db_redis_parse_num(const char *s, size_t n, long lo, long hi);

struct db_redis_script {
    char *body;
    size_t len;
    char sha[41];
    int refs; /* the owner's plus one per command in flight */
};
/* db_redis_script_free (redis.h) drops one reference: the owner's, or a command's when it is
 * released (redis.c takes one per command in flight). */

/* RESP for argv, malloc'd (caller frees), *len set; NULL on ENOMEM.  argvlen NULL means
 * NUL-terminated arguments. */
char *db_resp_format_argv(int argc, const char **argv, const size_t *argvlen, size_t *len);

#endif
