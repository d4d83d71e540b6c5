/* features.c - the kinds of feature section a configuration file may hold, and the module
 * that checks each.  A module that adds a section kind adds its row here. */
#include "conf/config.h"
#include "dispatch/dispatcher.h"
#include "hookout/hookout.h"
#include "auto/hours.h"
#include "bridge/chatwoot/chatwoot.h"
#include "send/canned.h"

const struct db_feature_section db_feature_sections[] = {
    {.name = "dispatch", .named = 0, .check = db_dispatch_conf_check},
    {.name = "schedule", .named = 1, .check = db_schedule_conf_check},
    {.name = "keyword", .named = 1, .check = db_keyword_conf_check},
    {.name = "canned", .named = 1, .check = db_canned_conf_check},
    {.name = "helpdesk_webhook", .named = 1, .check = db_hookout_conf_check},
    {.name = "chatwoot", .named = 1, .check = db_chatwoot_conf_check},
    {.name = "tenant", .named = 1, .check = db_tenant_conf_check,
     .repeatable = db_tenant_repeatable},
    {.name = NULL},
};
