#include "deskbridge/event.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/join.h"
#include "util/text.h"

void db_event_list_clear(struct db_event_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        json_decref(l->v[i].json);
        free(l->v[i].dedupe_key);
    }
    free(l->v);
    free(l->reply_body);
    memset(l, 0, sizeof *l);
}

int db_event_list_push(struct db_event_list *l, json_t *json, char *dedupe_key)
{
    if (!json || !dedupe_key) goto fail;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct db_event *v = realloc(l->v, cap * sizeof *v);
        if (!v) goto fail;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].json = json;
    l->v[l->n].dedupe_key = dedupe_key;
    l->n++;
    return DB_OK;
fail:
    json_decref(json);
    free(dedupe_key);
    return DB_ENOMEM;
}

json_t *db_event_new(const char *kind, const char *platform, const char *account)
{
    json_t *ev = json_pack("{s:i, s:s, s:s, s:s}", "v", DB_STREAM_CONTRACT_VERSION, "kind", kind,
                           "platform", platform, "account", account);
    return ev;
}

int db_event_set_str(json_t *obj, const char *key, const char *s)
{
    if (!s) return DB_OK;
    size_t n = strlen(s);
    if (!db_utf8_valid(s, n)) return DB_EINVAL;
    json_t *v = json_stringn_nocheck(s, n); /* checked just above; jansson would walk it again */
    if (!v || json_object_set_new(obj, key, v) != 0) return DB_ENOMEM;
    return DB_OK;
}

int db_event_set_int(json_t *obj, const char *key, int64_t v)
{
    json_t *j = json_integer((json_int_t)v);
    if (!j || json_object_set_new(obj, key, j) != 0) return DB_ENOMEM;
    return DB_OK;
}

int db_event_set_chat(json_t *ev, const char *chat)
{
    const char *platform = json_string_value(json_object_get(ev, "platform"));
    const char *account = json_string_value(json_object_get(ev, "account"));
    if (!platform || !account || !chat) return DB_EINVAL;
    char *conv = DB_JOINED(platform, ":", account, ":", chat);
    if (!conv) return DB_ENOMEM;
    int rc = db_event_set_str(ev, "external_chat_id", chat);
    if (rc == DB_OK) rc = db_event_set_str(ev, "conversation", conv);
    free(conv);
    return rc;
}

static const char *const id_members[] = {"external_chat_id",
                                         "external_user_id",
                                         "external_message_id",
                                         "conversation",
                                         "account",
                                         NULL};

static int require_str(const json_t *ev, const char *key, struct db_err *e)
{
    const json_t *v = json_object_get(ev, key);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return db_err_set(e, DB_EINVAL, "event member '%s' missing or not a string", key);
    return DB_OK;
}

int db_event_validate(const json_t *ev, struct db_err *e)
{
    if (!json_is_object(ev)) return db_err_set(e, DB_EINVAL, "event is not an object");
    if (json_integer_value(json_object_get(ev, "v")) != DB_STREAM_CONTRACT_VERSION)
        return db_err_set(e, DB_EINVAL, "event member 'v' must be %d",
                          DB_STREAM_CONTRACT_VERSION);
    static const char *const required[] = {"kind", "platform", "account", "conversation",
                                           "external_chat_id", NULL};
    for (int i = 0; required[i]; i++)
        if (require_str(ev, required[i], e) != DB_OK) return DB_EINVAL;
    /* The store adds both when it writes the event (the id is the gateway's own). */
    if (json_object_get(ev, "id") || json_object_get(ev, "received_at"))
        return db_err_set(e, DB_EINVAL, "event members 'id' and 'received_at' are the store's");
    for (int i = 0; id_members[i]; i++) {
        const json_t *v = json_object_get(ev, id_members[i]);
        if (v && !json_is_string(v))
            return db_err_set(e, DB_EINVAL, "event member '%s' must be a string",
                              id_members[i]);
    }
    const char *kind = json_string_value(json_object_get(ev, "kind"));
    static const char *const kinds[] = {"message", "edit",    "callback", "reaction",
                                        "receipt", "membership", NULL};
    int known = 0;
    for (int i = 0; kinds[i]; i++) known |= strcmp(kind, kinds[i]) == 0;
    if (!known) return db_err_set(e, DB_EINVAL, "event kind '%s' is not in contract v1", kind);
    if (strcmp(kind, "message") == 0 && require_str(ev, "type", e) != DB_OK) return DB_EINVAL;
    if (strcmp(kind, "receipt") == 0) {
        if (require_str(ev, "status", e) != DB_OK) return DB_EINVAL;
        if (require_str(ev, "external_message_id", e) != DB_OK) return DB_EINVAL;
    }
    const json_t *ts = json_object_get(ev, "timestamp");
    if (ts && !json_is_integer(ts))
        return db_err_set(e, DB_EINVAL, "event member 'timestamp' must be an integer");
    return DB_OK;
}

int db_json_id(const json_t *v, int digits_only, char *buf, size_t bufsz)
{
    if (json_is_integer(v)) {
        int n = snprintf(buf, bufsz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return n > 0 && (size_t)n < bufsz ? DB_OK : DB_EINVAL;
    }
    if (!json_is_string(v)) return DB_EINVAL;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len >= bufsz || strlen(s) != len) return DB_EINVAL;
    if (digits_only) {
        for (size_t i = 0; i < len; i++)
            if ((s[i] < '0' || s[i] > '9') && !(i == 0 && s[i] == '-' && len > 1))
                return DB_EINVAL;
    }
    memcpy(buf, s, len + 1);
    return DB_OK;
}

int db_json_time(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out >= 0 ? DB_OK : DB_EINVAL;
    }
    if (!json_is_string(v)) return DB_EINVAL;
    const char *s = json_string_value(v);
    if (!*s || strlen(s) > 18) return DB_EINVAL;
    int64_t t = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return DB_EINVAL;
        t = t * 10 + (*s - '0');
    }
    *out = t;
    return DB_OK;
}
