/* parse.c - one webhook body (entry[].changes[]) into events: customer messages and
 * delivery statuses, all or none. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/join.h"
#include "util/json.h"
#include "walk.h"

/* contacts[].profile.name of the contact whose wa_id (or business-scoped user_id) names the
 * sender.  Matched by id because Meta does not promise contacts[] follows messages[]
 * order.  Borrowed; NULL when there is none. */
static const char *contact_name(const json_t *contacts, const char *wa_id, const char *user_id)
{
    size_t i;
    const json_t *c;
    json_array_foreach(contacts, i, c) {
        const char *cw = db_json_str(c, "wa_id"), *cu = db_json_str(c, "user_id");
        if ((wa_id && cw && strcmp(cw, wa_id) == 0) ||
            (!wa_id && user_id && cu && strcmp(cu, user_id) == 0))
            return db_json_str(json_object_get(c, "profile"), "name");
    }
    return NULL;
}

static char *dedupe_key(const char *prefix, const char *id, const char *suffix)
{
    return DB_JOINED(prefix, id, suffix ? ":" : "", suffix ? suffix : "");
}

static int parse_message(struct walk *w, const json_t *m, const json_t *contacts,
                         struct db_event_list *list)
{
    const char *id, *from, *from_uid, *type;
    const json_t *ctx;
    json_t *ev = NULL;
    int64_t ts;
    int rc, fwd = 0, ffwd = 0;
    if (!json_is_object(m)) return bad(w, "", "must be an object");
    if ((rc = get_id(w, m, "id", 1, &id)) || (rc = get_id(w, m, "from", 0, &from)) ||
        (rc = get_id(w, m, "from_user_id", 0, &from_uid)) ||
        (rc = get_str(w, m, "type", 1, &type)) || (rc = get_obj(w, m, "context", 0, &ctx)))
        return rc;
    /* Business-scoped user ids ("from_user_id") may come without a phone number; the id the
     * customer can be answered on is then the only one there is. */
    const char *chat = from && *from ? from : from_uid;
    if (!chat || !*chat) return bad(w, "from", "missing (and no from_user_id)");
    if (db_json_time(json_object_get(m, "timestamp"), &ts) != DB_OK)
        return bad(w, "timestamp", "missing or not a Unix time");

    int is_reaction = strcmp(type, "reaction") == 0;
    int is_edit = strcmp(type, "edit") == 0, is_revoke = strcmp(type, "revoke") == 0;
    /* A tap on a reply button or a list row answers a message of ours: the contract's
     * callback, as Telegram's button taps are (context.id names the message). */
    const char *itype = db_json_str(json_object_get(m, "interactive"), "type");
    int is_tap = strcmp(type, "interactive") == 0 && itype &&
                 (strcmp(itype, "button_reply") == 0 || strcmp(itype, "list_reply") == 0);
    ev = db_event_new(is_reaction ? "reaction" : is_edit || is_revoke ? "edit"
                                               : is_tap                ? "callback"
                                                                       : "message",
                      WA_PLATFORM, w->a->account);
    if (!ev) return nomem(w);
    if (db_event_set_chat(ev, chat) != DB_OK) {
        rc = nomem(w);
        goto fail;
    }
    if ((rc = put_str(w, ev, "external_user_id", chat)) ||
        (rc = put_str(w, ev, "external_message_id", id)) ||
        (rc = db_event_set_int(ev, "timestamp", ts) == DB_OK ? DB_OK : nomem(w)))
        goto fail;
    const char *name = contact_name(contacts, from && *from ? from : NULL, from_uid);
    if (name) {
        json_t *sender = json_object();
        if (!sender) {
            rc = nomem(w);
            goto fail;
        }
        if ((rc = put_str(w, sender, "name", name)) != DB_OK) {
            json_decref(sender);
            goto fail;
        }
        if ((rc = put_new(w, ev, "sender", sender)) != DB_OK) goto fail;
    }
    if (ctx) {
        size_t mark = strlen(w->where);
        snprintf(w->where + mark, sizeof w->where - mark, ".context");
        const char *reply_to;
        rc = get_id(w, ctx, "id", 0, &reply_to);
        if (rc == DB_OK) rc = get_bool(w, ctx, "forwarded", &fwd);
        if (rc == DB_OK) rc = get_bool(w, ctx, "frequently_forwarded", &ffwd);
        leave(w, mark);
        if (rc != DB_OK) goto fail;
        if ((rc = put_str(w, ev, "reply_to", reply_to)) != DB_OK) goto fail;
        if (fwd && (rc = put_bool(w, ev, "forwarded", 1)) != DB_OK) goto fail;
        if (ffwd && (rc = put_bool(w, ev, "frequently_forwarded", 1)) != DB_OK) goto fail;
    }
    if (is_reaction)
        rc = db_wa_put_reaction(w, ev, m);
    else if (is_edit || is_revoke)
        rc = db_wa_put_edit(w, ev, m, is_revoke);
    else
        rc = db_wa_put_content(w, ev, m);
    if (rc != DB_OK) goto fail;

    char *key = dedupe_key("m:", id, NULL);
    if (!key) {
        rc = nomem(w);
        goto fail;
    }
    rc = db_event_list_push(list, ev, key);
    return rc == DB_OK ? DB_OK : nomem(w);
fail:
    json_decref(ev);
    return rc;
}

/* The contract's receipt status for Meta's, or NULL for statuses the gateway ignores
 * ("deleted", and any added after this code). */
static const char *receipt_status(const char *s)
{
    if (strcmp(s, "sent") == 0 || strcmp(s, "delivered") == 0 || strcmp(s, "read") == 0 ||
        strcmp(s, "failed") == 0)
        return s;
    /* A voice note that was played has necessarily been read. */
    if (strcmp(s, "played") == 0) return "read";
    return NULL;
}

static int put_status_error(struct walk *w, json_t *ev, const json_t *st)
{
    const json_t *errors, *first;
    int rc;
    if ((rc = get_arr(w, st, "errors", 0, &errors)) != DB_OK) return rc;
    first = json_array_get(errors, 0);
    if (!first) return DB_OK;
    if (!json_is_object(first)) return bad(w, "errors[0]", "must be an object");
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".errors[0]");
    char code[32] = "";
    const json_t *jc = json_object_get(first, "code");
    const char *title, *msg;
    if (jc && db_json_id(jc, 0, code, sizeof code) != DB_OK) {
        rc = bad(w, "code", "must be an integer or a string");
        goto done;
    }
    if ((rc = get_str(w, first, "title", 0, &title)) || (rc = get_str(w, first, "message", 0, &msg)))
        goto done;
    if (!msg) msg = db_json_str(json_object_get(first, "error_data"), "details");
    json_t *err = json_object();
    if (!err) {
        rc = nomem(w);
        goto done;
    }
    if ((rc = put_str(w, err, "code", *code ? code : NULL)) || (rc = put_str(w, err, "title", title)) ||
        (rc = put_str(w, err, "message", msg))) {
        json_decref(err);
        goto done;
    }
    rc = put_new(w, ev, "error", err);
done:
    leave(w, mark);
    return rc;
}

static int parse_status(struct walk *w, const json_t *st, struct db_event_list *list)
{
    const char *id, *status, *recipient;
    json_t *ev = NULL;
    int64_t ts;
    int rc;
    if (!json_is_object(st)) return bad(w, "", "must be an object");
    if ((rc = get_id(w, st, "id", 1, &id)) || (rc = get_str(w, st, "status", 1, &status)) ||
        (rc = get_id(w, st, "recipient_id", 1, &recipient)))
        return rc;
    if (db_json_time(json_object_get(st, "timestamp"), &ts) != DB_OK)
        return bad(w, "timestamp", "missing or not a Unix time");
    const char *mapped = receipt_status(status);
    if (!mapped) return DB_OK;

    ev = db_event_new("receipt", WA_PLATFORM, w->a->account);
    if (!ev) return nomem(w);
    if (db_event_set_chat(ev, recipient) != DB_OK) {
        rc = nomem(w);
        goto fail;
    }
    if ((rc = put_str(w, ev, "external_message_id", id)) || (rc = put_str(w, ev, "status", mapped)) ||
        (rc = put_str(w, ev, "recipient_id", recipient)) ||
        (rc = db_event_set_int(ev, "timestamp", ts) == DB_OK ? DB_OK : nomem(w)))
        goto fail;
    if (strcmp(mapped, "failed") == 0 && (rc = put_status_error(w, ev, st)) != DB_OK) goto fail;
    char *key = dedupe_key("s:", id, mapped);
    if (!key) {
        rc = nomem(w);
        goto fail;
    }
    rc = db_event_list_push(list, ev, key);
    return rc == DB_OK ? DB_OK : nomem(w);
fail:
    json_decref(ev);
    return rc;
}

/* One entry[].changes[] element. */
static int parse_change(struct walk *w, const json_t *ch, struct db_event_list *list)
{
    const char *field, *pnid_s;
    const json_t *value, *meta, *contacts, *messages, *statuses, *item;
    char pnid[40];
    size_t i;
    int rc;
    if (!json_is_object(ch)) return bad(w, "", "must be an object");
    if ((rc = get_str(w, ch, "field", 1, &field)) != DB_OK) return rc;
    /* The same app may subscribe to template, account and call updates: valid, unused. */
    if (strcmp(field, "messages") != 0) return DB_OK;
    if ((rc = get_obj(w, ch, "value", 1, &value)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".value");
    if ((rc = get_obj(w, value, "metadata", 1, &meta)) != DB_OK) goto done;
    if (db_json_id(json_object_get(meta, "phone_number_id"), 1, pnid, sizeof pnid) != DB_OK) {
        rc = bad(w, "metadata.phone_number_id", "missing or not a number id");
        goto done;
    }
    pnid_s = pnid;
    /* One app may serve several numbers and Meta sends every number's changes to the
     * callback URL; only this account's number is ours to store. */
    if (strcmp(pnid_s, w->a->phone_number_id) != 0) goto done;
    if ((rc = get_arr(w, value, "contacts", 0, &contacts)) ||
        (rc = get_arr(w, value, "messages", 0, &messages)) ||
        (rc = get_arr(w, value, "statuses", 0, &statuses)))
        goto done;
    json_array_foreach(messages, i, item) {
        size_t m2 = enter(w, "messages", i);
        rc = parse_message(w, item, contacts, list);
        leave(w, m2);
        if (rc != DB_OK) goto done;
    }
    json_array_foreach(statuses, i, item) {
        size_t m2 = enter(w, "statuses", i);
        rc = parse_status(w, item, list);
        leave(w, m2);
        if (rc != DB_OK) goto done;
    }
done:
    leave(w, mark);
    return rc;
}

/* Moves every event of from to the end of to without a partial state: the space is made
 * first, so either all move or none. */
static int move_events(struct db_event_list *from, struct db_event_list *to, struct db_err *e)
{
    if (from->n == 0) return DB_OK;
    if (to->cap - to->n < from->n) {
        size_t cap = to->n + from->n;
        struct db_event *v = realloc(to->v, cap * sizeof *v);
        if (!v) return db_err_set(e, DB_ENOMEM, "out of memory");
        to->v = v;
        to->cap = cap;
    }
    memcpy(to->v + to->n, from->v, from->n * sizeof *from->v);
    to->n += from->n;
    from->n = 0;
    return DB_OK;
}

/* jansson's parse errors quote the body near the fault ("near '<text>'"), which may be
 * customer message text; the error ends up in logs, so only reason and position stay. */
static void drop_quoted_body(struct db_err *e)
{
    if (!e) return;
    char *near = strstr(e->msg, " near ");
    char *at = near ? strrchr(near, ' ') : NULL;
    if (!near || !at || at == near || at - near < 4 || strncmp(at - 3, " at", 3) != 0) return;
    memmove(near, at - 3, strlen(at - 3) + 1);
}

int db_wa_parse(const void *acct, const struct db_inbound *in, struct db_event_list *out,
                struct db_err *e)
{
    struct walk w = {.a = acct, .e = e};
    struct db_event_list local = {0};
    json_t *root = NULL;
    const json_t *entries, *entry, *changes, *change;
    const char *object;
    size_t i, j;
    int rc;
    if ((rc = db_json_parse_object(in->body, in->body_len, &root, e)) != DB_OK) {
        drop_quoted_body(e);
        return rc;
    }
    if ((rc = get_str(&w, root, "object", 1, &object)) != DB_OK) goto fail;
    if (strcmp(object, "whatsapp_business_account") != 0) {
        rc = bad(&w, "object", "is not whatsapp_business_account");
        goto fail;
    }
    if ((rc = get_arr(&w, root, "entry", 1, &entries)) != DB_OK) goto fail;
    json_array_foreach(entries, i, entry) {
        size_t m1 = enter(&w, "entry", i);
        if (!json_is_object(entry)) {
            rc = bad(&w, "", "must be an object");
            goto fail;
        }
        if ((rc = get_arr(&w, entry, "changes", 1, &changes)) != DB_OK) goto fail;
        json_array_foreach(changes, j, change) {
            size_t m2 = enter(&w, "changes", j);
            rc = parse_change(&w, change, &local);
            leave(&w, m2);
            if (rc != DB_OK) goto fail;
        }
        leave(&w, m1);
    }
    if ((rc = move_events(&local, out, e)) != DB_OK) goto fail;
fail:
    db_event_list_clear(&local);
    json_decref(root);
    return rc;
}
