/* agent_stats.h - per-agent and per-account statistics of the last hour and day: conversations
 * handled, first-response median and p90, satisfaction average (docs/dispatcher.md
 * "Statistics").  Read from the dispatcher's sample sets by one script run
 * (src/redis/scripts/agent_stats.lua), whose cost is bounded by a day's samples and the
 * registered agents, never by the number of conversations.  Shared by GET /v1/stats, which
 * shows the JSON, and /metrics, which writes it as gauges. */
#ifndef DB_METRICS_AGENT_STATS_H
#define DB_METRICS_AGENT_STATS_H

#include <jansson.h>

struct db_services;

/* stats: {"agents": {id: S}, "accounts": {"platform:account": S}, "satisfaction":
 * {"hour": {average, count}, "day": ...}} with S = {handled: {hour, day}, first_response:
 * {hour: {median_ms, p90_ms, count}, day}, satisfaction: {hour: {average, count}, day}};
 * NULL when Redis did not answer or answered something else.  Borrowed: valid during the
 * call only (json_incref to keep it). */
typedef void (*db_agent_stats_cb)(json_t *stats, void *arg);

/* Reads the statistics as of now; cb is called exactly once (at once when out of memory or
 * the connection is down). */
void db_agent_stats_read(struct db_services *svc, db_agent_stats_cb cb, void *arg);

/* Where db_agent_stats_expose writes: the exposition writer of the caller (metrics.c), so
 * escaping and number formatting stay in one place. */
struct db_expo {
    void *o;
    void (*header)(void *o, const char *name, const char *type, const char *help);
    /* one sample: name, n label names and values (unescaped), value */
    void (*sample)(void *o, const char *name, int n, const char *const *names,
                   const char *const *vals, double value);
};

/* Writes stats (as db_agent_stats_cb gets them) as the deskbridge_agent_* and
 * deskbridge_account_* families and deskbridge_satisfaction_* (docs/metrics.md).  Label
 * values are the registered agent ids and the configured accounts, so series stay bounded;
 * at most 1000 agents and 1000 accounts are written. */
void db_agent_stats_expose(const json_t *stats, const struct db_expo *w);

#endif
