/* json_bench.c - nanoseconds per parse and per dump on the webhook path: jansson
 * (json_loadb, json_dumps) against deskbridge's own reader and writer (db_json_parse_object,
 * db_json_dump, src/util/json*.c).  The parse input is one ~600-byte body as
 * bench/gen_bodies.py makes them; the dump input is the normalized event the store writes for
 * such a body.  Each figure is the best of 7 rounds (the machine is shared), and freeing the
 * parsed value is timed apart because both readers build the same jansson values.
 *
 * Built by bench/run.sh:
 *   cc -std=c11 -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/json_bench.c src/util/json.c \
 *      src/util/json_parse.c src/util/text.c src/util/status.c -ljansson
 * usage: json_bench [iterations per round, default 20000] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json.h"

static const char body[] =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102003040506070\",\"changes\":"
    "[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
    "\"15550783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"profile\":"
    "{\"name\":\"Kerry Fisher\"},\"wa_id\":\"16505550042\"}],\"messages\":[{\"from\":"
    "\"16505550042\",\"id\":\"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUJC0000000042AA==\","
    "\"timestamp\":\"1749416383\",\"type\":\"text\",\"text\":{\"body\":\"Hello, I ordered a "
    "blue kettle last week and it has not arrived yet. Hello, I ordered a blue kettle last week "
    "and it has not arrived yet. Hell\"}}]},\"field\":\"messages\"}]}]}";

static const char event[] =
    "{\"v\":1,\"kind\":\"message\",\"platform\":\"whatsapp\",\"account\":\"106540352242922\","
    "\"conversation\":\"whatsapp:106540352242922:16505550042\",\"external_chat_id\":"
    "\"16505550042\",\"external_user_id\":\"16505550042\",\"external_message_id\":"
    "\"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQUJC0000000042AA==\",\"timestamp\":1749416383,"
    "\"sender\":{\"name\":\"Kerry Fisher\"},\"type\":\"text\",\"text\":\"Hello, I ordered a "
    "blue kettle last week and it has not arrived yet. Hello, I ordered a blue kettle last week "
    "and it has not arrived yet. Hell\",\"id\":\"01JD8Z3K4M5N6P7Q8R9S0T1V2W\","
    "\"received_at\":1763900000123}";

#define BATCH 1000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static json_t *parse_jansson(void)
{
    return json_loadb(body, sizeof body - 1, JSON_REJECT_DUPLICATES, NULL);
}

static json_t *parse_own(void)
{
    json_t *v = NULL;
    return db_json_parse_object(body, sizeof body - 1, &v, NULL) == DB_OK ? v : NULL;
}

static char *dump_jansson(const json_t *v) { return json_dumps(v, JSON_COMPACT); }

/* Best ns per parse and per free of the parsed value over rounds of n parses. */
static void time_parse(json_t *(*parse)(void), int n, double *parse_ns, double *free_ns)
{
    static json_t *held[BATCH];
    *parse_ns = *free_ns = 1e18;
    for (int round = 0; round < 7; round++) {
        double p = 0, f = 0;
        for (int done = 0; done < n; done += BATCH) {
            double t0 = now_ns();
            for (int i = 0; i < BATCH; i++)
                if (!(held[i] = parse())) abort();
            double t1 = now_ns();
            for (int i = 0; i < BATCH; i++) json_decref(held[i]);
            double t2 = now_ns();
            p += t1 - t0;
            f += t2 - t1;
        }
        int total = (n + BATCH - 1) / BATCH * BATCH;
        if (p / total < *parse_ns) *parse_ns = p / total;
        if (f / total < *free_ns) *free_ns = f / total;
    }
}

static double time_dump(char *(*dump)(const json_t *), const json_t *v, int n)
{
    double best = 1e18;
    for (int round = 0; round < 7; round++) {
        double t0 = now_ns();
        for (int i = 0; i < n; i++) {
            char *s = dump(v);
            if (!s) abort();
            free(s);
        }
        double ns = (now_ns() - t0) / n;
        if (ns < best) best = ns;
    }
    return best;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < BATCH) n = BATCH;
    /* Both sides must do the same work: equal values, equal bytes. */
    json_t *a = parse_jansson(), *b = parse_own(), *ev = json_loads(event, 0, NULL);
    if (!a || !b || !ev || !json_equal(a, b)) {
        fprintf(stderr, "json_bench: the readers disagree on the body\n");
        return 1;
    }
    char *da = dump_jansson(ev), *db = db_json_dump(ev);
    if (!da || !db || strcmp(da, db) != 0) {
        fprintf(stderr, "json_bench: the writers disagree on the event\n");
        return 1;
    }
    size_t event_len = strlen(da);
    free(da);
    free(db);
    json_decref(a);
    json_decref(b);

    double jp, jf, op, of;
    time_parse(parse_jansson, n, &jp, &jf);
    time_parse(parse_own, n, &op, &of);
    double jd = time_dump(dump_jansson, ev, n), od = time_dump(db_json_dump, ev, n);
    json_decref(ev);
    printf("json parse, %zu-byte WhatsApp body: jansson %.0f ns, deskbridge %.0f ns (%.1fx)\n",
           sizeof body - 1, jp, op, jp / op);
    printf("json free of the parsed value:      jansson %.0f ns, deskbridge %.0f ns\n", jf, of);
    printf("json dump, %zu-byte event:          jansson %.0f ns, deskbridge %.0f ns (%.1fx)\n",
           event_len, jd, od, jd / od);
    return 0;
}
