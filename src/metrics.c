/* metrics.c - placeholder until metrics land: records nothing. */
#include "metrics.h"

#include <stdlib.h>

#include "httpd.h"

struct db_metrics {
    int unused;
};

struct db_metrics *db_metrics_new(void) { return calloc(1, sizeof(struct db_metrics)); }
void db_metrics_free(struct db_metrics *m) { free(m); }
void db_metrics_webhook(struct db_metrics *m, const char *p, const char *a, const char *o)
{
    (void)m, (void)p, (void)a, (void)o;
}
void db_metrics_store_latency(struct db_metrics *m, double s) { (void)m, (void)s; }
void db_metrics_events(struct db_metrics *m, const char *p, const char *k, long n)
{
    (void)m, (void)p, (void)k, (void)n;
}
void db_metrics_send(struct db_metrics *m, const char *p, const char *o, const char *c)
{
    (void)m, (void)p, (void)o, (void)c;
}
void db_metrics_dead_letter(struct db_metrics *m) { (void)m; }
void db_metrics_redis_state(struct db_metrics *m, int up) { (void)m, (void)up; }
void db_metrics_first_response(struct db_metrics *m, double s) { (void)m, (void)s; }
void db_metrics_handle(struct db_gateway *gw, struct db_httpd_req *req)
{
    (void)gw;
    db_httpd_respond_error(req, 501, "not_implemented", "metrics are not available yet");
}
