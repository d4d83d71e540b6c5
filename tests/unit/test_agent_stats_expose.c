/* db_agent_stats_expose without Redis: which series a statistics object becomes, the account
 * label split, the missing values left out or NaN, and the cap on agents per scrape. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "metrics/agent_stats.h"

/* A writer that keeps "name{a=v,...} value" lines (values unescaped) and counts headers. */
struct sink {
    char text[1 << 20];
    size_t len;
    int headers;
    long samples;
};

static void header(void *o, const char *name, const char *type, const char *help)
{
    struct sink *s = o;
    (void)name, (void)type, (void)help;
    s->headers++;
}

static void sample(void *o, const char *name, int n, const char *const *names,
                   const char *const *vals, double value)
{
    struct sink *s = o;
    s->samples++;
    if (s->len > sizeof s->text - 512) return;
    s->len += (size_t)snprintf(s->text + s->len, sizeof s->text - s->len, "%s{", name);
    for (int i = 0; i < n; i++)
        s->len += (size_t)snprintf(s->text + s->len, sizeof s->text - s->len, "%s%s=%s",
                                   i ? "," : "", names[i], vals[i]);
    s->len += (size_t)snprintf(s->text + s->len, sizeof s->text - s->len, "} %g\n", value);
}

static int has(const struct sink *s, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "%s\n", line);
    return strstr(s->text, want) != NULL;
}

static void expect(const struct sink *s, const char *line)
{
    if (!has(s, line)) fail_msg("no line %s in\n%s", line, s->text);
}

static const char *const one =
    "{\"agents\":{\"ag-1\":{\"handled\":{\"hour\":2,\"day\":5},"
    "\"first_response\":{\"hour\":{\"median_ms\":1500,\"p90_ms\":4000,\"count\":2},"
    "\"day\":{\"median_ms\":null,\"p90_ms\":null,\"count\":0}},"
    "\"satisfaction\":{\"hour\":{\"average\":null,\"count\":0},\"day\":{\"average\":4.5,\"count\":2}}}},"
    "\"accounts\":{\"whatsapp:1555\":{\"handled\":{\"hour\":1,\"day\":1},"
    "\"first_response\":{\"hour\":{\"median_ms\":1500,\"p90_ms\":1500,\"count\":1},"
    "\"day\":{\"median_ms\":1500,\"p90_ms\":1500,\"count\":1}},"
    "\"satisfaction\":{\"hour\":{\"average\":null,\"count\":0},\"day\":{\"average\":null,\"count\":0}}},"
    "\"no-colon\":{}},"
    "\"satisfaction\":{\"hour\":{\"average\":null,\"count\":0},\"day\":{\"average\":4.5,\"count\":2}}}";

static void series_of_one_agent_and_account(void **state)
{
    (void)state;
    json_t *st = json_loads(one, 0, NULL);
    assert_non_null(st);
    struct sink *s = calloc(1, sizeof *s);
    assert_non_null(s);
    const struct db_expo w = {s, header, sample};
    db_agent_stats_expose(st, &w);
    expect(s, "deskbridge_agent_conversations_handled{agent=ag-1,window=hour} 2");
    expect(s, "deskbridge_agent_conversations_handled{agent=ag-1,window=day} 5");
    expect(s, "deskbridge_agent_first_response_seconds{agent=ag-1,window=hour,quantile=0.5} 1.5");
    expect(s, "deskbridge_agent_first_response_seconds{agent=ag-1,window=hour,quantile=0.9} 4");
    expect(s, "deskbridge_agent_first_response_seconds{agent=ag-1,window=day,quantile=0.5} nan");
    expect(s, "deskbridge_agent_first_responses{agent=ag-1,window=day} 0");
    expect(s, "deskbridge_agent_satisfaction_average{agent=ag-1,window=day} 4.5");
    assert_false(has(s, "deskbridge_agent_satisfaction_average{agent=ag-1,window=hour} nan"));
    assert_null(strstr(s->text, "satisfaction_average{agent=ag-1,window=hour}"));
    expect(s, "deskbridge_agent_satisfaction_answers{agent=ag-1,window=hour} 0");
    expect(s, "deskbridge_account_conversations_handled{platform=whatsapp,account=1555,window=day} 1");
    expect(s, "deskbridge_account_first_response_seconds{platform=whatsapp,account=1555,"
              "window=day,quantile=0.9} 1.5");
    expect(s, "deskbridge_satisfaction_average{window=day} 4.5");
    expect(s, "deskbridge_satisfaction_answers{window=hour} 0");
    /* an account key that is not platform:account gives no series */
    assert_null(strstr(s->text, "no-colon"));
    /* five families each for agents and accounts, two overall */
    assert_int_equal(s->headers, 12);
    free(s);
    json_decref(st);
}

static void at_most_1000_agents(void **state)
{
    (void)state;
    json_t *agents = json_object();
    for (int i = 0; i < 1200; i++) {
        char id[16];
        snprintf(id, sizeof id, "ag-%d", i);
        json_object_set_new(agents, id, json_pack("{s:{s:i,s:i}}", "handled", "hour", 1, "day", 1));
    }
    json_t *st = json_pack("{s:o,s:{},s:{}}", "agents", agents, "accounts", "satisfaction");
    assert_non_null(st);
    struct sink *s = calloc(1, sizeof *s);
    assert_non_null(s);
    const struct db_expo w = {s, header, sample};
    db_agent_stats_expose(st, &w);
    /* per agent: handled 2, quantiles 4 (NaN), first responses 2 (NaN); no satisfaction
     * member, so no answers and no averages; plus the overall answers of two windows */
    assert_int_equal(s->samples, 1000 * 8 + 2);
    free(s);
    json_decref(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(series_of_one_agent_and_account),
        cmocka_unit_test(at_most_1000_agents),
    };
    return cmocka_run_group_tests_name("agent_stats_expose", tests, NULL, NULL);
}
