/* survey_conf.c - the [survey NAME] sections: their key table and which one an account has
 * (docs/survey.md). */
#include "dispatch/survey.h"

#include <stdio.h>
#include <string.h>

#include "conf/config.h"
#include "util/schema.h"

/* WhatsApp's limit for the button that opens a list, in characters (not bytes). */
static const char *label_check(const char *v, char *buf, size_t n)
{
    size_t chars = 0;
    (void)buf, (void)n;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) chars += (*p & 0xC0) != 0x80;
    return chars <= 20 ? NULL : "must be at most 20 characters";
}

static int survey_finish(void *obj, const struct db_conf_section *sec, struct db_err *e)
{
    struct db_survey_conf *sc = obj;
    sc->sec = sec;
    sc->name = sec->account;
    /* A named survey without accounts would silently ask nobody. */
    if (!sc->accounts && strcmp(sc->name, "default") != 0)
        return db_conf_error(e, sec, NULL, "accounts",
                             "is required (only [survey default] applies to every account)");
    if (db_account_list_build(sc->accounts, &sc->account_list) != DB_OK)
        return db_err_set(e, DB_ENOMEM, "out of memory");
    return DB_OK;
}

static void survey_release(void *obj)
{
    db_account_list_free(&((struct db_survey_conf *)obj)->account_list);
}

#define VOFF(f) offsetof(struct db_survey_conf, f)
static const struct db_conf_key survey_keys[] = {
    {.name = "accounts", .type = DB_CONF_STR, .off = VOFF(accounts),
     .check = db_account_list_check,
     .doc = "the `platform:account` entries asked after a close (`[survey default]`: every account)"},
    {.name = "question", .type = DB_CONF_STR, .flags = DB_CONF_LANG, .off = VOFF(question),
     .def = "How would you rate our help, from 1 (poor) to 5 (excellent)?",
     .doc = "the question (`question_<lang>` per customer language)"},
    {.name = "reply_hint", .type = DB_CONF_STR, .flags = DB_CONF_LANG, .off = VOFF(reply_hint),
     .def = "Reply with a number from 1 to 5.",
     .doc = "added below the question where it goes without buttons (`reply_hint_<lang>`)"},
    {.name = "buttons_label", .type = DB_CONF_STR, .flags = DB_CONF_LANG,
     .off = VOFF(buttons_label), .def = "Rate", .check = label_check,
     .doc = "WhatsApp: the button that opens the list of 1-5, at most 20 characters (`buttons_label_<lang>`)"},
    {.name = "buttons", .type = DB_CONF_BOOL, .off = VOFF(buttons), .def = "true",
     .doc = "false: always the question as text with `reply_hint`"},
    {.name = "comment_window_s", .type = DB_CONF_INT, .min = 0, .max = 86400, .def = "600",
     .off = VOFF(comment_window_s),
     .doc = "how long after the answer one more text counts as its comment (0: no comment)"},
};

const struct db_conf_table db_survey_conf_table = {
    .section = "survey", .named = 1, .size = sizeof(struct db_survey_conf),
    .keys = survey_keys, .n_keys = sizeof survey_keys / sizeof survey_keys[0],
    .finish = survey_finish, .release = survey_release};

const struct db_survey_conf *db_survey_conf_of(const struct db_config *cfg, const char *platform,
                                               const char *account)
{
    const struct db_survey_conf *dflt = NULL;
    for (size_t i = 0; cfg && i < cfg->n_sections; i++) {
        if (strcmp(cfg->sections[i].platform, "survey") != 0) continue;
        const struct db_survey_conf *sc = cfg->features[i].obj;
        if (!sc) continue;
        if (db_account_list_has(&sc->account_list, platform, account)) return sc;
        if (!dflt && strcmp(sc->name, "default") == 0) dflt = sc;
    }
    return dflt;
}

const char *db_survey_text(const struct db_survey_conf *sc, const char *key, const char *lang)
{
    const struct db_conf_kv *kv = NULL;
    if (lang && *lang) {
        char k[64];
        snprintf(k, sizeof k, "%s_%s", key, lang);
        kv = db_conf_find(sc->sec, k);
    }
    if (!kv) kv = db_conf_find(sc->sec, key);
    return kv ? kv->value : NULL;
}
