/* hookout_conf.c - the [helpdesk_webhook NAME] section: its key table and the checks
 * across its keys; the endpoint reads the struct built when the configuration was loaded.
 * docs/helpdesk-webhooks.md. */
#include "hookout/hookout.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/config.h"
#include "util/schema.h"

#define MIN_SECRET 16

const char *const db_hookout_kinds[] = {"message", "edit",       "callback", "reaction",
                                        "receipt", "membership", "status",   NULL};

static int parse_kinds(const struct db_conf_section *sec, struct db_hookout_conf *o,
                       struct db_err *e)
{
    const struct db_conf_kv *kv = db_conf_find(sec, "events");
    o->all_kinds = !kv;
    o->kinds = 0;
    if (!kv) return DB_OK;
    const char *p = kv->value;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, ",");
        size_t len = n;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        size_t i = 0;
        for (; db_hookout_kinds[i]; i++)
            if (strlen(db_hookout_kinds[i]) == len && strncmp(db_hookout_kinds[i], p, len) == 0)
                break;
        if (!db_hookout_kinds[i])
            return db_conf_error(e, sec, kv, "events",
                                 "'%.*s' is not one of message, edit, callback, reaction, "
                                 "receipt, membership, status",
                                 (int)(len > 32 ? 32 : len), p);
        o->kinds |= 1u << i;
        p += n;
        if (*p == ',') p++;
    }
    if (!o->kinds) return db_conf_error(e, sec, kv, "events", "names no kind");
    return DB_OK;
}

static int hookout_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct db_hookout_conf *o = obj;
    int rc = parse_kinds(sec, o, e);
    if (rc != DB_OK) return rc;
    if (o->retry_base_ms > o->retry_max_ms)
        return db_conf_error(e, sec, db_conf_find(sec, "retry_base_ms"), "retry_base_ms",
                             "is larger than retry_max_ms (%d)", o->retry_max_ms);
    /* The guarded client speaks https only to public hosts; plain http is for a helpdesk
     * on the private network, which allow_private opens. */
    if (strncasecmp(o->url, "http://", 7) == 0 && !o->allow_private)
        return db_conf_error(e, sec, db_conf_find(sec, "url"), "url",
                             "http:// needs allow_private = true (otherwise only https is "
                             "allowed)");
    if (strlen(o->secret) < MIN_SECRET)
        return db_conf_error(e, sec, db_conf_find(sec, "secret"), "secret",
                             "must be at least %d characters", MIN_SECRET);
    return DB_OK;
}

#define HOFF(f) offsetof(struct db_hookout_conf, f)
static const struct db_conf_key hookout_keys[] = {
    {.name = "url", .type = DB_CONF_URL, .flags = DB_CONF_REQUIRED, .off = HOFF(url),
     .doc = "where events are POSTed: https://, or http:// with allow_private"},
    {.name = "secret", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED | DB_CONF_SECRET,
     .off = HOFF(secret), .doc = "the HMAC key of the signature, at least 16 characters"},
    {.name = "events", .type = DB_CONF_STR, .flags = DB_CONF_EMPTY, .off = HOFF(events),
     .doc = "the kinds delivered (default: all): message, edit, callback, reaction, receipt, membership, status"},
    {.name = "max_attempts", .type = DB_CONF_INT, .min = 1, .max = 1000, .def = "10",
     .off = HOFF(max_attempts), .doc = "deliveries of an event before it is dead-lettered"},
    {.name = "retry_base_ms", .type = DB_CONF_INT, .min = 1, .max = 3600000, .def = "1000",
     .off = HOFF(retry_base_ms), .doc = "first retry delay; doubles per attempt"},
    {.name = "retry_max_ms", .type = DB_CONF_INT, .min = 1, .max = 86400000, .def = "60000",
     .off = HOFF(retry_max_ms), .doc = "cap of the retry delay"},
    {.name = "timeout_ms", .type = DB_CONF_INT, .min = 100, .max = 600000, .def = "10000",
     .off = HOFF(timeout_ms), .doc = "timeout of one delivery"},
    {.name = "allow_private", .type = DB_CONF_BOOL, .def = "false", .off = HOFF(allow_private),
     .doc = "`true`: the URL may resolve to loopback, private or link-local addresses"},
    {.name = "claim_idle_ms", .type = DB_CONF_INT, .min = 100, .max = 86400000,
     .def = "30000", .off = HOFF(claim_idle_ms),
     .doc = "events held this long by a dead process are taken over"},
    {.name = "concurrency", .type = DB_CONF_INT, .min = 1, .max = 256, .def = "16",
     .off = HOFF(concurrency), .doc = "deliveries in flight at once"},
};

const struct db_conf_table db_hookout_conf_table = {
    .section = "helpdesk_webhook", .named = 1, .size = sizeof(struct db_hookout_conf),
    .keys = hookout_keys, .n_keys = sizeof hookout_keys / sizeof hookout_keys[0],
    .finish = hookout_finish};

int db_hookout_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    void *obj = NULL;
    int rc = db_conf_obj_new(&db_hookout_conf_table, sec, &obj, e);
    db_conf_obj_free(&db_hookout_conf_table, obj);
    return rc;
}
