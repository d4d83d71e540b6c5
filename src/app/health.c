#include "app/health.h"

#include "conf/config.h"
#include "services/services.h"
#include "http/router.h"
#include "net/httpd.h"
#include "redis/redis.h"

static void healthz(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    (void)who, (void)arg;
    static const char ok[] = "{\"status\":\"ok\"}";
    db_httpd_respond(req, 200, "application/json", ok, sizeof ok - 1, NULL);
}

static void ready_cb(int status, const redisReply *reply, const char *errstr, void *arg)
{
    struct db_httpd_req *req = arg;
    (void)errstr;
    if (status == DB_OK && reply->type == REDIS_REPLY_STATUS) {
        static const char ok[] = "{\"status\":\"ready\"}";
        db_httpd_respond(req, 200, "application/json", ok, sizeof ok - 1, NULL);
    } else {
        static const char down[] =
            "{\"status\":\"not ready\",\"error\":{\"code\":\"redis\",\"message\":\"redis not writable\"}}";
        db_httpd_respond(req, 503, "application/json", down, sizeof down - 1, NULL);
    }
}

static void readyz(struct db_httpd_req *req, const struct db_caller *who, void *arg)
{
    struct db_services *svc = arg;
    if (svc->stopping) {
        db_httpd_respond_error(req, 503, "stopping", "shutting down");
        return;
    }
    /* Ready means writable: a replica or a full Redis answers PING but not SET. */
    db_redis_cmd(svc->redis, ready_cb, req, "SET %s:ready:%s 1 PX 10000", who->cfg->prefix,
                 svc->consumer);
}

int db_health_routes(struct db_services *svc, struct db_err *e)
{
    const struct db_route routes[] = {
        {.method = "GET", .path = "/healthz", .access = DB_ROUTE_OPEN, .handler = healthz},
        {.method = "GET", .path = "/readyz", .access = DB_ROUTE_OPEN, .handler = readyz,
         .arg = svc},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (db_router_add(svc->router, &routes[i]) != DB_OK)
            return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}
