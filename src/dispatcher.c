/* dispatcher.c - placeholder until the dispatcher lands: consumes nothing. */
#include "dispatcher.h"

#include <stddef.h>

int db_dispatcher_start(struct db_gateway *gw, struct db_dispatcher **out, struct db_err *e)
{
    (void)gw, (void)e;
    *out = NULL;
    return DB_OK;
}
void db_dispatcher_stop_reading(struct db_dispatcher *d) { (void)d; }
unsigned long db_dispatcher_inflight(const struct db_dispatcher *d) { (void)d; return 0; }
void db_dispatcher_free(struct db_dispatcher *d) { (void)d; }
int db_dispatch_api_handle(struct db_gateway *gw, struct db_httpd_req *req)
{
    (void)gw, (void)req;
    return 0;
}
void db_dispatch_note_reply(struct db_gateway *gw, const char *conversation,
                            const char *message_id, const char *agent_id)
{
    (void)gw, (void)conversation, (void)message_id, (void)agent_id;
}
int db_dispatch_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    (void)sec, (void)e;
    return DB_OK;
}
