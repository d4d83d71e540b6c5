/* metrics.c - the per-process registry behind GET /metrics.
 *
 * One gateway process is one libevent thread, so the registry has no locks.  Each labelled
 * family keeps its series in an array sorted by label values: a lookup is a binary search,
 * and only the first sight of a label set allocates.  Families are capped at MAX_SERIES so
 * a platform sending ever new error codes (or a scanner probing webhook URLs) cannot grow
 * memory or the scrape without bound; what is dropped is counted.
 *
 * The Redis gauges are not kept here: they are read when Prometheus scrapes, so they are
 * never stale and cost nothing between scrapes. */
#include "metrics/metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "deskbridge/connector.h"
#include "conf/config.h"
#include "services/services.h"
#include "http/router.h"
#include "net/httpd.h"
#include "log/log.h"
#include "metrics/agent_stats.h"
#include "metrics/text_out.h"
#include "redis/keys.h"
#include "redis/redis.h"
#include "redis/scripts.h"
#include "store/store.h"
#include "util/text.h"

#ifndef DB_VERSION
#define DB_VERSION "unknown"
#endif

#define MAX_LABELS 3
#define MAX_SERIES 1000       /* per family */
#define MAX_LABEL_BYTES 64    /* longer values are cut (at a UTF-8 boundary) */
#define MAX_GROUPS 64         /* consumer groups reported per stream */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- labelled counters ---- */

struct series {
    char *v[MAX_LABELS];
    unsigned long long value;
};

struct family {
    const char *name, *help;
    int nlabels;
    const char *labels[MAX_LABELS];
    struct series *s;
    size_t n, cap;
    unsigned long long dropped; /* label sets refused by the cap or by ENOMEM */
};

/* ---- histograms ---- */

#define MAX_BUCKETS 16

struct histogram {
    const char *name, *help;
    const double *le;
    size_t nle;
    unsigned long long counts[MAX_BUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    unsigned long long count;
    double sum;
};

/* Stream writes are a Lua script round trip: sub-millisecond normally, seconds when Redis
 * stalls (the command timeout defaults to 2 s, hence the 2.5 s top bucket). */
static const double write_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,   0.1,   0.25,   0.5,   1,    2.5};
/* First responses are human: from seconds to a day (a weekend shows as +Inf). */
static const double response_buckets[] = {10,   30,   60,    120,   300,   600,
                                          1800, 3600, 7200, 14400, 28800, 86400};

/* Survey answers are 1 to 5: one bucket per score. */
static const double score_buckets[] = {1, 2, 3, 4, 5};

enum {
    FAM_WEBHOOKS, FAM_EVENTS, FAM_SENDS, FAM_BRIDGE, FAM_MEDIA, FAM_SURVEYS, FAM_TRIMMED,
    FAM_TRIMMED_UNREAD, FAM_COUNT
};

struct db_metrics {
    struct family fam[FAM_COUNT];
    struct db_redis_script *conv_script; /* reads the dispatcher's counts at scrape time */
    struct histogram write_latency, first_response, survey_score;
    unsigned long long dead_letters;
    unsigned long long dispatched[2]; /* by the script, by plain updates */
    long long trim_held[3]; /* per trim_streams, at the last trim */
    unsigned long long reconnects;
    unsigned long long memory_trims;
    int redis_up;
    int redis_seen_up; /* a later "up" is a reconnect, the first one is not */
};

static void family_init(struct family *f, const char *name, const char *help, int nlabels,
                        const char *l0, const char *l1, const char *l2)
{
    f->name = name;
    f->help = help;
    f->nlabels = nlabels;
    f->labels[0] = l0;
    f->labels[1] = l1;
    f->labels[2] = l2;
}

static void histogram_init(struct histogram *h, const char *name, const char *help,
                           const double *le, size_t nle)
{
    h->name = name;
    h->help = help;
    h->le = le;
    h->nle = nle;
}

struct db_metrics *db_metrics_new(void)
{
    struct db_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    family_init(&m->fam[FAM_WEBHOOKS], "deskbridge_webhooks_total",
                "Inbound webhook requests by platform, account and outcome.", 3, "platform",
                "account", "outcome");
    family_init(&m->fam[FAM_EVENTS], "deskbridge_events_total",
                "Normalized events written to the events stream, by platform and kind.", 2,
                "platform", "kind", NULL);
    family_init(&m->fam[FAM_SENDS], "deskbridge_sends_total",
                "Outbound send attempts by platform, outcome (sent, failed, retry) and error "
                "class (the platform's error code, empty when none).",
                3, "platform", "outcome", "error_class");
    family_init(&m->fam[FAM_BRIDGE], "deskbridge_bridge_calls_total",
                "Calls of a helpdesk bridge to its helpdesk or from it, by bridge, direction "
                "and outcome.", 3, "bridge", "direction", "outcome");
    family_init(&m->fam[FAM_MEDIA], "deskbridge_media_files_total",
                "Media store outcomes by platform, outcome (stored, lost, retry) and reason "
                "(why a file was lost or retried, empty when stored).",
                3, "platform", "outcome", "reason");
    family_init(&m->fam[FAM_SURVEYS], "deskbridge_surveys_total",
                "Satisfaction surveys by outcome: sent (queued to the customer), skipped_window "
                "(WhatsApp's 24-hour window had closed), answered, commented.",
                1, "outcome", NULL, NULL);
    family_init(&m->fam[FAM_TRIMMED], "deskbridge_stream_trimmed_total",
                "Entries this process's trimmer removed from a stream.", 1, "stream", NULL, NULL);
    family_init(&m->fam[FAM_TRIMMED_UNREAD], "deskbridge_stream_trimmed_unread_total",
                "Entries removed past stream_maxlen_hard although a consumer group had not "
                "read them.", 1, "stream", NULL, NULL);
    histogram_init(&m->survey_score, "deskbridge_survey_score",
                   "Satisfaction survey answers, 1 (poor) to 5 (excellent).", score_buckets,
                   sizeof score_buckets / sizeof score_buckets[0]);
    histogram_init(&m->write_latency, "deskbridge_stream_write_seconds",
                   "Duration of one ingest script round trip to Redis, in seconds.",
                   write_buckets, sizeof write_buckets / sizeof write_buckets[0]);
    histogram_init(&m->first_response, "deskbridge_first_response_seconds",
                   "Time from a conversation's first customer message to the agent's first "
                   "reply, in seconds.",
                   response_buckets, sizeof response_buckets / sizeof response_buckets[0]);
    m->conv_script = db_redis_script_new(db_lua_metrics_convs);
    if (!m->conv_script) {
        db_metrics_free(m);
        return NULL;
    }
    return m;
}

void db_metrics_free(struct db_metrics *m)
{
    if (!m) return;
    db_redis_script_free(m->conv_script);
    for (int f = 0; f < FAM_COUNT; f++) {
        for (size_t i = 0; i < m->fam[f].n; i++)
            for (int l = 0; l < m->fam[f].nlabels; l++) free(m->fam[f].s[i].v[l]);
        free(m->fam[f].s);
    }
    free(m);
}

/* A label value safe to keep: NULL becomes "", long values are cut at a character boundary
 * and invalid UTF-8 (which the exposition format forbids) is replaced as a whole.  Writes
 * into out (MAX_LABEL_BYTES + 1). */
static const char *clean_value(const char *v, char *out)
{
    if (!v) return "";
    size_t len = strlen(v);
    if (len > MAX_LABEL_BYTES) {
        len = MAX_LABEL_BYTES;
        while (len > 0 && ((unsigned char)v[len] & 0xC0) == 0x80) len--;
    }
    memcpy(out, v, len);
    out[len] = '\0';
    return db_utf8_valid(out, len) ? out : "invalid_utf8";
}

/* Platform names come from the URL for unknown accounts: only compiled-in platforms keep
 * their name, anything else is "other", so probing URLs cannot mint series. */
static const char *known_platform(const char *p)
{
    return p && db_connector_find(p) ? p : "other";
}

static int series_cmp(const struct family *f, const struct series *s, const char *const *v)
{
    for (int l = 0; l < f->nlabels; l++) {
        int c = strcmp(s->v[l], v[l]);
        if (c) return c;
    }
    return 0;
}

/* Adds n to the series of the label values v (f->nlabels of them, already clean). */
static void family_add(struct family *f, const char *const *v, unsigned long long n)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = series_cmp(f, &f->s[mid], v);
        if (c == 0) {
            f->s[mid].value += n;
            return;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (f->n >= MAX_SERIES) goto fail;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct series *s = realloc(f->s, cap * sizeof *s);
        if (!s) goto fail;
        f->s = s;
        f->cap = cap;
    }
    struct series add = {.value = n};
    for (int l = 0; l < f->nlabels; l++) {
        add.v[l] = strdup(v[l]);
        if (!add.v[l]) {
            for (int k = 0; k < l; k++) free(add.v[k]);
            goto fail;
        }
    }
    memmove(&f->s[lo + 1], &f->s[lo], (f->n - lo) * sizeof *f->s);
    f->s[lo] = add;
    f->n++;
    return;
fail:
    f->dropped++;
}

static void histogram_observe(struct histogram *h, double x)
{
    if (isnan(x)) return;
    if (x < 0) x = 0; /* a clock step must not make a negative sum */
    size_t b = 0;
    while (b < h->nle && x > h->le[b]) b++;
    h->counts[b]++;
    h->count++;
    h->sum += x;
}

void db_metrics_webhook(struct db_metrics *m, const char *platform, const char *account,
                        const char *outcome)
{
    if (!m) return;
    char b[MAX_LABELS][MAX_LABEL_BYTES + 1];
    const char *v[] = {clean_value(known_platform(platform), b[0]), clean_value(account, b[1]),
                       clean_value(outcome, b[2])};
    family_add(&m->fam[FAM_WEBHOOKS], v, 1);
}

void db_metrics_store_latency(struct db_metrics *m, double seconds)
{
    if (m) histogram_observe(&m->write_latency, seconds);
}

void db_metrics_events(struct db_metrics *m, const char *platform, const char *kind, long n)
{
    if (!m || n <= 0) return;
    char b[2][MAX_LABEL_BYTES + 1];
    const char *v[] = {clean_value(known_platform(platform), b[0]), clean_value(kind, b[1])};
    family_add(&m->fam[FAM_EVENTS], v, (unsigned long long)n);
}

void db_metrics_send(struct db_metrics *m, const char *platform, const char *outcome,
                     const char *error_class)
{
    if (!m) return;
    char b[MAX_LABELS][MAX_LABEL_BYTES + 1];
    const char *v[] = {clean_value(known_platform(platform), b[0]), clean_value(outcome, b[1]),
                       clean_value(error_class, b[2])};
    family_add(&m->fam[FAM_SENDS], v, 1);
}

void db_metrics_media(struct db_metrics *m, const char *platform, const char *outcome,
                      const char *reason)
{
    if (!m) return;
    char b[MAX_LABELS][MAX_LABEL_BYTES + 1];
    const char *v[] = {clean_value(known_platform(platform), b[0]), clean_value(outcome, b[1]),
                       clean_value(reason, b[2])};
    family_add(&m->fam[FAM_MEDIA], v, 1);
}

void db_metrics_bridge(struct db_metrics *m, const char *bridge, const char *direction,
                       const char *outcome)
{
    if (!m) return;
    char b[MAX_LABELS][MAX_LABEL_BYTES + 1];
    const char *v[] = {clean_value(bridge, b[0]), clean_value(direction, b[1]),
                       clean_value(outcome, b[2])};
    family_add(&m->fam[FAM_BRIDGE], v, 1);
}

void db_metrics_survey(struct db_metrics *m, const char *outcome)
{
    if (!m) return;
    char b[MAX_LABELS][MAX_LABEL_BYTES + 1];
    const char *v[] = {clean_value(outcome, b[0])};
    family_add(&m->fam[FAM_SURVEYS], v, 1);
}

void db_metrics_survey_score(struct db_metrics *m, int score)
{
    if (m && score >= 1 && score <= 5) histogram_observe(&m->survey_score, score);
}

void db_metrics_dead_letter(struct db_metrics *m)
{
    if (m) m->dead_letters++;
}

void db_metrics_dispatched(struct db_metrics *m, int plain, size_t n)
{
    if (m) m->dispatched[plain ? 1 : 0] += n;
}

/* The streams the trimmer keeps, in the order of db_metrics.trim_held. */
static const char *const trim_streams[] = {DB_KEY_EVENTS, DB_KEY_STATUS, DB_KEY_OUTBOX};

void db_metrics_stream_trimmed(struct db_metrics *m, const char *stream, long long removed,
                               long long unread, long long held)
{
    for (int i = 0; m && i < 3; i++) {
        if (strcmp(stream, trim_streams[i]) != 0) continue;
        family_add(&m->fam[FAM_TRIMMED], &trim_streams[i],
                   removed > 0 ? (unsigned long long)removed : 0);
        family_add(&m->fam[FAM_TRIMMED_UNREAD], &trim_streams[i],
                   unread > 0 ? (unsigned long long)unread : 0);
        m->trim_held[i] = held > 0 ? held : 0;
    }
}

void db_metrics_memory_trim(struct db_metrics *m)
{
    if (m) m->memory_trims++;
}

void db_metrics_redis_state(struct db_metrics *m, int up)
{
    if (!m) return;
    if (up && !m->redis_up && m->redis_seen_up) m->reconnects++;
    if (up) m->redis_seen_up = 1;
    m->redis_up = up ? 1 : 0;
}

void db_metrics_first_response(struct db_metrics *m, double seconds)
{
    if (m) histogram_observe(&m->first_response, seconds);
}

static void render_family(struct db_out *o, const struct family *f)
{
    db_out_header(o, f->name, "counter", f->help);
    for (size_t i = 0; i < f->n; i++) {
        db_out_printf(o, "%s", f->name);
        db_out_labels(o, f->nlabels, f->labels, (const char *const *)f->s[i].v);
        db_out_printf(o, " %llu\n", f->s[i].value);
    }
}

/* A counter by way="script" (n[0]) and way="plain" (n[1]). */
static void render_ways(struct db_out *o, const char *name, const char *help,
                        const unsigned long long n[2])
{
    static const char *const ways[2] = {"script", "plain"};
    const char *way = "way";
    db_out_header(o, name, "counter", help);
    for (int i = 0; i < 2; i++) db_out_sample(o, name, 1, &way, &ways[i], (double)n[i]);
}

static void render_histogram(struct db_out *o, const struct histogram *h)
{
    db_out_header(o, h->name, "histogram", h->help);
    unsigned long long cum = 0;
    for (size_t b = 0; b < h->nle; b++) {
        cum += h->counts[b];
        db_out_printf(o, "%s_bucket{le=\"%g\"} %llu\n", h->name, h->le[b], cum);
    }
    db_out_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", h->name, h->count);
    db_out_printf(o, "%s_sum ", h->name);
    db_out_double(o, h->sum);
    db_out_printf(o, "\n%s_count %llu\n", h->name, h->count);
}

static void render_registry(struct db_out *o, const struct db_metrics *m)
{
    for (int f = 0; f < FAM_COUNT; f++) render_family(o, &m->fam[f]);
    db_out_header(o, "deskbridge_metric_series_dropped_total", "counter",
                  "Label sets not recorded because their metric reached its series cap.");
    for (int f = 0; f < FAM_COUNT; f++) {
        const char *name = "metric";
        db_out_printf(o, "deskbridge_metric_series_dropped_total");
        db_out_labels(o, 1, &name, &m->fam[f].name);
        db_out_printf(o, " %llu\n", m->fam[f].dropped);
    }
    render_histogram(o, &m->write_latency);
    render_histogram(o, &m->first_response);
    render_histogram(o, &m->survey_score);
    db_out_gauge1(o, "deskbridge_dead_letters_total", "counter",
                  "Outbox entries moved to the dead-letter stream.", (double)m->dead_letters);
    render_ways(o, "deskbridge_dispatched_events_total",
                "Events the dispatcher applied (or found applied) and acknowledged, by way: "
                "plain updates in one transaction, or the dispatcher's script.",
                m->dispatched);
    db_out_header(o, "deskbridge_stream_trim_held_entries", "gauge",
                  "Entries of a stream over its cap kept because a consumer group has not read "
                  "them (at the last trim).");
    const char *label = "stream";
    for (int i = 0; i < 3; i++)
        db_out_sample(o, "deskbridge_stream_trim_held_entries", 1, &label, &trim_streams[i],
                      (double)m->trim_held[i]);
    db_out_gauge1(o, "deskbridge_redis_up", "gauge",
                  "1 when the Redis connection is up and ready, else 0.", m->redis_up);
    db_out_gauge1(o, "deskbridge_redis_reconnects_total", "counter",
                  "Times the Redis connection came back after being lost.", (double)m->reconnects);
    db_out_gauge1(o, "deskbridge_memory_trims_total", "counter",
                  "Times freed memory was handed back to the system after a burst of "
                  "connections closed.",
                  (double)m->memory_trims);
}

/* Not declared in metrics.h, whose contract is fixed: the unit tests declare it themselves.
 * Renders the registry's own series (no process or Redis gauges) into *out, NUL-terminated,
 * which the caller frees with free().  DB_OK or DB_ENOMEM. */
int db_metrics_render(const struct db_metrics *m, char **out, size_t *len)
{
    struct db_out o = {0};
    render_registry(&o, m);
    if (o.failed || !o.p) {
        free(o.p);
        return DB_ENOMEM;
    }
    *out = o.p;
    if (len) *len = o.len;
    return DB_OK;
}

/* ---- process metrics ---- */

static void render_process(struct db_out *o, struct db_services *svc)
{
    const char *vname = "version", *version = DB_VERSION;
    db_out_header(o, "deskbridge_build_info", "gauge", "Always 1; the version is in the label.");
    db_out_sample(o, "deskbridge_build_info", 1, &vname, &version, 1);

    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) == 2)
            db_out_gauge1(o, "process_resident_memory_bytes", "gauge",
                          "Resident memory size in bytes.",
                          (double)resident * (double)sysconf(_SC_PAGESIZE));
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') n++;
        closedir(d);
        /* the directory stream itself held one while counting */
        db_out_gauge1(o, "process_open_fds", "gauge", "Number of open file descriptors.",
                      (double)(n > 0 ? n - 1 : 0));
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
        db_out_gauge1(o, "process_cpu_seconds_total", "counter",
                      "Total user and system CPU time spent in seconds.", cpu);
    }
    unsigned long long by[2];
    db_store_ingest_ways(svc->store, &by[0], &by[1]);
    render_ways(o, "deskbridge_stored_webhooks_total",
                "Webhooks and long-poll batches written (or found written) in Redis, by way: "
                "plain commands in one transaction, or an ingest script.",
                by);
    db_out_gauge1(o, "deskbridge_http_connections", "gauge", "HTTP connections open now.",
                  svc->httpd ? (double)db_httpd_connections(svc->httpd) : 0);
    db_out_gauge1(o, "deskbridge_http_inflight", "gauge",
                  "HTTP requests received and not yet answered (this scrape included).",
                  svc->httpd ? (double)db_httpd_inflight(svc->httpd) : 0);
}

/* ---- Redis gauges, read at scrape time ---- */

static const char *const streams[] = {DB_KEY_EVENTS, DB_KEY_OUTBOX, DB_KEY_STATUS, DB_KEY_DEAD};
#define NSTREAMS 4

struct group {
    char name[MAX_LABEL_BYTES + 1];
    long long pending;
    long long lag;   /* entries not yet delivered to the group; -1 when Redis cannot tell */
    double oldest_s; /* idle time of the lowest pending id; 0 when nothing is pending */
};

struct scrape;

/* One command's callback context: which scrape, and what the answer is for. */
struct pending_cmd {
    struct scrape *sc;
    int stream;
    int group; /* index into the stream's groups, -1 for stream-level commands */
};

struct scrape {
    struct db_services *svc;
    struct db_httpd_req *req;
    int outstanding;
    int failed;      /* a command timed out or the connection was down */
    long long xlen[NSTREAMS];
    int convs_ok; /* the dispatcher's counts were read (absent: gauge left out) */
    long long convs[4];
    json_t *people; /* per-agent and per-account statistics (absent: families left out) */
    struct group *groups[NSTREAMS];
    size_t ngroups[NSTREAMS];
    char keys[NSTREAMS][160];
};

static void scrape_done(struct scrape *sc);
static void xpending_cb(int status, const redisReply *reply, const char *errstr, void *arg);

static struct pending_cmd *cmd_ctx(struct scrape *sc, int stream, int group)
{
    struct pending_cmd *c = malloc(sizeof *c);
    if (!c) {
        sc->failed = 1;
        return NULL;
    }
    c->sc = sc;
    c->stream = stream;
    c->group = group;
    sc->outstanding++;
    return c;
}

/* Ends one command; the last one answers the scrape. */
static void cmd_finish(struct pending_cmd *c)
{
    struct scrape *sc = c->sc;
    free(c);
    if (--sc->outstanding == 0) scrape_done(sc);
}

static void xlen_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)errstr;
    struct pending_cmd *c = arg;
    if (status != DB_OK || !reply || reply->type != REDIS_REPLY_INTEGER) c->sc->failed = 1;
    else c->sc->xlen[c->stream] = reply->integer;
    cmd_finish(c);
}

/* Field of a flat key/value array reply (RESP2 maps), borrowed; NULL when absent. */
static const redisReply *kv_get(const redisReply *r, const char *key)
{
    if (!r || r->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, key) == 0)
            return r->element[i + 1];
    return NULL;
}

static void xinfo_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)errstr;
    struct pending_cmd *c = arg;
    struct scrape *sc = c->sc;
    int s = c->stream;
    if (status != DB_OK || !reply) {
        sc->failed = 1;
        goto done;
    }
    /* A stream nobody created yet answers "no such key": no groups, not a failure. */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) goto done;
    size_t n = reply->elements < MAX_GROUPS ? reply->elements : MAX_GROUPS;
    sc->groups[s] = calloc(n, sizeof *sc->groups[s]);
    if (!sc->groups[s]) {
        sc->failed = 1;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *name = kv_get(reply->element[i], "name");
        const redisReply *pend = kv_get(reply->element[i], "pending");
        if (!name || name->type != REDIS_REPLY_STRING) continue;
        struct group *g = &sc->groups[s][sc->ngroups[s]];
        char tmp[MAX_LABEL_BYTES + 1];
        snprintf(g->name, sizeof g->name, "%s", clean_value(name->str, tmp));
        g->pending = pend && pend->type == REDIS_REPLY_INTEGER ? pend->integer : 0;
        /* Redis 7 says how far the group is behind; older servers, or a group whose count
         * Redis lost track of (nil), leave it out. */
        const redisReply *lag = kv_get(reply->element[i], "lag");
        g->lag = lag && lag->type == REDIS_REPLY_INTEGER ? lag->integer : -1;
        if (g->pending > 0 && !sc->failed) {
            struct pending_cmd *pc = cmd_ctx(sc, s, (int)sc->ngroups[s]);
            if (pc)
                db_redis_cmd(sc->svc->redis, xpending_cb, pc, "XPENDING %s %b - + 1",
                             sc->keys[s], name->str, (size_t)name->len);
        }
        sc->ngroups[s]++;
    }
done:
    cmd_finish(c);
}

static void xpending_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    (void)errstr;
    struct pending_cmd *c = arg;
    struct scrape *sc = c->sc;
    if (status != DB_OK || !reply) {
        sc->failed = 1;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
               reply->element[0]->type == REDIS_REPLY_ARRAY &&
               reply->element[0]->elements >= 3 &&
               reply->element[0]->element[2]->type == REDIS_REPLY_INTEGER) {
        sc->groups[c->stream][c->group].oldest_s =
            (double)reply->element[0]->element[2]->integer / 1000.0;
    }
    cmd_finish(c);
}

static const char *const conv_states[] = {"open", "queued", "assigned", "closed"};

static void convs_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct pending_cmd *c = arg;
    struct scrape *sc = c->sc;
    if (status != DB_OK || !reply) {
        sc->failed = 1;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4) {
        sc->convs_ok = 1;
        for (size_t i = 0; i < 4; i++) {
            if (reply->element[i]->type != REDIS_REPLY_INTEGER) sc->convs_ok = 0;
            else sc->convs[i] = reply->element[i]->integer;
        }
    } else {
        /* Only this gauge is lost (e.g. a key of another type under the prefix); the
         * queue gauges are still good. */
        struct db_log_ctx ctx = {"metrics", NULL, NULL, NULL};
        db_log(DB_LOG_WARN, &ctx, "could not count conversations: %s",
               reply->type == REDIS_REPLY_ERROR ? reply->str : (errstr ? errstr : "bad reply"));
    }
    cmd_finish(c);
}

static void people_cb(json_t *stats, void *arg)
{
    struct pending_cmd *c = arg;
    /* Like the conversation gauge, only these families are lost when it fails. */
    if (stats) c->sc->people = json_incref(stats);
    cmd_finish(c);
}

static void expo_header(void *o, const char *name, const char *type, const char *help)
{
    db_out_header(o, name, type, help);
}

/* Label values cleaned as the registry's are (cut, UTF-8 checked). */
static void expo_sample(void *o, const char *name, int n, const char *const *names,
                        const char *const *vals, double value)
{
    char buf[MAX_LABELS + 1][MAX_LABEL_BYTES + 1];
    const char *v[MAX_LABELS + 1];
    if (n > MAX_LABELS + 1) return;
    for (int i = 0; i < n; i++) v[i] = clean_value(vals[i], buf[i]);
    db_out_sample(o, name, n, names, v, value);
}

enum group_gauge { GROUP_PENDING, GROUP_LAG, GROUP_OLDEST_S };

/* A gauge per consumer group of each stream; a lag Redis cannot tell is left out. */
static void render_groups(struct db_out *o, const struct scrape *sc, const char *name,
                          const char *help, enum group_gauge which)
{
    static const char *const names[] = {"stream", "group"};
    db_out_header(o, name, "gauge", help);
    for (int s = 0; s < NSTREAMS; s++)
        for (size_t g = 0; g < sc->ngroups[s]; g++) {
            const struct group *gr = &sc->groups[s][g];
            if (which == GROUP_LAG && gr->lag < 0) continue;
            const char *v[] = {streams[s], gr->name};
            double x = which == GROUP_PENDING ? (double)gr->pending
                       : which == GROUP_LAG   ? (double)gr->lag
                                              : gr->oldest_s;
            db_out_sample(o, name, 2, names, v, x);
        }
}

static void render_redis(struct db_out *o, const struct scrape *sc)
{
    const char *sname = "stream";
    db_out_header(o, "deskbridge_queue_length", "gauge",
                  "Entries in each Redis stream (XLEN).");
    for (int s = 0; s < NSTREAMS; s++)
        db_out_sample(o, "deskbridge_queue_length", 1, &sname, &streams[s], (double)sc->xlen[s]);
    render_groups(o, sc, "deskbridge_pending_entries",
                  "Entries delivered to a consumer group and not yet acknowledged.", GROUP_PENDING);
    render_groups(o, sc, "deskbridge_group_lag_entries",
                  "Entries of the stream not yet delivered to a consumer group (Redis 7 and "
                  "later).", GROUP_LAG);
    render_groups(o, sc, "deskbridge_pending_oldest_seconds",
                  "Idle time of the oldest unacknowledged entry of a consumer group (0 when "
                  "none), in seconds.", GROUP_OLDEST_S);
    if (sc->people) {
        const struct db_expo w = {o, expo_header, expo_sample};
        db_agent_stats_expose(sc->people, &w);
    }
    if (!sc->convs_ok) return;
    const char *stname = "state";
    db_out_header(o, "deskbridge_conversations", "gauge",
                  "Conversations known to the dispatcher, by state.");
    for (int i = 0; i < 4; i++)
        db_out_sample(o, "deskbridge_conversations", 1, &stname, &conv_states[i],
                      (double)sc->convs[i]);
}

static void scrape_free(struct scrape *sc)
{
    for (int s = 0; s < NSTREAMS; s++) free(sc->groups[s]);
    json_decref(sc->people);
    free(sc);
}

static void scrape_done(struct scrape *sc)
{
    struct db_services *svc = sc->svc;
    /* The gateway is shutting down (its HTTP server is gone, and the request with it):
     * there is nobody to answer. */
    if (!svc->httpd || !svc->metrics) goto done;
    struct db_out o = {0};
    render_registry(&o, svc->metrics);
    render_process(&o, svc);
    db_out_gauge1(&o, "deskbridge_scrape_redis_ok", "gauge",
                  "1 when this scrape read the Redis gauges, 0 when Redis did not answer in "
                  "time and they were left out.",
                  sc->failed ? 0 : 1);
    if (!sc->failed) render_redis(&o, sc);
    if (o.failed) {
        struct db_log_ctx ctx = {"metrics", NULL, NULL, NULL};
        db_log(DB_LOG_ERROR, &ctx, "could not render the metrics (out of memory)");
        db_httpd_respond_error(sc->req, 500, "internal", "out of memory");
    } else {
        db_httpd_respond(sc->req, 200, CONTENT_TYPE, o.p, o.len, NULL);
    }
    free(o.p);
done:
    scrape_free(sc);
}

static void handle(struct db_services *svc, struct db_httpd_req *req)
{
    struct scrape *sc = calloc(1, sizeof *sc);
    if (!sc) {
        db_httpd_respond_error(req, 500, "internal", "out of memory");
        return;
    }
    sc->svc = svc;
    sc->req = req;
    /* Held while commands are being sent, so callbacks that run at once (connection down)
     * cannot answer before every command is out. */
    sc->outstanding = 1;
    if (!svc->redis || !svc->store || !db_redis_is_up(svc->redis)) sc->failed = 1;
    for (int s = 0; s < NSTREAMS && !sc->failed; s++) {
        db_store_key(svc->store, streams[s], sc->keys[s], sizeof sc->keys[s]);
        struct pending_cmd *c = cmd_ctx(sc, s, -1);
        if (c) db_redis_cmd(svc->redis, xlen_cb, c, "XLEN %s", sc->keys[s]);
        c = sc->failed ? NULL : cmd_ctx(sc, s, -1);
        if (c) db_redis_cmd(svc->redis, xinfo_cb, c, "XINFO GROUPS %s", sc->keys[s]);
    }
    struct pending_cmd *c = sc->failed ? NULL : cmd_ctx(sc, -1, -1);
    if (c) {
        char k[4][160], agentconvs[160];
        const char *keys[] = {db_store_key(svc->store, DB_KEY_CONVS, k[0], sizeof k[0]),
                              db_store_key(svc->store, DB_KEY_DISPATCH_ACTIVE, k[1], sizeof k[1]),
                              db_store_key(svc->store, DB_KEY_DISPATCH_QUEUE, k[2], sizeof k[2]),
                              db_store_key(svc->store, DB_KEY_AGENTS, k[3], sizeof k[3])};
        const char *args[] = {db_store_key(svc->store, DB_KEY_AGENT_CONVS ":{", agentconvs,
                                           sizeof agentconvs)};
        db_redis_eval(svc->redis, svc->metrics->conv_script, convs_cb, c, 4, keys, 1, args, NULL);
    }
    c = sc->failed ? NULL : cmd_ctx(sc, -1, -1);
    if (c) db_agent_stats_read(svc, people_cb, c);
    if (--sc->outstanding == 0) scrape_done(sc);
}

static void route(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)who;
    handle(arg, req);
}

int db_metrics_routes(struct db_services *svc, struct db_err *e)
{
    /* Open, like the health checks: a scraper holds no API token (docs/metrics.md). */
    const struct db_route r = {.method = "GET", .path = "/metrics", .access = DB_ROUTE_OPEN, .admin = 1,
                               .handler = route, .arg = svc};
    return db_router_add(svc->router, &r) == DB_OK ? DB_OK
                                                   : db_err_set(e, DB_ENOMEM, "out of memory");
}
