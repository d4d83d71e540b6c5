/* rules.c - keyword rules: their key table and the rule choice (see rules.h).  The patterns are compiled by the tables' finish when the configuration is
 * loaded, so answering a message runs regexec only. */
#include "auto/rules.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hours/hours.h"
#include "conf/config.h"
#include "util/schema.h"
#include "util/json.h"

static const char *accounts_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        const char *colon = memchr(p, ':', len);
        if (!colon || colon == p || colon + 1 == p + len)
            return "want a comma list of platform:account";
        p += len + (p[len] == ',');
    }
    return NULL;
}

static const char *language_check(const char *v, char *buf, size_t n)
{
    (void)buf, (void)n;
    size_t len = strlen(v);
    if (len < 2 || len > 16 || strspn(v, "abcdefghijklmnopqrstuvwxyz_-") != len)
        return "want a language code such as uk";
    return NULL;
}

static int keyword_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct db_keyword_rule *k = obj;
    k->name = sec->account;
    if (db_account_list_build(k->accounts, &k->account_list) != DB_OK)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    const struct db_conf_kv *match = db_conf_find(sec, "match"), *re = db_conf_find(sec, "regex");
    if (!match && !re) return db_conf_error(e, sec, NULL, "match", "match or regex is required");
    if (match && re)
        return db_conf_error(e, sec, re, "regex", "give either match or regex, not both");
    if (match && strspn(match->value, ", \t") == strlen(match->value))
        return db_conf_error(e, sec, match, "match", "has no words");
    if (re) {
        int r = regcomp(&k->rx, re->value, REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (r != 0) {
            char why[96];
            regerror(r, &k->rx, why, sizeof why);
            return db_conf_error(e, sec, re, "regex", "not a POSIX extended regex: %s", why);
        }
        k->has_rx = 1;
    }
    return DB_OK;
}

static void keyword_release(void *obj)
{
    struct db_keyword_rule *k = obj;
    db_account_list_free(&k->account_list);
    if (k->has_rx) regfree(&k->rx);
}

#define KOFF(f) offsetof(struct db_keyword_rule, f)
static const struct db_conf_key keyword_keys[] = {
    {.name = "match", .type = DB_CONF_STR, .off = KOFF(match),
     .doc = "comma-separated words or phrases, matched as whole words, any letter case"},
    {.name = "regex", .type = DB_CONF_STR, .off = KOFF(regex),
     .doc = "instead of match: a POSIX extended regular expression, any letter case"},
    {.name = "language", .type = DB_CONF_STR, .off = KOFF(language), .check = language_check,
     .doc = "only for customers whose language is this (e.g. `uk`)"},
    {.name = "accounts", .type = DB_CONF_STR, .off = KOFF(accounts), .check = accounts_check,
     .doc = "only for these `platform:account` entries"},
    {.name = "answer", .type = DB_CONF_STR, .flags = DB_CONF_REQUIRED, .off = KOFF(answer),
     .doc = "the text sent (placeholders `{customer_name}`, `{next_open}`)"},
    {.name = "resolve", .type = DB_CONF_BOOL, .def = "false", .off = KOFF(resolve),
     .doc = "`true`: the answer is enough, the conversation needs no agent"},
};

const struct db_conf_table db_keyword_conf_table = {
    .section = "keyword", .named = 1, .size = sizeof(struct db_keyword_rule),
    .keys = keyword_keys, .n_keys = sizeof keyword_keys / sizeof keyword_keys[0],
    .finish = keyword_finish, .release = keyword_release};

static int check_alone(const struct db_conf_table *t, const struct db_conf_section *sec,
                       struct db_err *e)
{
    void *obj = NULL;
    int rc = db_conf_obj_new(t, sec, &obj, e);
    db_conf_obj_free(t, obj);
    return rc;
}
int db_keyword_conf_check(const struct db_conf_section *sec, struct db_err *e)
{
    return check_alone(&db_keyword_conf_table, sec, e);
}


/* ---- which rule answers ---- */

void db_event_lang(const json_t *ev, char *lang, size_t n)
{
    const char *l = db_json_str(json_object_get(ev, "sender"), "language");
    size_t k = 0;
    for (; l && l[k] && l[k] != '-' && l[k] != '_' && k + 1 < n; k++)
        lang[k] = (char)tolower((unsigned char)l[k]);
    lang[k] = '\0';
}

static int hit(const struct db_keyword_rule *k, const char *text, const char *lang,
               const char *platform, const char *account)
{
    if (k->accounts && !db_account_list_has(&k->account_list, platform, account)) return 0;
    if (k->language && strcmp(k->language, lang) != 0) return 0;
    if (k->match) return db_keyword_match(k->match, text);
    return k->has_rx && regexec(&k->rx, text, 0, NULL, 0) == 0;
}

const struct db_keyword_rule *db_keyword_rule_for(const struct db_config *cfg, const json_t *ev)
{
    const char *kind = db_json_str(ev, "kind"), *text = db_json_str(ev, "text");
    const char *platform = db_json_str(ev, "platform"), *account = db_json_str(ev, "account");
    if (!kind || strcmp(kind, "message") != 0 || !text || !platform || !account) return NULL;
    char lang[17];
    db_event_lang(ev, lang, sizeof lang);
    for (size_t i = 0; i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].platform, "keyword") != 0) continue;
        const struct db_keyword_rule *k = cfg->features[i].obj;
        if (hit(k, text, lang, platform, account)) return k; /* the first in file order */
    }
    return NULL;
}

int db_keyword_resolves(const struct db_config *cfg, const json_t *ev)
{
    const struct db_keyword_rule *k = db_keyword_rule_for(cfg, ev);
    return k && k->resolve;
}
