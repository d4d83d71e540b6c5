/* fake_chatwoot.c - see fake_chatwoot.h.
 *
 * Built from Chatwoot's own source (repository chatwoot/chatwoot; the contract as of 4.16.2,
 * upstream commit 59442e5762b8, cross-checked against the stored versions below):
 *   config/routes.rb                                   the routes under /api/v1/accounts/:id
 *   app/controllers/api/v1/accounts/contacts_controller.rb   create, search (15 a page,
 *                                                       substring match on identifier)
 *   app/controllers/api/v1/accounts/conversations_controller.rb (53cea32c)  create: with
 *       contact_id + inbox_id a contact-inbox is built (ContactInboxBuilder, new source_id
 *       when none is given), otherwise found by source_id; the answer's id is display_id
 *   app/controllers/api/v1/accounts/conversations/messages_controller.rb (021d33fc)  create
 *       (MessageBuilder), update = PATCH status for API inboxes only (403 otherwise)
 *   app/builders/messages/message_builder.rb (9bd078a7)  message_type default outgoing,
 *       attachments[] uploads, echo_id only echoed (no idempotency)
 *   app/services/messages/status_update_service.rb (01b36894)  unknown status: not applied;
 *       read -> delivered refused; external_error kept only with failed
 *   app/models/contact.rb (7c2f4ec3)  identifier and phone_number unique per account, the
 *       phone in E.164 (+[1-9]\d{1,14})
 *   app/models/message.rb (9efbdc4f)  enum message_type incoming 0 / outgoing 1 / activity 2 /
 *       template 3 (an integer in API answers, a string in webhook_data), status sent 0,
 *       delivered 1, read 2, failed 3; webhook_data members
 *   app/listeners/webhook_listener.rb (199f6d0f)  message_created to the API inbox's webhook
 *       URL for every message, the API's own incoming ones and private notes included
 *   lib/webhooks/trigger.rb  POST JSON, 5 s timeout, no retry; signed since 4.13 with
 *       X-Chatwoot-Timestamp and X-Chatwoot-Signature: sha256=HMAC(secret, "<ts>.<body>")
 *       (older stored versions, e.g. 05a4bd24, send it unsigned)
 * The answers carry the members the bridge and a careful client read, not every member
 * Chatwoot's jbuilder views render. */
#include "fake_chatwoot.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "daemon.h"
#include "fake_chatwoot_form.h"

struct contact {
    long id;
    char name[128], identifier[192], phone[40];
};
struct cinbox {
    long contact;
    char source_id[192];
};
struct conv {
    long display_id, contact;
    char source_id[192];
    int deleted;
};
struct fmsg {
    struct db_cw_msg m;
    char data_url[256];
    char att_type[32];
};

struct pending {
    struct evhttp_request *req;
    char *body;
    int status;
    struct event *ev;
    struct db_cw_fake *f;
};

struct db_cw_fake {
    pthread_t thread;
    pthread_mutex_t mu;
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    int port;
    char url[64];
    long account_id, inbox_id;
    char token[256];
    /* guarded by mu */
    struct contact *contacts;
    size_t ncontacts;
    struct cinbox *cinboxes;
    size_t ncinboxes;
    struct conv *convs;
    size_t nconvs;
    struct fmsg *msgs;
    size_t nmsgs;
    long next_msg;
    int fail_status;
    long long fail_until_ms;
    int stall_n, stall_ms;
    int not_api;
    struct {
        char method[8];
        char path[256];
    } *reqs;
    size_t nreqs;
    unsigned long uuid_counter;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int threads_ok;
static void threads_init(void) { threads_ok = evthread_use_pthreads() == 0; }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *grow(void *v, size_t n, size_t size)
{
    /* Arrays grow one element at a time: tests hold a few thousand at most. */
    return realloc(v, (n + 1) * size);
}

/* ---- records (under mu) ---- */

static struct contact *contact_by_id(struct db_cw_fake *f, long id)
{
    for (size_t i = 0; i < f->ncontacts; i++)
        if (f->contacts[i].id == id) return &f->contacts[i];
    return NULL;
}

static struct contact *contact_by_identifier(struct db_cw_fake *f, const char *ident)
{
    for (size_t i = 0; ident && i < f->ncontacts; i++)
        if (strcmp(f->contacts[i].identifier, ident) == 0) return &f->contacts[i];
    return NULL;
}

static struct conv *conv_by_id(struct db_cw_fake *f, long id)
{
    for (size_t i = 0; i < f->nconvs; i++)
        if (f->convs[i].display_id == id && !f->convs[i].deleted) return &f->convs[i];
    return NULL;
}

static struct cinbox *cinbox_by_source(struct db_cw_fake *f, const char *sid)
{
    for (size_t i = 0; sid && i < f->ncinboxes; i++)
        if (strcmp(f->cinboxes[i].source_id, sid) == 0) return &f->cinboxes[i];
    return NULL;
}

static struct fmsg *msg_by_id(struct db_cw_fake *f, long id)
{
    for (size_t i = 0; i < f->nmsgs; i++)
        if (f->msgs[i].m.id == id) return &f->msgs[i];
    return NULL;
}

static void new_uuid(struct db_cw_fake *f, char *out, size_t n)
{
    snprintf(out, n, "00000000-0000-4000-8000-%012lu", ++f->uuid_counter);
}

static struct cinbox *cinbox_add(struct db_cw_fake *f, long contact, const char *sid)
{
    struct cinbox *v = grow(f->cinboxes, f->ncinboxes, sizeof *v);
    if (!v) return NULL;
    f->cinboxes = v;
    struct cinbox *c = &v[f->ncinboxes++];
    memset(c, 0, sizeof *c);
    c->contact = contact;
    if (sid && *sid) snprintf(c->source_id, sizeof c->source_id, "%s", sid);
    else new_uuid(f, c->source_id, sizeof c->source_id);
    return c;
}

/* ---- JSON of records (under mu) ---- */

static json_t *contact_json(struct db_cw_fake *f, const struct contact *c)
{
    json_t *cis = json_array();
    for (size_t i = 0; i < f->ncinboxes; i++)
        if (f->cinboxes[i].contact == c->id)
            json_array_append_new(cis, json_pack("{s:s,s:{s:I,s:s}}", "source_id",
                                                 f->cinboxes[i].source_id, "inbox", "id",
                                                 (json_int_t)f->inbox_id, "channel_type",
                                                 "Channel::Api"));
    json_t *o = json_pack("{s:I,s:s,s:s,s:o}", "id", (json_int_t)c->id, "name", c->name,
                          "identifier", c->identifier, "contact_inboxes", cis);
    json_object_set_new(o, "phone_number", *c->phone ? json_string(c->phone) : json_null());
    return o;
}

static json_t *conv_json(struct db_cw_fake *f, const struct conv *cv)
{
    struct contact *c = contact_by_id(f, cv->contact);
    return json_pack("{s:I,s:I,s:I,s:s,s:{s:s},s:{s:o},s:[]}", "id", (json_int_t)cv->display_id,
                     "account_id", (json_int_t)f->account_id, "inbox_id", (json_int_t)f->inbox_id,
                     "status", "open", "contact_inbox", "source_id", cv->source_id, "meta",
                     "sender", c ? contact_json(f, c) : json_object(), "messages");
}

static const char *const status_names[] = {"sent", "delivered", "read", "failed"};

static json_t *attachments_json(const struct fmsg *m)
{
    json_t *a = json_array();
    if (m->m.n_attachments)
        json_array_append_new(a, json_pack("{s:I,s:I,s:s,s:I,s:s,s:s,s:s,s:I}", "id",
                                           (json_int_t)m->m.id * 10, "message_id",
                                           (json_int_t)m->m.id, "file_type", m->att_type,
                                           "account_id", (json_int_t)1, "extension", "",
                                           "data_url", m->data_url, "thumb_url", m->data_url,
                                           "file_size", (json_int_t)m->m.file_size));
    return a;
}

/* The API's view of a message (push_event_data: message_type an integer). */
static json_t *msg_json(const struct fmsg *m)
{
    json_t *o = json_pack("{s:I,s:s,s:i,s:s,s:b,s:I,s:s,s:o}", "id", (json_int_t)m->m.id,
                          "content", m->m.content, "message_type", m->m.message_type,
                          "content_type", "text", "private", m->m.private_note,
                          "conversation_id", (json_int_t)m->m.conversation, "status",
                          m->m.status, "attachments", attachments_json(m));
    json_object_set_new(o, "source_id", *m->m.source_id ? json_string(m->m.source_id)
                                                        : json_null());
    json_object_set_new(o, "content_attributes",
                        *m->m.external_error
                            ? json_pack("{s:s}", "external_error", m->m.external_error)
                            : json_object());
    return o;
}

/* ---- answering ---- */

static void reply(struct evhttp_request *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
    json_decref(body);
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=utf-8");
    if (b && text) evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, status, status < 400 ? "OK" : "Error", b);
    if (b) evbuffer_free(b);
    free(text);
}

static void pending_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct pending *p = arg;
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(p->req), "Content-Type",
                      "application/json; charset=utf-8");
    if (b) evbuffer_add(b, p->body, strlen(p->body));
    evhttp_send_reply(p->req, p->status, "OK", b);
    if (b) evbuffer_free(b);
    event_free(p->ev);
    free(p->body);
    free(p);
}

static void reply_late(struct db_cw_fake *f, struct evhttp_request *req, int status, json_t *body,
                       int delay_ms)
{
    struct pending *p = calloc(1, sizeof *p);
    p->req = req;
    p->status = status;
    p->f = f;
    p->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    p->ev = evtimer_new(f->base, pending_cb, p);
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(p->ev, &tv);
}

/* ---- routes (under mu unless said) ---- */

static int type_of(const char *s)
{
    if (!s || !*s || strcmp(s, "outgoing") == 0) return 1;
    if (strcmp(s, "incoming") == 0) return 0;
    if (strcmp(s, "activity") == 0) return 2;
    if (strcmp(s, "template") == 0) return 3;
    return -1;
}

static int e164(const char *p)
{
    size_t n = strlen(p);
    if (n < 3 || n > 16 || p[0] != '+' || p[1] < '1' || p[1] > '9') return 0;
    return strspn(p + 1, "0123456789") == n - 1;
}

static void create_contact(struct db_cw_fake *f, struct evhttp_request *req, json_t *in)
{
    json_t *inbox = json_object_get(in, "inbox_id");
    const char *ident = json_string_value(json_object_get(in, "identifier"));
    const char *name = json_string_value(json_object_get(in, "name"));
    const char *phone = json_string_value(json_object_get(in, "phone_number"));
    const char *sid = json_string_value(json_object_get(in, "source_id"));
    if (inbox && json_integer_value(inbox) != f->inbox_id)
        return reply(req, 404, json_pack("{s:s}", "error", "Resource could not be found"));
    /* Contact's validations: identifier and phone_number unique per account, the phone in
     * E.164; every failing attribute is named in one 422. */
    json_t *bad = json_array();
    char msg[256] = "";
    int phone_taken = 0;
    for (size_t i = 0; phone && i < f->ncontacts; i++)
        phone_taken |= strcmp(f->contacts[i].phone, phone) == 0;
    if (ident && contact_by_identifier(f, ident)) {
        json_array_append_new(bad, json_string("identifier"));
        strcat(msg, "Identifier has already been taken");
    }
    if (phone && (!e164(phone) || phone_taken)) {
        json_array_append_new(bad, json_string("phone_number"));
        strcat(msg, *msg ? ", " : "");
        strcat(msg, phone_taken ? "Phone number has already been taken"
                                : "Phone number should be in e164 format");
    }
    if (json_array_size(bad))
        return reply(req, 422, json_pack("{s:s,s:o}", "message", msg, "attributes", bad));
    json_decref(bad);
    if (sid && cinbox_by_source(f, sid))
        return reply(req, 422, json_pack("{s:s}", "error", "source_id should be unique"));
    struct contact *v = grow(f->contacts, f->ncontacts, sizeof *v);
    f->contacts = v;
    struct contact *c = &v[f->ncontacts++];
    memset(c, 0, sizeof *c);
    c->id = (long)f->ncontacts + 100;
    snprintf(c->name, sizeof c->name, "%s", name ? name : "");
    snprintf(c->identifier, sizeof c->identifier, "%s", ident ? ident : "");
    snprintf(c->phone, sizeof c->phone, "%s", phone ? phone : "");
    struct cinbox *ci = inbox ? cinbox_add(f, c->id, sid) : NULL;
    json_t *payload = json_pack("{s:o}", "contact", contact_json(f, c));
    if (ci)
        json_object_set_new(payload, "contact_inbox",
                            json_pack("{s:s,s:{s:I}}", "source_id", ci->source_id, "inbox", "id",
                                      (json_int_t)f->inbox_id));
    reply(req, 200, json_pack("{s:o}", "payload", payload));
}

static void search_contacts(struct db_cw_fake *f, struct evhttp_request *req, const char *uri)
{
    struct evkeyvalq q;
    const char *qs = strchr(uri, '?');
    evhttp_parse_query_str(qs ? qs + 1 : "", &q);
    const char *term = evhttp_find_header(&q, "q");
    const char *page_s = evhttp_find_header(&q, "page");
    int page = page_s ? atoi(page_s) : 1;
    if (page < 1) page = 1;
    json_t *list = json_array();
    size_t hits = 0;
    for (size_t i = 0; term && i < f->ncontacts; i++) {
        /* Chatwoot: ILIKE on name/email/phone, LIKE (case-sensitive substring) on identifier. */
        if (!strstr(f->contacts[i].identifier, term) && !strcasestr(f->contacts[i].name, term))
            continue;
        if (hits >= (size_t)(page - 1) * 15 && hits < (size_t)page * 15)
            json_array_append_new(list, contact_json(f, &f->contacts[i]));
        hits++;
    }
    evhttp_clear_headers(&q);
    reply(req, 200, json_pack("{s:{s:I,s:i},s:o}", "meta", "count", (json_int_t)hits,
                              "current_page", page, "payload", list));
}

static void contact_conversations(struct db_cw_fake *f, struct evhttp_request *req, long id)
{
    if (!contact_by_id(f, id))
        return reply(req, 404, json_pack("{s:s}", "error", "Resource could not be found"));
    json_t *list = json_array();
    for (size_t i = 0; i < f->nconvs; i++)
        if (f->convs[i].contact == id && !f->convs[i].deleted)
            json_array_append_new(list, conv_json(f, &f->convs[i]));
    reply(req, 200, json_pack("{s:o}", "payload", list));
}

static void create_conversation(struct db_cw_fake *f, struct evhttp_request *req, json_t *in)
{
    long contact = (long)json_integer_value(json_object_get(in, "contact_id"));
    long inbox = (long)json_integer_value(json_object_get(in, "inbox_id"));
    const char *sid = json_string_value(json_object_get(in, "source_id"));
    struct cinbox *ci = NULL;
    if (contact && inbox) {
        if (inbox != f->inbox_id || !contact_by_id(f, contact))
            return reply(req, 404, json_pack("{s:s}", "error", "Resource could not be found"));
        /* ContactInboxBuilder: the given source_id's contact-inbox, or a new one. */
        ci = sid ? cinbox_by_source(f, sid) : NULL;
        if (ci && ci->contact != contact)
            return reply(req, 422, json_pack("{s:s}", "error", "source_id should be unique"));
        if (!ci) ci = cinbox_add(f, contact, sid);
    } else {
        ci = cinbox_by_source(f, sid);
        if (!ci) return reply(req, 404, json_pack("{s:s}", "error", "Resource could not be found"));
    }
    struct conv *v = grow(f->convs, f->nconvs, sizeof *v);
    f->convs = v;
    struct conv *cv = &v[f->nconvs++];
    memset(cv, 0, sizeof *cv);
    cv->display_id = (long)f->nconvs;
    cv->contact = ci->contact;
    snprintf(cv->source_id, sizeof cv->source_id, "%s", ci->source_id);
    reply(req, 200, conv_json(f, cv));
}

static struct fmsg *msg_add(struct db_cw_fake *f, long conv)
{
    struct fmsg *v = grow(f->msgs, f->nmsgs, sizeof *v);
    if (!v) return NULL;
    f->msgs = v;
    struct fmsg *m = &v[f->nmsgs++];
    memset(m, 0, sizeof *m);
    m->m.id = ++f->next_msg;
    m->m.conversation = conv;
    snprintf(m->m.status, sizeof m->m.status, "sent");
    return m;
}

static void create_message(struct db_cw_fake *f, struct evhttp_request *req, long conv,
                           const char *ctype, const char *body, size_t len)
{
    if (!conv_by_id(f, conv))
        return reply(req, 404, json_pack("{s:s}", "error", "Resource could not be found"));
    struct cw_form fm;
    if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        if (cw_form_parse(ctype, body, len, &fm) != 0)
            return reply(req, 422, json_pack("{s:s}", "error", "bad multipart body"));
    } else {
        json_t *in = json_loadb(body, len, 0, NULL);
        if (!json_is_object(in)) {
            json_decref(in);
            return reply(req, 422, json_pack("{s:s}", "error", "bad JSON body"));
        }
        memset(&fm, 0, sizeof fm);
        const char *c = json_string_value(json_object_get(in, "content"));
        const char *t = json_string_value(json_object_get(in, "message_type"));
        const char *s = json_string_value(json_object_get(in, "source_id"));
        snprintf(fm.content, sizeof fm.content, "%s", c ? c : "");
        snprintf(fm.message_type, sizeof fm.message_type, "%s", t ? t : "");
        snprintf(fm.source_id, sizeof fm.source_id, "%s", s ? s : "");
        if (json_is_true(json_object_get(in, "private"))) strcpy(fm.private_, "true");
        json_decref(in);
    }
    int type = type_of(fm.message_type);
    if (type < 0)
        return reply(req, 422, json_pack("{s:s}", "error", "'x' is not a valid message_type"));
    struct fmsg *m = msg_add(f, conv);
    m->m.message_type = type;
    m->m.private_note = strcmp(fm.private_, "true") == 0;
    snprintf(m->m.content, sizeof m->m.content, "%s", fm.content);
    snprintf(m->m.source_id, sizeof m->m.source_id, "%s", fm.source_id);
    if (fm.has_file) {
        m->m.n_attachments = 1;
        snprintf(m->m.file_name, sizeof m->m.file_name, "%s", fm.file_name);
        snprintf(m->m.file_type, sizeof m->m.file_type, "%s", fm.file_type);
        m->m.file_size = fm.file_size;
        m->m.file_sum = fm.file_sum;
        snprintf(m->att_type, sizeof m->att_type, "%s",
                 strncmp(fm.file_type, "image/", 6) == 0   ? "image"
                 : strncmp(fm.file_type, "audio/", 6) == 0 ? "audio"
                 : strncmp(fm.file_type, "video/", 6) == 0 ? "video"
                                                           : "file");
        snprintf(m->data_url, sizeof m->data_url, "%s/rails/active_storage/blobs/%ld/%s", f->url,
                 m->m.id, fm.file_name);
    }
    json_t *out = msg_json(m);
    if (f->stall_n > 0) {
        f->stall_n--;
        return reply_late(f, req, 200, out, f->stall_ms);
    }
    reply(req, 200, out);
}

static void list_messages(struct db_cw_fake *f, struct evhttp_request *req, long conv)
{
    if (!conv_by_id(f, conv))
        return reply(req, 404, json_pack("{s:s}", "error", "Resource could not be found"));
    json_t *list = json_array();
    size_t n = 0;
    /* MessageFinder: the latest 20, oldest first. */
    for (size_t i = f->nmsgs; i-- > 0 && n < 20;)
        if (f->msgs[i].m.conversation == conv) json_array_insert_new(list, 0, msg_json(&f->msgs[i])), n++;
    reply(req, 200, json_pack("{s:{},s:o}", "meta", "payload", list));
}

static void update_status(struct db_cw_fake *f, struct evhttp_request *req, long conv, long id,
                          json_t *in)
{
    struct fmsg *m = msg_by_id(f, id);
    if (!conv_by_id(f, conv) || !m || m->m.conversation != conv)
        return reply(req, 404, json_pack("{s:s}", "error", "Resource could not be found"));
    if (f->not_api)
        return reply(req, 403, json_pack("{s:s}", "error",
                                         "Message status update is only allowed for API inboxes"));
    const char *st = json_string_value(json_object_get(in, "status"));
    const char *err = json_string_value(json_object_get(in, "external_error"));
    int known = 0;
    for (int i = 0; i < 4 && st; i++) known |= strcmp(st, status_names[i]) == 0;
    /* StatusUpdateService: unknown statuses and read -> delivered are not applied (200). */
    if (known && !(strcmp(m->m.status, "read") == 0 && strcmp(st, "delivered") == 0)) {
        snprintf(m->m.status, sizeof m->m.status, "%s", st);
        snprintf(m->m.external_error, sizeof m->m.external_error, "%s",
                 strcmp(st, "failed") == 0 && err ? err : "");
    }
    reply(req, 200, msg_json(m));
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    struct db_cw_fake *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *method = cmd == EVHTTP_REQ_GET ? "GET" : cmd == EVHTTP_REQ_POST ? "POST"
                         : cmd == EVHTTP_REQ_PATCH ? "PATCH" : "OTHER";
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(ib);
    char *body = malloc(len + 1);
    evbuffer_copyout(ib, body, len);
    body[len] = '\0';
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *token = evhttp_find_header(h, "api_access_token");
    const char *ctype = evhttp_find_header(h, "Content-Type");
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(uri, "?"), uri);

    pthread_mutex_lock(&f->mu);
    void *v = grow(f->reqs, f->nreqs, sizeof *f->reqs);
    if (v) {
        f->reqs = v;
        snprintf(f->reqs[f->nreqs].method, sizeof f->reqs[0].method, "%s", method);
        snprintf(f->reqs[f->nreqs].path, sizeof f->reqs[0].path, "%s", uri);
        f->nreqs++;
    }
    long acct = 0, a = 0, b = 0;
    int n = 0;
    char rest[200] = "";
    if (sscanf(path, "/api/v1/accounts/%ld%199s%n", &acct, rest, &n) < 1) {
        reply(req, 404, json_pack("{s:s}", "error", "no route"));
    } else if (!token) {
        reply(req, 401, json_pack("{s:[s]}", "errors",
                                  "You need to sign in or sign up before continuing."));
    } else if (strcmp(token, f->token) != 0) {
        reply(req, 401, json_pack("{s:s}", "error", "Invalid Access Token"));
    } else if (acct != f->account_id) {
        reply(req, 401, json_pack("{s:s}", "error", "You are not authorized to access this account"));
    } else if (f->fail_status && now_ms() < f->fail_until_ms) {
        reply(req, f->fail_status, json_pack("{s:s}", "error", "unavailable"));
    } else {
        json_t *in = NULL;
        if (cmd != EVHTTP_REQ_GET && !(ctype && strncasecmp(ctype, "multipart/", 10) == 0))
            in = json_loadb(body, len, 0, NULL);
        if (cmd == EVHTTP_REQ_POST && strcmp(rest, "/contacts") == 0) {
            create_contact(f, req, in);
        } else if (cmd == EVHTTP_REQ_GET && strcmp(rest, "/contacts/search") == 0) {
            search_contacts(f, req, uri);
        } else if (cmd == EVHTTP_REQ_GET &&
                   sscanf(rest, "/contacts/%ld/conversations%n", &a, &n) == 1 && !rest[n]) {
            contact_conversations(f, req, a);
        } else if (cmd == EVHTTP_REQ_POST && strcmp(rest, "/conversations") == 0) {
            create_conversation(f, req, in);
        } else if (sscanf(rest, "/conversations/%ld/messages/%ld%n", &a, &b, &n) == 2 &&
                   !rest[n] && cmd == EVHTTP_REQ_PATCH) {
            update_status(f, req, a, b, in);
        } else if (sscanf(rest, "/conversations/%ld/messages%n", &a, &n) == 1 && !rest[n]) {
            if (cmd == EVHTTP_REQ_POST) create_message(f, req, a, ctype, body, len);
            else if (cmd == EVHTTP_REQ_GET) list_messages(f, req, a);
            else reply(req, 404, json_pack("{s:s}", "error", "no route"));
        } else {
            reply(req, 404, json_pack("{s:s}", "error", "no route"));
        }
        json_decref(in);
    }
    pthread_mutex_unlock(&f->mu);
    free(body);
}

/* ---- life cycle ---- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct db_cw_fake *f = arg;
    evhttp_free(f->http);
    f->http = NULL;
    event_base_loopbreak(f->base);
}

static void *thread_main(void *arg)
{
    struct db_cw_fake *f = arg;
    event_base_dispatch(f->base);
    return NULL;
}

struct db_cw_fake *db_cw_fake_start(long account_id, long inbox_id, const char *token)
{
    pthread_once(&once, threads_init);
    if (!threads_ok) return NULL;
    struct db_cw_fake *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->account_id = account_id;
    f->inbox_id = inbox_id;
    snprintf(f->token, sizeof f->token, "%s", token);
    f->base = event_base_new();
    f->http = f->base ? evhttp_new(f->base) : NULL;
    f->stop_ev = f->base ? event_new(f->base, -1, 0, stop_cb, f) : NULL;
    if (!f->http || !f->stop_ev) return NULL;
    evhttp_set_allowed_methods(f->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_body_size(f->http, 64 * 1024 * 1024);
    evhttp_set_gencb(f->http, request_cb, f);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    if (!s) return NULL;
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &sl);
    f->port = ntohs(sin.sin_port);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    if (pthread_create(&f->thread, NULL, thread_main, f) != 0) return NULL;
    return f;
}

void db_cw_fake_stop(struct db_cw_fake *f)
{
    if (!f) return;
    event_active(f->stop_ev, 0, 0);
    pthread_join(f->thread, NULL);
    event_free(f->stop_ev);
    event_base_free(f->base);
    free(f->contacts);
    free(f->cinboxes);
    free(f->convs);
    free(f->msgs);
    free(f->reqs);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

const char *db_cw_fake_url(const struct db_cw_fake *f) { return f->url; }

void db_cw_fake_fail_for(struct db_cw_fake *f, int status, int ms)
{
    pthread_mutex_lock(&f->mu);
    f->fail_status = ms > 0 ? status : 0;
    f->fail_until_ms = now_ms() + ms;
    pthread_mutex_unlock(&f->mu);
}

void db_cw_fake_set_api_inbox(struct db_cw_fake *f, int api)
{
    pthread_mutex_lock(&f->mu);
    f->not_api = !api;
    pthread_mutex_unlock(&f->mu);
}

void db_cw_fake_stall_creates(struct db_cw_fake *f, int n, int delay_ms)
{
    pthread_mutex_lock(&f->mu);
    f->stall_n = n;
    f->stall_ms = delay_ms;
    pthread_mutex_unlock(&f->mu);
}

size_t db_cw_fake_contacts(struct db_cw_fake *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->ncontacts;
    pthread_mutex_unlock(&f->mu);
    return n;
}

size_t db_cw_fake_conversations(struct db_cw_fake *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = 0;
    for (size_t i = 0; i < f->nconvs; i++) n += !f->convs[i].deleted;
    pthread_mutex_unlock(&f->mu);
    return n;
}

long db_cw_fake_contact(struct db_cw_fake *f, const char *identifier, char *name, size_t nn,
                        char *phone, size_t pn)
{
    pthread_mutex_lock(&f->mu);
    struct contact *c = contact_by_identifier(f, identifier);
    long id = c ? c->id : 0;
    if (c && name) snprintf(name, nn, "%s", c->name);
    if (c && phone) snprintf(phone, pn, "%s", c->phone);
    pthread_mutex_unlock(&f->mu);
    return id;
}

long db_cw_fake_conversation_of(struct db_cw_fake *f, const char *identifier)
{
    pthread_mutex_lock(&f->mu);
    struct contact *c = contact_by_identifier(f, identifier);
    long id = 0;
    for (size_t i = 0; c && i < f->nconvs; i++)
        if (f->convs[i].contact == c->id && !f->convs[i].deleted) id = f->convs[i].display_id;
    pthread_mutex_unlock(&f->mu);
    return id;
}

size_t db_cw_fake_messages(struct db_cw_fake *f, long conversation, struct db_cw_msg *out,
                           size_t max)
{
    pthread_mutex_lock(&f->mu);
    size_t n = 0;
    for (size_t i = 0; i < f->nmsgs; i++)
        if (f->msgs[i].m.conversation == conversation) {
            if (n < max) out[n] = f->msgs[i].m;
            n++;
        }
    pthread_mutex_unlock(&f->mu);
    return n;
}

int db_cw_fake_message(struct db_cw_fake *f, long id, struct db_cw_msg *out)
{
    pthread_mutex_lock(&f->mu);
    struct fmsg *m = msg_by_id(f, id);
    if (m) *out = m->m;
    pthread_mutex_unlock(&f->mu);
    return m ? 0 : -1;
}

void db_cw_fake_delete_conversation(struct db_cw_fake *f, long conversation)
{
    pthread_mutex_lock(&f->mu);
    struct conv *c = conv_by_id(f, conversation);
    if (c) c->deleted = 1;
    for (size_t i = 0; c && i < f->nmsgs; i++)
        if (f->msgs[i].m.conversation == conversation) f->msgs[i].m.conversation = -1;
    pthread_mutex_unlock(&f->mu);
}

size_t db_cw_fake_requests(struct db_cw_fake *f, const char *method, const char *substr)
{
    pthread_mutex_lock(&f->mu);
    size_t n = 0;
    for (size_t i = 0; i < f->nreqs; i++)
        if ((!method || strcmp(f->reqs[i].method, method) == 0) &&
            (!substr || strstr(f->reqs[i].path, substr)))
            n++;
    pthread_mutex_unlock(&f->mu);
    return n;
}

long db_cw_fake_agent_message(struct db_cw_fake *f, long conversation, const char *content,
                              int private_note, const char *file_type, const char *data_url)
{
    pthread_mutex_lock(&f->mu);
    long id = 0;
    if (conv_by_id(f, conversation)) {
        struct fmsg *m = msg_add(f, conversation);
        m->m.message_type = 1;
        m->m.private_note = private_note;
        snprintf(m->m.content, sizeof m->m.content, "%s", content ? content : "");
        if (file_type) {
            m->m.n_attachments = 1;
            snprintf(m->att_type, sizeof m->att_type, "%s", file_type);
            snprintf(m->data_url, sizeof m->data_url, "%s", data_url ? data_url : "");
        }
        id = m->m.id;
    }
    pthread_mutex_unlock(&f->mu);
    return id;
}

/* message.webhook_data merged with event: the payload of message_created. */
static char *callback_body(struct db_cw_fake *f, long id)
{
    pthread_mutex_lock(&f->mu);
    struct fmsg *m = msg_by_id(f, id);
    struct conv *cv = m ? conv_by_id(f, m->m.conversation) : NULL;
    char *out = NULL;
    if (m && cv) {
        static const char *const types[] = {"incoming", "outgoing", "activity", "template"};
        struct contact *c = contact_by_id(f, cv->contact);
        json_t *conv = json_pack("{s:I,s:I,s:s,s:{s:s},s:{s:o,s:o}}", "id",
                                 (json_int_t)cv->display_id, "inbox_id", (json_int_t)f->inbox_id,
                                 "status", "open", "contact_inbox", "source_id", cv->source_id,
                                 "meta", "sender", c ? contact_json(f, c) : json_object(),
                                 "assignee", json_null());
        json_t *sender = m->m.message_type == 1
                             ? json_pack("{s:i,s:s,s:s}", "id", 1, "name", "Agent Smith", "type",
                                         "user")
                             : (c ? contact_json(f, c) : json_null());
        json_t *o = json_pack(
            "{s:{s:I,s:s},s:{},s:{},s:s,s:s,s:o,s:s,s:I,s:{s:I,s:s},s:s,s:b,s:o,s:n,s:s}",
            "account", "id", (json_int_t)f->account_id, "name", "Acme", "additional_attributes",
            "content_attributes", "content_type", "text", "content", m->m.content, "conversation",
            conv, "created_at", "2026-12-06T10:00:00.000Z", "id", (json_int_t)m->m.id, "inbox",
            "id", (json_int_t)f->inbox_id, "name", "Messengers", "message_type",
            types[m->m.message_type], "private", m->m.private_note, "sender", sender,
            "source_id", "event", "message_created");
        if (m->m.n_attachments) json_object_set_new(o, "attachments", attachments_json(m));
        out = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    pthread_mutex_unlock(&f->mu);
    return out;
}

int db_cw_fake_callback(struct db_cw_fake *f, long id, int port, const char *path,
                        const char *secret, long ts_offset_s, int bad_sig)
{
    char *body = callback_body(f, id);
    if (!body) return -1;
    char ts[32], sig[128] = "X-Chatwoot-Signature: sha256=", tsh[64], delivery[96];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL) + ts_offset_s);
    snprintf(tsh, sizeof tsh, "X-Chatwoot-Timestamp: %s", ts);
    snprintf(delivery, sizeof delivery, "X-Chatwoot-Delivery: 00000000-0000-4000-8000-%012ld", id);
    const char *headers[5] = {"Content-Type: application/json", delivery, NULL, NULL, NULL};
    if (secret) {
        size_t bl = strlen(body), tl = strlen(ts);
        char *msg = malloc(tl + 1 + bl + 1);
        memcpy(msg, ts, tl);
        msg[tl] = '.';
        memcpy(msg + tl + 1, body, bl);
        if (bad_sig) msg[tl + 1] ^= 1;
        unsigned char mac[32];
        unsigned int ml = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg, tl + 1 + bl, mac,
             &ml);
        free(msg);
        for (int i = 0; i < 32; i++) sprintf(sig + strlen(sig), "%02x", mac[i]);
        headers[2] = tsh;
        headers[3] = sig;
    }
    struct db_test_resp r;
    db_test_http(port, "POST", path, headers, body, strlen(body), &r);
    int status = r.status;
    db_test_resp_clear(&r);
    free(body);
    return status;
}
