/* content.c - what one message says: text, media, location, interactive replies and
 * buttons, reactions and edits, written into the event being built by parse.c. */
#include <stdio.h>
#include <string.h>

#include "walk.h"

static int put_media(struct walk *w, json_t *ev, const char *type, const json_t *m)
{
    const json_t *src;
    const char *id, *caption;
    int rc, voice = 0, animated = 0;
    if ((rc = get_obj(w, m, type, 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".%s", type);
    json_t *media = json_object();
    if (!media) {
        rc = nomem(w);
        goto fail;
    }
    if ((rc = get_id(w, src, "id", 1, &id)) != DB_OK || (rc = put_str(w, media, "id", id)) ||
        (rc = copy_str(w, media, "mime_type", src, "mime_type")) ||
        (rc = copy_str(w, media, "sha256", src, "sha256")) ||
        (rc = copy_str(w, media, "url", src, "url")) ||
        (rc = copy_str(w, media, "file_name", src, "filename")) ||
        (rc = get_str(w, src, "caption", 0, &caption)) || (rc = get_bool(w, src, "voice", &voice)) ||
        (rc = get_bool(w, src, "animated", &animated)))
        goto fail;
    if (animated && (rc = put_bool(w, media, "animated", 1)) != DB_OK) goto fail;
    leave(w, mark);
    if ((rc = put_new(w, ev, "media", media)) != DB_OK) return rc;
    if ((rc = put_str(w, ev, "text", caption)) != DB_OK) return rc;
    /* A voice note is audio recorded in the app; agents handle it differently from a
     * forwarded audio file, so it gets its own type. */
    return put_str(w, ev, "type", strcmp(type, "audio") == 0 && voice ? "voice" : type);
fail:
    leave(w, mark);
    json_decref(media);
    return rc;
}

static int put_location(struct walk *w, json_t *ev, const json_t *m)
{
    const json_t *src;
    int rc;
    if ((rc = get_obj(w, m, "location", 1, &src)) != DB_OK) return rc;
    const json_t *lat = json_object_get(src, "latitude"), *lon = json_object_get(src, "longitude");
    if (!json_is_number(lat)) return bad(w, "location.latitude", "must be a number");
    if (!json_is_number(lon)) return bad(w, "location.longitude", "must be a number");
    json_t *loc = json_pack("{s:f, s:f}", "latitude", json_number_value(lat), "longitude",
                            json_number_value(lon));
    if (!loc) return nomem(w);
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".location");
    if ((rc = copy_str(w, loc, "name", src, "name")) || (rc = copy_str(w, loc, "address", src, "address")) ||
        (rc = copy_str(w, loc, "url", src, "url"))) {
        leave(w, mark);
        json_decref(loc);
        return rc;
    }
    leave(w, mark);
    if ((rc = put_new(w, ev, "location", loc)) != DB_OK) return rc;
    return put_str(w, ev, "type", "location");
}

static int put_interactive(struct walk *w, json_t *ev, const json_t *m)
{
    const json_t *src, *reply = NULL;
    const char *itype, *id = NULL, *title = NULL, *desc = NULL;
    int rc;
    if ((rc = get_obj(w, m, "interactive", 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".interactive");
    if ((rc = get_str(w, src, "type", 1, &itype)) != DB_OK) goto done;
    /* Button and list replies carry what the user picked; other kinds (flow replies) are
     * passed on with their type only. */
    if (strcmp(itype, "button_reply") == 0 || strcmp(itype, "list_reply") == 0) {
        if ((rc = get_obj(w, src, itype, 1, &reply)) != DB_OK) goto done;
        snprintf(w->where + mark, sizeof w->where - mark, ".interactive.%s", itype);
        if ((rc = get_id(w, reply, "id", 1, &id)) || (rc = get_str(w, reply, "title", 0, &title)) ||
            (rc = get_str(w, reply, "description", 0, &desc)))
            goto done;
    }
    json_t *it = json_object();
    if (!it) {
        rc = nomem(w);
        goto done;
    }
    if ((rc = put_str(w, it, "type", itype)) || (rc = put_str(w, it, "id", id)) ||
        (rc = put_str(w, it, "title", title)) || (rc = put_str(w, it, "description", desc))) {
        json_decref(it);
        goto done;
    }
    if ((rc = put_new(w, ev, "interactive", it)) || (rc = put_str(w, ev, "text", title)) ||
        (rc = put_str(w, ev, "callback_data", id)))
        goto done;
    rc = put_str(w, ev, "type", "interactive");
done:
    leave(w, mark);
    return rc;
}

static int put_button(struct walk *w, json_t *ev, const json_t *m)
{
    const json_t *src;
    const char *payload, *text;
    int rc;
    if ((rc = get_obj(w, m, "button", 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".button");
    rc = get_str(w, src, "payload", 0, &payload);
    if (rc == DB_OK) rc = get_str(w, src, "text", 0, &text);
    leave(w, mark);
    if (rc != DB_OK) return rc;
    json_t *b = json_object();
    if (!b) return nomem(w);
    if ((rc = put_str(w, b, "payload", payload)) || (rc = put_str(w, b, "text", text))) {
        json_decref(b);
        return rc;
    }
    if ((rc = put_new(w, ev, "button", b)) || (rc = put_str(w, ev, "text", text))) return rc;
    return put_str(w, ev, "type", "button");
}

/* Fills type and the type's members of ev from the message object m (a message, or the new
 * version inside an edit). */
int db_wa_put_content(struct walk *w, json_t *ev, const json_t *m)
{
    const char *type;
    int rc;
    if ((rc = get_str(w, m, "type", 1, &type)) != DB_OK) return rc;
    if (strcmp(type, "text") == 0) {
        const json_t *t;
        const char *body;
        if ((rc = get_obj(w, m, "text", 1, &t)) != DB_OK) return rc;
        if (!json_is_string(json_object_get(t, "body")))
            return bad(w, "text.body", "missing or not a string");
        body = json_string_value(json_object_get(t, "body"));
        if ((rc = put_str(w, ev, "text", body)) != DB_OK) return rc;
        return put_str(w, ev, "type", "text");
    }
    static const char *const media[] = {"image", "video", "audio", "document", "sticker", NULL};
    for (int i = 0; media[i]; i++)
        if (strcmp(type, media[i]) == 0) return put_media(w, ev, type, m);
    if (strcmp(type, "location") == 0) return put_location(w, ev, m);
    if (strcmp(type, "contacts") == 0) {
        const json_t *c;
        if ((rc = get_arr(w, m, "contacts", 1, &c)) != DB_OK) return rc;
        if ((rc = put_new(w, ev, "contacts", json_deep_copy(c))) != DB_OK) return rc;
        return put_str(w, ev, "type", "contact");
    }
    if (strcmp(type, "interactive") == 0) return put_interactive(w, ev, m);
    if (strcmp(type, "button") == 0) return put_button(w, ev, m);
    /* unsupported, order, system, referral and types newer than this code: the agent still
     * sees that the customer wrote something. */
    return put_str(w, ev, "type", "unsupported");
}

int db_wa_put_reaction(struct walk *w, json_t *ev, const json_t *m)
{
    const json_t *src;
    const char *target, *emoji;
    int rc;
    if ((rc = get_obj(w, m, "reaction", 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".reaction");
    rc = get_id(w, src, "message_id", 1, &target);
    if (rc == DB_OK) rc = get_str(w, src, "emoji", 0, &emoji);
    leave(w, mark);
    if (rc != DB_OK) return rc;
    json_t *r = json_object();
    if (!r) return nomem(w);
    /* Meta reports a removed reaction as one without (or with an empty) emoji. */
    int removed = !emoji || !*emoji;
    if ((rc = put_str(w, r, "emoji", removed ? NULL : emoji)) ||
        (rc = put_str(w, r, "message_id", target)) || (rc = put_bool(w, r, "removed", removed))) {
        json_decref(r);
        return rc;
    }
    if ((rc = put_new(w, ev, "reaction", r)) != DB_OK) return rc;
    return put_str(w, ev, "type", "reaction");
}

int db_wa_put_edit(struct walk *w, json_t *ev, const json_t *m, int revoke)
{
    const char *key = revoke ? "revoke" : "edit";
    const json_t *src, *inner = NULL;
    const char *orig;
    int rc;
    if ((rc = get_obj(w, m, key, 1, &src)) != DB_OK) return rc;
    size_t mark = strlen(w->where);
    snprintf(w->where + mark, sizeof w->where - mark, ".%s", key);
    if ((rc = get_id(w, src, "original_message_id", 1, &orig)) != DB_OK) goto done;
    if ((rc = put_str(w, ev, "edit_of", orig)) != DB_OK) goto done;
    if (revoke) {
        rc = put_bool(w, ev, "revoked", 1);
        goto done;
    }
    if ((rc = get_obj(w, src, "message", 1, &inner)) != DB_OK) goto done;
    snprintf(w->where + mark, sizeof w->where - mark, ".edit.message");
    rc = db_wa_put_content(w, ev, inner);
done:
    leave(w, mark);
    return rc;
}
