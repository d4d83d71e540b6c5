#include "send/canned.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auto/hours.h"
#include "conf/config.h"
#include "http/respond.h"
#include "net/httpd.h"
#include "send/outbound.h"
#include "util/json.h"
#include "util/text.h"

static const char *sec_get(const struct db_conf_section *sec, const char *key)
{
    const struct db_conf_kv *kv = db_conf_find(sec, key);
    return kv ? kv->value : NULL;
}

/* The test hook DESKBRIDGE_CLOCK_OFFSET_S moves "now" for {next_open}, as it does for the
 * automatic answers. */
static long clock_offset(void)
{
    const char *v = getenv("DESKBRIDGE_CLOCK_OFFSET_S");
    return v ? strtol(v, NULL, 10) : 0;
}

int db_canned_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    static const char *const keys[] = {"text", "tenant", NULL};
    int rc = db_conf_check_keys(sec, keys, e);
    if (rc != DB_OK) return rc;
    const struct db_conf_kv *t = db_conf_find(sec, "text");
    if (!t || !*t->value) return db_conf_error(e, sec, t, "text", "is required");
    return DB_OK;
}

void db_canned_list_or_respond(const struct db_config *cfg, struct db_httpd_req *req)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < cfg->n_sections; i++) {
        const struct db_conf_section *s = &cfg->sections[i];
        if (strcmp(s->platform, "canned") != 0) continue;
        json_t *item = json_pack("{s:s, s:s}", "name", s->account, "text", sec_get(s, "text"));
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
    const struct db_conf_section *sec = db_config_section(cfg, "canned", json_string_value(c));
    if (!sec) return db_err_set(e, DB_EINVAL, "canned: no canned response of that name");
    const char *tmpl = sec_get(sec, "text");

    /* {next_open} from the schedule of the conversation's account; left as written when
     * there is none or it is open. */
    char next[64] = "", platform[32], account[96];
    const char *chat, *conv = db_json_str(cmd, "conversation");
    struct db_schedule *s = NULL;
    if (conv && db_conversation_split(conv, platform, sizeof platform, account, sizeof account,
                                      &chat) == DB_OK) {
        const struct db_conf_section *ss = db_schedule_section_of(cfg, platform, account);
        struct db_err ignore = {0};
        time_t now = time(NULL) + clock_offset(), at;
        if (ss && db_schedule_parse(ss, &s, &ignore) == DB_OK &&
            db_schedule_next_open(s, now, &at) == DB_OK && at > now)
            db_schedule_format(s, at, now, NULL, next, sizeof next);
    }
    db_schedule_free(s);
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
