/* assign.c - priorities, queue order and the agent choice (see assign.h). */
#include "dispatch/assign.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"low", "normal", "high", "urgent"};

int db_priority_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

const char *db_priority_name(int p) { return p >= 0 && p < 4 ? names[p] : "normal"; }

double db_queue_score(int priority, int64_t queued_at_ms)
{
    /* 1e13 ms is about 300 years: the age can never carry into the priority band. */
    return (double)(3 - priority) * 1e13 + (double)queued_at_ms;
}

static void lower_ascii(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

static int append(char **rules, size_t *len, const char *word, size_t wl, const char *prio)
{
    size_t pl = strlen(prio);
    char *n = realloc(*rules, *len + wl + pl + 3);
    if (!n) return DB_ENOMEM;
    memcpy(n + *len, word, wl);
    n[*len + wl] = '\t';
    memcpy(n + *len + wl + 1, prio, pl);
    n[*len + wl + 1 + pl] = '\n';
    *len += wl + pl + 2;
    n[*len] = '\0';
    *rules = n;
    return DB_OK;
}

int db_assign_rules_add(char **rules, const char *spec, struct db_err *e)
{
    const char *colon = strrchr(spec, ':');
    if (!colon || db_priority_parse(colon + 1) < 0)
        return db_err_set(e, DB_EINVAL, "want word,word:priority (low|normal|high|urgent)");
    char *words = strndup(spec, (size_t)(colon - spec));
    if (!words) return db_err_set(e, DB_ENOMEM, "out of memory");
    lower_ascii(words);
    size_t len = *rules ? strlen(*rules) : 0;
    int rc = DB_OK, n = 0;
    for (char *save = NULL, *w = strtok_r(words, ",", &save); w && rc == DB_OK;
         w = strtok_r(NULL, ",", &save)) {
        while (*w == ' ' || *w == '\t') w++;
        size_t wl = strlen(w);
        while (wl && (w[wl - 1] == ' ' || w[wl - 1] == '\t')) wl--;
        if (!wl) continue;
        if (memchr(w, '\n', wl)) rc = db_err_set(e, DB_EINVAL, "a keyword holds a line break");
        else rc = append(rules, &len, w, wl, colon + 1), n++;
    }
    free(words);
    if (rc == DB_OK && n == 0) rc = db_err_set(e, DB_EINVAL, "no keywords before the priority");
    if (rc == DB_ENOMEM) db_err_set(e, rc, "out of memory");
    return rc;
}

int db_assign_rules_match(const char *rules, const char *text)
{
    if (!rules || !text) return -1;
    char *low = strdup(text);
    if (!low) return -1;
    lower_ascii(low);
    int best = -1;
    for (const char *p = rules; *p;) {
        const char *tab = strchr(p, '\t'), *nl = tab ? strchr(tab, '\n') : NULL;
        if (!nl) break;
        char word[256], prio[16];
        size_t wl = (size_t)(tab - p), pl = (size_t)(nl - tab - 1);
        if (wl < sizeof word && pl < sizeof prio) {
            memcpy(word, p, wl), word[wl] = '\0';
            memcpy(prio, tab + 1, pl), prio[pl] = '\0';
            int pr = db_priority_parse(prio);
            if (strstr(low, word) && pr > best) best = pr;
        }
        p = nl + 1;
    }
    free(low);
    return best;
}

static int listed(const char *const *list, size_t n, const char *x, size_t xl)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == xl && strncmp(list[i], x, xl) == 0) return 1;
    return 0;
}

/* "uk-UA" is served by an agent who speaks "uk". */
static int speaks(const struct db_assign_agent *a, const char *lang)
{
    if (a->n_languages == 0 || !lang || !*lang) return 1;
    size_t base = strcspn(lang, "-_");
    return listed(a->languages, a->n_languages, lang, strlen(lang)) ||
           listed(a->languages, a->n_languages, lang, base);
}

static int has_room(const struct db_assign_agent *a) { return a->online && a->load < a->capacity; }

long db_assign_pick(const struct db_assign_conv *c, const struct db_assign_agent *agents,
                    size_t n, unsigned long rr)
{
    for (size_t i = 0; c->previous_agent && *c->previous_agent && i < n; i++)
        if (strcmp(agents[i].id, c->previous_agent) == 0 && has_room(&agents[i])) return (long)i;
    int best = -1;
    size_t ties = 0;
    for (size_t i = 0; i < n; i++) {
        const struct db_assign_agent *a = &agents[i];
        int serves = a->n_accounts == 0 ||
                     listed(a->accounts, a->n_accounts, c->account, strlen(c->account));
        if (!has_room(a) || !serves || !speaks(a, c->language)) continue;
        if (best < 0 || a->load < best) best = a->load, ties = 1;
        else if (a->load == best) ties++;
    }
    if (best < 0) return -1;
    /* The k-th of the tied agents in id order, k = rr mod ties. */
    size_t k = rr % ties;
    long chosen = -1;
    for (size_t round = 0; round <= k; round++) {
        long next = -1;
        for (size_t i = 0; i < n; i++) {
            const struct db_assign_agent *a = &agents[i];
            int serves = a->n_accounts == 0 ||
                         listed(a->accounts, a->n_accounts, c->account, strlen(c->account));
            if (!has_room(a) || !serves || !speaks(a, c->language) || a->load != best) continue;
            if (chosen >= 0 && strcmp(a->id, agents[chosen].id) <= 0) continue;
            if (next < 0 || strcmp(a->id, agents[next].id) < 0) next = (long)i;
        }
        chosen = next;
    }
    return chosen;
}
