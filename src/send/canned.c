/* canned.c - the agents' canned responses: the [canned NAME] key table, GET /v1/canned and
 * the expansion of "canned" in a message (see canned.h). */
#include "send/canned.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hours/hours.h"
#include "conf/config.h"
#include "util/schema.h"
#include "http/respond.h"
#include "net/httpd.h"
#include "send/outbound.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/text.h"

/* The test hook DESKBRIDGE_CLOCK_OFFSET_S moves "now" for {next_open}, as it does for the
 * automatic answers. */
static long clock_offset(void)
{
    long v = 0;
    return db_parse_long(getenv("DESKBRIDGE_CLOCK_OFFSET_S"), -1000000000L, 1000000000L, &v)
               ? 0 : v;
}

static int canned_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    (void)e;
    ((struct db_canned *)obj)->name = sec->account;
    return DB_OK;
}

static const struct db_conf_key canned_keys[] = {
    {.name = "text", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED,
     .off = offsetof(struct db_canned, text),
     .doc = "the response (placeholders `{customer_name}`, `{agent_name}`, `{next_open}`)"},
    {.name = "tenant", .type = DB_CONF_STR, .off = offsetof(struct db_canned, tenant),
     .doc = "the console offers it to this tenant's agents only (else to the operator's agents)"},
};

const struct db_conf_table db_canned_conf_table = {
    .section = "canned", .named = 1, .size = sizeof(struct db_canned), .keys = canned_keys,
    .n_keys = sizeof canned_keys / sizeof canned_keys[0], .finish = canned_finish};

int db_canned_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    void *obj = NULL;
    int rc = db_conf_obj_new(&db_canned_conf_table, sec, &obj, e);
    db_conf_obj_free(&db_canned_conf_table, obj);
    return rc;
}

void db_canned_list_or_respond(const struct db_config *cfg, struct db_httpd_req *req)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].platform, "canned") != 0) continue;
        const struct db_canned *cn = cfg->features[i].obj;
        json_t *item = json_pack("{s:s, s:s}", "name", cn->name, "text", cn->text);
        if (!item || json_array_append_new(list, item) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    json_t *obj = list ? json_pack("{s:o}", "canned", list) : NULL;
    db_respond_json(req, 200, obj);
    json_decref(obj);
}

int db_canned_expand(const struct db_config *cfg, json_t *cmd, struct db_err *e)
{
    const json_t *c = json_object_get(cmd, "canned");
    if (!c || json_is_null(c)) return DB_OK;
    if (!json_is_string(c) || json_string_length(c) == 0)
        return db_err_set(e, DB_EINVAL, "canned: must be a non-empty string");
    if (json_object_get(cmd, "text"))
        return db_err_set(e, DB_EINVAL, "canned: give either canned or text, not both");
    const struct db_canned *cn = db_config_obj(cfg, "canned", json_string_value(c));
    if (!cn) return db_err_set(e, DB_EINVAL, "canned: no canned response of that name");
    const char *tmpl = cn->text;

    /* {next_open} from the schedule of the conversation's account; left as written when
     * there is none or it is open. */
    char next[64] = "", platform[32], account[96];
    const char *chat, *conv = db_json_str(cmd, "conversation");
    if (conv && db_conversation_split(conv, platform, sizeof platform, account, sizeof account,
                                      &chat) == DB_OK) {
        const struct db_schedule_conf *ss = db_schedule_conf_of(cfg, platform, account);
        time_t now = time(NULL) + clock_offset(), at;
        if (ss && db_schedule_next_open(ss->sched, now, &at) == DB_OK && at > now)
            db_schedule_format(ss->sched, at, now, NULL, next, sizeof next);
    }
    const char *vars[] = {"customer_name", db_json_str(cmd, "customer_name"),
                          "agent_name",    db_json_str(cmd, "agent_name"),
                          "next_open",     next[0] ? next : NULL,
                          NULL};
    char *text = db_text_expand(tmpl, vars);
    if (!text) return db_err_set(e, DB_ENOMEM, "out of memory");
    int rc = json_object_set_new(cmd, "text", json_string(text));
    free(text);
    if (rc != 0) return db_err_set(e, DB_ENOMEM, "out of memory");
    json_object_del(cmd, "canned");
    return DB_OK;
}
