/* features.h - the feature sections ([dispatch], [schedule NAME], [keyword NAME], [canned
 * NAME], [helpdesk_webhook NAME], [chatwoot NAME], [tenant NAME]) this build knows, for
 * db_config_load. */
#ifndef DB_FEATURES_H
#define DB_FEATURES_H

struct db_conf_table;

/* NULL-terminated; every table is a module's constant. */
extern const struct db_conf_table *const db_feature_tables[];

#endif
