/* hookout.c - placeholder until helpdesk webhooks land: delivers nothing. */
#include "hookout.h"

#include <stddef.h>

int db_hookout_start(struct db_gateway *gw, struct db_hookout **out, struct db_err *e)
{
    (void)gw, (void)e;
    *out = NULL;
    return DB_OK;
}
void db_hookout_stop_reading(struct db_hookout *h) { (void)h; }
unsigned long db_hookout_inflight(const struct db_hookout *h) { (void)h; return 0; }
void db_hookout_free(struct db_hookout *h) { (void)h; }
int db_hookout_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    (void)sec, (void)e;
    return DB_OK;
}
