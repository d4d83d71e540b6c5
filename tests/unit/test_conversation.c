/* The conversation state machine: the dispatcher's Lua script run directly against a real
 * redis-server, with the clock given by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "dispatch/assign.h"
#include "dispatch/dispatcher.h"
#include "redis/scripts.h"
#include "redis_fixture.h"

static struct db_test_redis *R;

static redisReply *run(long long now, const char *op, const char *a1, const char *a2,
                       const char *a3, const char *a4, const char *a5)
{
    char t[24];
    snprintf(t, sizeof t, "%lld", now);
    const char *argv[12] = {"EVAL", db_lua_dispatch, "0", op, "t", t};
    int argc = 6;
    const char *extra[] = {a1, a2, a3, a4, a5};
    for (int i = 0; i < 5 && extra[i]; i++) argv[argc++] = extra[i];
    redisReply *r = redisCommandArgv(db_test_redis_ctx(R), argc, argv, NULL);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("%s: %s", op, r->str);
    return r;
}

static void run0(long long now, const char *op, const char *a1, const char *a2, const char *a3,
                 const char *a4, const char *a5)
{
    freeReplyObject(run(now, op, a1, a2, a3, a4, a5));
}

static char *hget(const char *conv, const char *field)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), "HGET t:conv:{%s} %s", conv, field);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static void assert_field(const char *conv, const char *field, const char *want)
{
    char *v = hget(conv, field);
    if (!want) assert_null(v);
    else if (!v || strcmp(v, want) != 0) fail_msg("%s.%s = %s, want %s", conv, field, v ? v : "(nil)", want);
    free(v);
}

/* Appends an event of chat to t:events; its entry id into id. */
static void event(const char *chat, const char *text, char id[64])
{
    char ev[512];
    snprintf(ev, sizeof ev,
             "{\"v\":1,\"id\":\"e\",\"kind\":\"message\",\"type\":\"text\",\"platform\":\"telegram\","
             "\"account\":\"1\",\"conversation\":\"telegram:1:%s\",\"external_chat_id\":\"%s\","
             "\"text\":\"%s\",\"sender\":{\"name\":\"N\",\"language\":\"uk\"},\"timestamp\":1}",
             chat, chat, text);
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XADD t:events * event %s", ev);
    snprintf(id, 64, "%s", r->str);
    freeReplyObject(r);
    /* Delivered to a consumer, as XREADGROUP does before the dispatcher applies it: until it
     * is acknowledged it is pending. */
    freeReplyObject(redisCommand(db_test_redis_ctx(R),
                                 "XREADGROUP GROUP deskbridge-dispatch t1 COUNT 1 STREAMS t:events >"));
}

static void apply(long long now, const char *chat, const char *entry)
{
    char conv[64];
    snprintf(conv, sizeof conv, "telegram:1:%s", chat);
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XRANGE t:events %s %s", entry, entry);
    const char *raw = r->element[0]->element[1]->element[1]->str;
    run0(now, "event", entry, conv, "urgent\turgent\n", raw, NULL);
    freeReplyObject(r);
}

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    freeReplyObject(redisCommand(db_test_redis_ctx(R),
                                 "XGROUP CREATE t:events deskbridge-dispatch 0 MKSTREAM"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    db_test_redis_stop(R);
    return 0;
}

static void new_conversation_waits_then_gets_an_agent(void **state)
{
    (void)state;
    char e1[64];
    event("1", "hi", e1);
    apply(1000, "1", e1);
    assert_field("telegram:1:1", "state", "queued");
    assert_field("telegram:1:1", "name", "N");
    assert_field("telegram:1:1", "first_message_at", "1000");
    run0(1100, "agent_put", "ann", "Ann", "1", "[\"uk\"]", "[]");
    assert_field("telegram:1:1", "state", "queued"); /* offline agents take nothing */
    run0(1200, "presence", "ann", "online", "500", NULL, NULL);
    assert_field("telegram:1:1", "state", "assigned");
    assert_field("telegram:1:1", "agent", "ann");
    assert_field("telegram:1:1", "queued_at", NULL);
}

static void processing_is_idempotent_and_in_order(void **state)
{
    (void)state;
    char e2[64], e3[64];
    event("1", "two", e2);
    event("1", "three", e3);
    /* Another process handles the later entry first: both are applied, oldest first. */
    apply(2000, "1", e3);
    assert_field("telegram:1:1", "unread", "3");
    apply(2001, "1", e2);
    apply(2002, "1", e3);
    assert_field("telegram:1:1", "unread", "3");
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XRANGE t:agent:{ann} - +");
    /* The first message came before the assignment (which carries the unread count). */
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->element[1]->element[1]->str, "assigned");
    assert_non_null(strstr(r->element[1]->element[1]->element[5]->str, "\"two\""));
    assert_non_null(strstr(r->element[2]->element[1]->element[5]->str, "\"three\""));
    freeReplyObject(r);
}

static void close_reopen_sticky_and_priority(void **state)
{
    (void)state;
    run0(3000, "close", "telegram:1:1", NULL, NULL, NULL, NULL);
    assert_field("telegram:1:1", "state", "closed");
    assert_field("telegram:1:1", "agent", "");
    char e[64];
    event("1", "URGENT again", e);
    apply(3100, "1", e);
    assert_field("telegram:1:1", "state", "assigned");
    assert_field("telegram:1:1", "agent", "ann");
    assert_field("telegram:1:1", "priority", "urgent");
    assert_field("telegram:1:1", "reopened_at", "3100");
}

static void queue_order_and_offline_grace(void **state)
{
    (void)state;
    /* ann (capacity 1) is busy with chat 1: two more wait, the urgent one first. */
    char a[64], b[64];
    event("2", "normal", a);
    apply(4000, "2", a);
    event("3", "urgent!", b);
    apply(4100, "3", b);
    assert_field("telegram:1:2", "state", "queued");
    assert_field("telegram:1:3", "state", "queued");
    run0(4200, "priority", "telegram:1:2", "low", NULL, NULL, NULL);
    run0(4300, "agent_put", "ann", "Ann", "2", "[\"uk\"]", "[]");
    assert_field("telegram:1:3", "agent", "ann");
    assert_field("telegram:1:2", "state", "queued");

    /* Offline: nothing moves within the grace, everything after it. */
    run0(5000, "presence", "ann", "offline", "500", NULL, NULL);
    run0(5400, "sweep", "500", NULL, NULL, NULL, NULL);
    assert_field("telegram:1:3", "state", "assigned");
    run0(5500, "sweep", "500", NULL, NULL, NULL, NULL);
    assert_field("telegram:1:3", "state", "queued");
    assert_field("telegram:1:1", "state", "queued");
    /* A second sweep (another process) changes nothing more. */
    redisReply *r = run(5600, "sweep", "500", NULL, NULL, NULL, NULL);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    run0(5700, "presence", "ann", "online", "500", NULL, NULL);
    assert_field("telegram:1:3", "agent", "ann"); /* urgent first */
    assert_field("telegram:1:1", "agent", "ann");
    assert_field("telegram:1:2", "state", "queued");
}

static void commands_refuse_what_cannot_be(void **state)
{
    (void)state;
    redisReply *r = run(6000, "assign", "telegram:1:2", "ann", NULL, NULL, NULL);
    assert_string_equal(r->str, "over_capacity");
    freeReplyObject(r);
    r = run(6000, "transfer", "telegram:1:2", "ann", NULL, NULL, NULL);
    assert_string_equal(r->str, "not_assigned");
    freeReplyObject(r);
    r = run(6000, "assign", "telegram:1:404", "ann", NULL, NULL, NULL);
    assert_string_equal(r->str, "no_conversation");
    freeReplyObject(r);
    r = run(6000, "assign", "telegram:1:2", "nobody", NULL, NULL, NULL);
    assert_string_equal(r->str, "no_agent");
    freeReplyObject(r);
}

/* ---- the script and assign.c choose the same agent ---- */

static redisReply *cmdf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(db_test_redis_ctx(R), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static void script_and_c_agree(void **state)
{
    (void)state;
    static const char *const langs[] = {"uk", "en", "de"};
    static const char *const accts[] = {"telegram:1", "viber:2"};
    static const char *const ids[] = {"a1", "b2", "c3", "d4", "e5"};
    srand(7);
    for (int round = 0; round < 150; round++) {
        char P[16];
        snprintf(P, sizeof P, "d%d", round);
        struct db_assign_agent ag[5];
        const char *lang_of[5], *acct_of[5];
        int n = 1 + rand() % 5;
        for (int i = 0; i < n; i++) {
            ag[i] = (struct db_assign_agent){.id = ids[i], .online = rand() % 4 != 0,
                                             .capacity = rand() % 3, .load = 0};
            ag[i].load = ag[i].capacity ? rand() % (ag[i].capacity + 1) : 0;
            lang_of[i] = langs[rand() % 3], acct_of[i] = accts[rand() % 2];
            int has_lang = rand() % 2, has_acct = rand() % 2;
            ag[i].languages = &lang_of[i], ag[i].n_languages = (size_t)has_lang;
            ag[i].accounts = &acct_of[i], ag[i].n_accounts = (size_t)has_acct;
            freeReplyObject(cmdf("HSET %s:agentinfo:{%s} presence %s capacity %d languages %s "
                                 "accounts %s", P, ids[i], ag[i].online ? "online" : "away",
                                 ag[i].capacity, has_lang ? (lang_of[i][0] == 'u' ? "[\"uk\"]" :
                                 lang_of[i][0] == 'e' ? "[\"en\"]" : "[\"de\"]") : "[]",
                                 has_acct ? (acct_of[i][0] == 't' ? "[\"telegram:1\"]"
                                                                 : "[\"viber:2\"]") : "[]"));
            freeReplyObject(cmdf("SADD %s:agents %s", P, ids[i]));
            for (int k = 0; k < ag[i].load; k++)
                freeReplyObject(cmdf("SADD %s:agentconvs:{%s} x%d", P, ids[i], k));
        }
        int rr = rand() % 7;
        freeReplyObject(cmdf("SET %s:dispatch:rr %d", P, rr));
        const char *lang = langs[rand() % 3], *acct = accts[rand() % 2];
        const char *prev = rand() % 3 == 0 ? ids[rand() % n] : NULL;
        const char *pl = acct[0] == 't' ? "telegram" : "viber", *acc = acct[0] == 't' ? "1" : "2";
        char conv[64], raw[512];
        snprintf(conv, sizeof conv, "%s:%s:c", pl, acc);
        if (prev)
            freeReplyObject(cmdf("HSET %s:conv:{%s} state closed prev_agent %s platform %s "
                                 "account %s", P, conv, prev, pl, acc));
        snprintf(raw, sizeof raw,
                 "{\"kind\":\"message\",\"platform\":\"%s\",\"account\":\"%s\","
                 "\"conversation\":\"%s\",\"sender\":{\"language\":\"%s\"}}",
                 pl, acc, conv, lang);
        const char *argv[] = {"EVAL", db_lua_dispatch, "0", "event", P, "1000", "5-0", conv, "", raw};
        redisReply *r = redisCommandArgv(db_test_redis_ctx(R), 10, argv, NULL);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);

        struct db_assign_conv c = {acct, lang, prev};
        long want = db_assign_pick(&c, ag, (size_t)n, (unsigned long)rr);
        r = cmdf("HMGET %s:conv:{%s} state agent", P, conv);
        if (want < 0) {
            assert_string_equal(r->element[0]->str, "queued");
        } else {
            assert_string_equal(r->element[0]->str, "assigned");
            if (strcmp(r->element[1]->str, ag[want].id) != 0)
                fail_msg("round %d: script chose %s, assign.c %s", round, r->element[1]->str,
                         ag[want].id);
        }
        freeReplyObject(r);
    }
}

/* The raw event of entry id (owned by the reply rp). */
static const char *raw_of(const char *id, redisReply **rp)
{
    *rp = cmdf("XRANGE t:events %s %s", id, id);
    return (*rp)->element[0]->element[1]->element[1]->str;
}

/* Runs op "events" over n entries (ids), each of chat chats[i]; broken[i] passes the event's
 * parsed fields with a profile field that has no value, which makes applying it fail before
 * it records the entry.  Returns the reply (owned). */
static redisReply *run_events_as(const char *how, int n, char ids[][64], const char *const *chats,
                                 const int *broken)
{
    const char *argv[8 + 16 * 8];
    size_t lens[8 + 16 * 8];
    char count[8], convs[8][32], sizes[8][4];
    redisReply *raws[8];
    int argc = 0;
    snprintf(count, sizeof count, "%d", n);
    const char *head[] = {"EVALSHA", NULL, "0", "events", "t", "9000", count, how};
    redisReply *sha = cmdf("SCRIPT LOAD %s", db_lua_dispatch);
    head[1] = sha->str;
    for (int i = 0; i < 8; i++) argv[argc++] = head[i];
    for (int i = 0; i < n; i++) {
        snprintf(convs[i], sizeof convs[i], "telegram:1:%s", chats[i]);
        snprintf(sizes[i], sizeof sizes[i], "%d", broken[i] ? 13 : 5);
        const char *ev[] = {sizes[i], ids[i], convs[i], "", raw_of(ids[i], &raws[i]), "",
                            "message", "telegram", "1", chats[i], "e", "9000", "", "name"};
        for (int k = 0; k < (broken[i] ? 14 : 6); k++) argv[argc++] = ev[k];
    }
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(db_test_redis_ctx(R), argc, argv, lens);
    assert_non_null(r);
    for (int i = 0; i < n; i++) freeReplyObject(raws[i]);
    freeReplyObject(sha);
    return r;
}

/* The entries of one whole read, as the dispatcher passes them (db_consumer_batch_fn). */
static redisReply *run_events(int n, char ids[][64], const char *const *chats, const int *broken)
{
    return run_events_as("read", n, ids, chats, broken);
}

/* The texts of conversation chat's items, in order, joined with spaces. */
static void items_of(const char *chat, char *out, size_t n)
{
    redisReply *r = cmdf("LRANGE t:conv:{telegram:1:%s}:items 0 -1", chat);
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        const char *t = strstr(r->element[i]->str, "\"text\":\"");
        size_t len = strlen(out);
        if (t) snprintf(out + len, n - len, "%s%.*s", len ? " " : "", (int)strcspn(t + 8, "\""), t + 8);
    }
    freeReplyObject(r);
}

/* The entries pending in the group, joined with spaces. */
static void pending_of(char *out, size_t n)
{
    redisReply *r = cmdf("XPENDING t:events deskbridge-dispatch - + 1000");
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s", len ? " " : "", r->element[i]->element[0]->str);
    }
    freeReplyObject(r);
}

/* One run of op "events": an earlier entry of a conversation held by another process is
 * applied first; an event that fails stays pending and a later event of its conversation in
 * the same run applies it first too; what was applied is acknowledged, nothing else. */
static void a_run_keeps_order_and_acks_only_what_it_applied(void **state)
{
    (void)state;
    freeReplyObject(cmdf("DEL t:events"));
    freeReplyObject(cmdf("XGROUP CREATE t:events deskbridge-dispatch 0 MKSTREAM"));
    char held[64], ids[4][64], want[256], got[256];
    event("30", "one", held); /* delivered, never applied: another process holds it */
    event("31", "two", ids[0]);
    event("30", "three", ids[1]);
    event("32", "four", ids[2]);
    event("32", "five", ids[3]);
    static const char *const chats[] = {"31", "30", "32", "32"};
    static const int broken[] = {0, 0, 1, 0};
    redisReply *r = run_events(4, ids, chats, broken);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    assert_int_equal(r->element[0]->integer, 1);
    assert_int_equal(r->element[1]->integer, 2); /* "one", then "three" */
    assert_int_equal(r->element[2]->type, REDIS_REPLY_ERROR);
    assert_int_equal(r->element[3]->integer, 2); /* the failed "four", then "five" */
    freeReplyObject(r);
    items_of("30", got, sizeof got);
    assert_string_equal(got, "one three");
    items_of("32", got, sizeof got);
    assert_non_null(strstr(got, "four five")); /* the failed try had appended "four" already */
    snprintf(want, sizeof want, "%s %s", held, ids[2]);
    pending_of(got, sizeof got);
    assert_string_equal(got, want);

    /* A run out of entry order: the newer entry finds the older one of the run still pending
     * and applies it first, as when each event asked the group. */
    char two[2][64];
    event("34", "seven", two[1]);
    event("34", "eight", two[0]);
    static const char *const chat34[] = {"34", "34"};
    static const int fine[] = {0, 0};
    r = run_events(2, two, chat34, fine);
    assert_int_equal(r->element[0]->integer, 2); /* "seven", then "eight" */
    assert_int_equal(r->element[1]->integer, 0); /* already applied */
    freeReplyObject(r);
    items_of("34", got, sizeof got);
    assert_string_equal(got, "seven eight");

    /* With more pending than the run reads at once, each event asks the group itself, and
     * the answers are the same. */
    char filler[64], late[1][64];
    for (int i = 0; i < 520; i++) event("33", "filler", filler);
    event("30", "six", late[0]);
    static const char *const chat30[] = {"30"};
    static const int sound[] = {0};
    r = run_events(1, late, chat30, sound);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 1);
    freeReplyObject(r);
    items_of("30", got, sizeof got);
    assert_string_equal(got, "one three six");
    r = cmdf("XPENDING t:events deskbridge-dispatch");
    assert_int_equal(r->element[0]->integer, 522); /* held, "four" and the fillers */
    freeReplyObject(r);
}

/* Claimed entries are not one read: an entry held elsewhere may lie between the run's oldest
 * and newest, and a later entry of its conversation applies it first. */
static void a_claimed_run_finds_entries_between_its_own(void **state)
{
    (void)state;
    freeReplyObject(cmdf("DEL t:events"));
    freeReplyObject(cmdf("XGROUP CREATE t:events deskbridge-dispatch 0 MKSTREAM"));
    char ids[2][64], between[64], got[64];
    event("50", "x", ids[0]);
    event("51", "held", between); /* delivered to another process, not applied */
    event("51", "later", ids[1]);
    static const char *const chats[] = {"50", "51"};
    static const int fine[] = {0, 0};
    redisReply *r = run_events_as("claim", 2, ids, chats, fine);
    assert_int_equal(r->element[0]->integer, 1);
    assert_int_equal(r->element[1]->integer, 2); /* "held", then "later" */
    freeReplyObject(r);
    items_of("51", got, sizeof got);
    assert_string_equal(got, "held later");
}

/* Entry ids are compared as the two numbers they are, whatever their lengths: 99-9 comes
 * before 99-10, and both before 100-0.  The later delivery of an applied entry changes
 * nothing. */
static void entries_are_ordered_by_number(void **state)
{
    (void)state;
    freeReplyObject(cmdf("DEL t:events"));
    freeReplyObject(cmdf("XGROUP CREATE t:events deskbridge-dispatch 0 MKSTREAM"));
    static const char *const ids[] = {"99-9", "99-10", "100-0"}, *const texts[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char ev[256];
        snprintf(ev, sizeof ev,
                 "{\"v\":1,\"id\":\"e\",\"kind\":\"message\",\"type\":\"text\","
                 "\"platform\":\"telegram\",\"account\":\"1\",\"conversation\":\"telegram:1:41\","
                 "\"external_chat_id\":\"41\",\"text\":\"%s\",\"timestamp\":1}",
                 texts[i]);
        freeReplyObject(cmdf("XADD t:events %s event %s", ids[i], ev));
    }
    freeReplyObject(cmdf("XREADGROUP GROUP deskbridge-dispatch t1 COUNT 3 STREAMS t:events >"));
    apply(5000, "41", "99-10"); /* applies 99-9 first */
    apply(5001, "41", "99-9");
    apply(5002, "41", "100-0");
    apply(5003, "41", "99-10");
    char got[64];
    items_of("41", got, sizeof got);
    assert_string_equal(got, "a b c");
    assert_field("telegram:1:41", "unread", "3");
    assert_field("telegram:1:41", "last_entry", "100-0");
}

/* The history keeps the last 1000 items: the list is trimmed back to 1000 once it holds
 * 1100, and a conversation read in between shows its newest 1000. */
static void a_history_shows_its_last_1000_items(void **state)
{
    (void)state;
    char e[64], text[16];
    for (int i = 1; i <= 1101; i++) {
        snprintf(text, sizeof text, "m%d", i);
        event("42", text, e);
        apply(6000 + i, "42", e);
        if (i != 1100) continue;
        redisReply *r = cmdf("LLEN t:conv:{telegram:1:42}:items");
        assert_int_equal(r->integer, 1100);
        freeReplyObject(r);
        r = run(7200, "get", "telegram:1:42", NULL, NULL, NULL, NULL);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        const redisReply *list = r->element[1];
        assert_int_equal(list->elements, 1000);
        assert_non_null(strstr(list->element[0]->str, "\"m101\""));
        assert_non_null(strstr(list->element[999]->str, "\"m1100\""));
        freeReplyObject(r);
    }
    redisReply *r = cmdf("LRANGE t:conv:{telegram:1:42}:items 0 0");
    assert_int_equal(r->elements, 1);
    assert_non_null(strstr(r->element[0]->str, "\"m102\""));
    freeReplyObject(r);
    r = cmdf("LLEN t:conv:{telegram:1:42}:items");
    assert_int_equal(r->integer, 1000);
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_conversation_waits_then_gets_an_agent),
        cmocka_unit_test(processing_is_idempotent_and_in_order),
        cmocka_unit_test(close_reopen_sticky_and_priority),
        cmocka_unit_test(queue_order_and_offline_grace),
        cmocka_unit_test(commands_refuse_what_cannot_be),
        cmocka_unit_test(script_and_c_agree),
        cmocka_unit_test(a_run_keeps_order_and_acks_only_what_it_applied),
        cmocka_unit_test(a_claimed_run_finds_entries_between_its_own),
        cmocka_unit_test(entries_are_ordered_by_number),
        cmocka_unit_test(a_history_shows_its_last_1000_items),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
