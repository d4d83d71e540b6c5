/* rules.h - the [keyword NAME] sections as loaded: each section's keys in a struct, its
 * pattern compiled once per configuration load, and the choice of the rule that answers a
 * message.  docs/business-hours.md. */
#ifndef DB_AUTO_RULES_H
#define DB_AUTO_RULES_H

#include <regex.h>

#include <jansson.h>

#include "deskbridge/connector.h"
#include "deskbridge/status.h"
#include "hours/hours.h"

struct db_config;
struct db_conf_table;

/* A [keyword NAME] rule.  Owned by the configuration. */
struct db_keyword_rule {
    const char *name;
    const char *match, *regex;   /* exactly one is set */
    const char *language;        /* NULL: any */
    const char *accounts;        /* NULL: every account */
    struct db_account_list account_list; /* accounts, split at load */
    const char *answer;
    int resolve;                 /* the answer is enough: the conversation needs no agent */
    int has_rx;
    regex_t rx;                  /* regex, compiled when the configuration was loaded */
};

extern const struct db_conf_table db_keyword_conf_table;

/* Builds the section alone and drops it: DB_OK or DB_ECONFIG naming file, line and key. */
int db_keyword_conf_check(const struct db_conf_section *sec, struct db_err *e);

/* The first keyword rule (file order) that answers the message event ev, or NULL (also for
 * events that are not messages).  Borrowed from cfg. */
const struct db_keyword_rule *db_keyword_rule_for(const struct db_config *cfg,
                                                  const json_t *ev);
/* 1 when that rule says resolve = true. */
int db_keyword_resolves(const struct db_config *cfg, const json_t *ev);

/* The customer's language of ev ("uk" of "uk-UA"), lowercased, into lang (n bytes). */
void db_event_lang(const json_t *ev, char *lang, size_t n);

#endif
