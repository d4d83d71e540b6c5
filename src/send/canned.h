/* canned.h - the agents' canned responses: [canned NAME] sections with a text that may hold
 * the placeholders {customer_name}, {agent_name} and {next_open}. */
#ifndef DB_CANNED_H
#define DB_CANNED_H

#include <jansson.h>

#include "deskbridge/status.h"

struct db_config;
struct db_conf_section;
struct db_httpd_req;

/* A [canned NAME] response as loaded (its key table is in features.c).  Owned by the
 * configuration. */
struct db_canned {
    const char *name, *text;
    const char *tenant; /* NULL: the operator's agents' (the agent console) */
};
struct db_conf_table;
extern const struct db_conf_table db_canned_conf_table;
/* Builds the section alone and drops it: DB_OK or DB_ECONFIG naming file, line and key. */
int db_canned_conf_check(const struct db_conf_section *sec, struct db_err *e);

/* When cmd (a POST /v1/messages body) names "canned", replaces it with the expanded "text".
 * DB_OK (also when cmd has no "canned"), or DB_EINVAL naming the field in e (unknown name,
 * missing value, text given as well). */
int db_canned_expand(const struct db_config *cfg, json_t *cmd, struct db_err *e) DB_MUST_CHECK;

/* Answers GET /v1/canned with every canned response of cfg. */
void db_canned_list_or_respond(const struct db_config *cfg, struct db_httpd_req *req);

#endif
