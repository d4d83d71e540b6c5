/* memtrim.c - see memtrim.h. */
#include "app/memtrim.h"

#include <malloc.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log/log.h"
#include "metrics/metrics.h"
#include "net/httpd.h"

#define EVERY_MS 2000
#define MIN_CLOSED 32

struct db_memtrim {
    struct db_httpd *httpd;
    struct db_metrics *metrics;
    struct event *timer;
};

static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct db_memtrim *m = arg;
    (void)fd, (void)what;
    size_t peak = db_httpd_connections_peak(m->httpd), now = db_httpd_connections(m->httpd);
    if (peak < now + MIN_CLOSED || now > peak / 2) return;
    struct db_log_ctx ctx = {"main", NULL, NULL, NULL};
    db_log(DB_LOG_DEBUG, &ctx, "%zu of %zu connections closed; freed memory handed back",
           peak - now, peak);
    malloc_trim(0);
    db_metrics_memory_trim(m->metrics);
    db_httpd_connections_peak_reset(m->httpd);
}

struct db_memtrim *db_memtrim_new(struct event_base *base, struct db_httpd *httpd,
                                  struct db_metrics *metrics)
{
    struct db_memtrim *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->httpd = httpd;
    m->metrics = metrics;
    m->timer = event_new(base, -1, EV_PERSIST, tick, m);
    struct timeval tv = {EVERY_MS / 1000, (EVERY_MS % 1000) * 1000};
    if (!m->timer || event_add(m->timer, &tv) != 0) {
        db_memtrim_free(m);
        return NULL;
    }
    return m;
}

void db_memtrim_free(struct db_memtrim *m)
{
    if (!m) return;
    if (m->timer) event_free(m->timer);
    free(m);
}
