/* autoreply.c - placeholder until automatic answers land. */
#include "autoreply.h"

#include <stddef.h>

#include "httpd.h"

int db_autoreply_start(struct db_gateway *gw, struct db_autoreply **out, struct db_err *e)
{
    (void)gw, (void)e;
    *out = NULL;
    return DB_OK;
}
void db_autoreply_stop_reading(struct db_autoreply *a) { (void)a; }
unsigned long db_autoreply_inflight(const struct db_autoreply *a) { (void)a; return 0; }
void db_autoreply_free(struct db_autoreply *a) { (void)a; }
void db_canned_list_handle(struct db_gateway *gw, struct db_httpd_req *req)
{
    (void)gw;
    db_httpd_respond_error(req, 501, "not_implemented", "canned responses are not available yet");
}
int db_canned_expand(const struct db_config *cfg, json_t *cmd, struct db_err *e)
{
    (void)cfg, (void)cmd, (void)e;
    return DB_OK;
}
