/* routes.c - every console route, registered in one step, and the session lookup the router
 * uses for them (console.c): sign-in (auth_api.c), the agent's screens (agent_api.c), a
 * supervisor's figures (stats_api.c), the page's files (files.c). */
#include "console/console.h"
#include "console/console_internal.h"

#include "http/router.h"
#include "services/services.h"

int db_console_routes(struct db_services *svc, struct db_err *e)
{
    db_router_set_session_lookup(svc->router, db_console_session_lookup, svc);
    if (db_console_auth_routes(svc) != DB_OK || db_console_agent_routes(svc) != DB_OK ||
        db_console_stats_routes(svc) != DB_OK || db_console_file_routes(svc) != DB_OK)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}
