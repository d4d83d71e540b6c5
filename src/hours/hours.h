/* hours.h - business hours: a weekly schedule in an IANA time zone, with holidays, partial
 * days and one-off closures; and the small text rules of automatic answers (keyword
 * matching, placeholder expansion) that autoreply.c applies.  The only outside input is the
 * zone's TZif file, read once by db_schedule_parse; answering a question about an instant
 * reads no file and leaves the process's TZ alone.  docs/business-hours.md. */
#ifndef DB_HOURS_H
#define DB_HOURS_H

#include <stddef.h>
#include <time.h>

#include "deskbridge/connector.h"
#include "deskbridge/status.h"

struct db_schedule;
struct db_config;

/* Builds the schedule of a [schedule NAME] section (keys timezone, hours, holidays,
 * closures; the text keys are only checked for presence of allowed names), reading the
 * zone's TZif file: call it at configuration load, not per message.  DB_OK with *out
 * (free with db_schedule_free), or DB_ECONFIG with "FILE:LINE: KEY: what is wrong" in e. */
int db_schedule_parse(const struct db_conf_section *sec, struct db_schedule **out,
                      struct db_err *e) DB_MUST_CHECK;
void db_schedule_free(struct db_schedule *s); /* NULL-safe */

/* 1 when the schedule is open at the instant t, else 0. */
int db_schedule_is_open(const struct db_schedule *s, time_t t);

/* The next instant >= t at which the schedule is open (t itself when open now).  DB_OK, or
 * DB_ENOTFOUND when it does not open within 400 days. */
int db_schedule_next_open(const struct db_schedule *s, time_t t, time_t *out) DB_MUST_CHECK;

/* The instant the closed period around t began (the schedule is closed on [*out, t] and was
 * open just before *out).  DB_OK, DB_EINVAL when open at t, DB_ENOTFOUND when the period
 * began more than 400 days before t. */
int db_schedule_closed_since(const struct db_schedule *s, time_t t, time_t *out) DB_MUST_CHECK;

/* Writes t in the schedule's local terms into buf: "Monday 09:00" when t is less than six
 * days after now, else "Monday 2027-01-04 09:00".  lang (may be NULL) picks the day names
 * ("uk", "ru"; English otherwise).  Returns buf. */
const char *db_schedule_format(const struct db_schedule *s, time_t t, time_t now,
                               const char *lang, char *buf, size_t n);

/* The time zone name (borrowed). */
const char *db_schedule_tz(const struct db_schedule *s);

/* An "accounts" value split once at load: its "platform:account" entries, blanks removed. */
struct db_account_list {
    char **items; /* malloc'd, each malloc'd */
    size_t n;
};
/* The key-table check of an "accounts" value (struct db_conf_key .check): NULL when v is a
 * comma list of at least one platform:account (blanks around entries allowed), else why not,
 * in buf (n bytes) or a static text. */
const char *db_account_list_check(const char *v, char *buf, size_t n);
/* Splits the comma list v into l.  DB_OK or DB_ENOMEM (l then empty).  Free with
 * db_account_list_free. */
int db_account_list_build(const char *v, struct db_account_list *l) DB_MUST_CHECK;
void db_account_list_free(struct db_account_list *l);
/* 1 when l names platform:account, else 0. */
int db_account_list_has(const struct db_account_list *l, const char *platform,
                        const char *account);

/* A [schedule NAME] section as loaded (the "schedule" feature table, built once per
 * configuration load): the keys, and the schedule compiled from them.  Owned by the
 * configuration. */
struct db_schedule_conf {
    const struct db_conf_section *sec; /* the section, for the texts by language */
    const char *name;
    const char *timezone, *hours, *holidays, *closures, *accounts; /* NULL when unset */
    struct db_account_list account_list;                           /* accounts, split */
    const char *away_message, *greeting, *queue_message;          /* default language */
    int queue_default_wait_s;                                      /* default 300 */
    struct db_schedule *sched;
};
struct db_conf_table;
extern const struct db_conf_table db_schedule_conf_table;

/* The schedule that applies to platform:account: the one whose accounts list names it, else
 * [schedule default], else NULL (always open, no automatic texts).  Borrowed from cfg. */
const struct db_schedule_conf *db_schedule_conf_of(const struct db_config *cfg,
                                                   const char *platform, const char *account);

/* The value of key_<lang> in the schedule's section, else of key; NULL when neither is set.
 * lang may be NULL or empty.  Borrowed from the configuration. */
const char *db_schedule_text(const struct db_schedule_conf *sc, const char *key,
                             const char *lang);

/* ---- text rules (autoreply.c) ---- */

/* 1 when text contains one of the comma separated words of list as a whole word,
 * comparing ASCII letters case-insensitively and Cyrillic letters (U+0400-U+04FF) by their
 * lowercase forms.  A word of the list may contain spaces (a phrase). */
int db_keyword_match(const char *list, const char *text);

/* Replaces every {name} of tmpl that vars (a NULL-terminated array of name, value pairs)
 * names; a value NULL leaves the placeholder as written; unknown placeholders stay.
 * Returns a new string (caller frees) or NULL on ENOMEM. */
char *db_text_expand(const char *tmpl, const char *const *vars);


#endif
