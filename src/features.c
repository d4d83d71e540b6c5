/* features.c - the kinds of feature section a configuration file may hold, and the module
 * that checks each.  A module that adds a section kind adds its row here. */
#include "config.h"

const struct db_feature_section db_feature_sections[] = {
    {.name = "dispatch", .named = 0, .check = NULL},
    {.name = "schedule", .named = 1, .check = NULL},
    {.name = "keyword", .named = 1, .check = NULL},
    {.name = "canned", .named = 1, .check = NULL},
    {.name = "helpdesk_webhook", .named = 1, .check = NULL},
    {.name = NULL},
};
