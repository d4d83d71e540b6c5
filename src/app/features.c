/* features.c - the kinds of feature section a configuration file may hold: each module's key
 * table (util/schema.h).  A module that adds a section kind adds its table here; the loader
 * (src/conf/) is handed this list and knows no feature itself. */
#include "app/features.h"

#include "conf/loader.h"

#include "hours/hours.h"
#include "auto/rules.h"
#include "chatwoot/chatwoot.h"
#include "console/console.h"
#include "dispatch/dispatcher.h"
#include "dispatch/survey.h"
#include "hookout/hookout.h"
#include "mediastore/mediastore.h"
#include "send/canned.h"

const struct db_conf_table *const db_feature_tables[] = {
    &db_dispatch_conf_table, &db_schedule_conf_table, &db_keyword_conf_table,
    &db_canned_conf_table,   &db_hookout_conf_table,  &db_chatwoot_conf_table,
    &db_cfgl_tenant_table,   &db_console_conf_table,  &db_mediastore_conf_table,
    &db_survey_conf_table,
    NULL,
};
