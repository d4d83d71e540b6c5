/* media.c - placeholder until media download lands. */
#include "media.h"

#include "httpd.h"

void db_media_handle(struct db_gateway *gw, struct db_httpd_req *req, const char *platform,
                     const char *account, const char *media_id)
{
    (void)gw, (void)platform, (void)account, (void)media_id;
    db_httpd_respond_error(req, 501, "not_implemented", "media download is not available yet");
}
