/* fuzz_schedule.c - the schedule parser (hours, holidays, closures) and the engine over
 * whatever parses, checking the answers against each other; plus keyword matching and
 * placeholder expansion.  Input: lines "zone-selector hours", holidays, closures, keyword
 * list, text.  The time zone comes from a fixed list so the input never names files. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hours/hours.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next line of the input as a new string (caller frees); NULs become spaces. */
static char *line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *s = *p;
    while (*p < end && **p != '\n') (*p)++;
    size_t n = (size_t)(*p - s);
    if (*p < end) (*p)++;
    char *out = malloc(n + 1);
    if (!out) abort();
    for (size_t i = 0; i < n; i++) out[i] = s[i] ? (char)s[i] : ' ';
    out[n] = '\0';
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const zones[] = {"UTC", "Europe/Kyiv", "America/New_York",
                                        "Asia/Tehran", "Australia/Lord_Howe"};
    if (size < 1) return 0;
    const char *tz = zones[data[0] % 5];
    uint32_t when = size >= 5 ? (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
                                    (uint32_t)data[3] << 8 | data[4]
                              : 0;
    const uint8_t *p = data + (size >= 5 ? 5 : size), *end = data + size;
    char *hours = line(&p, end), *hol = line(&p, end), *clo = line(&p, end);
    char *words = line(&p, end), *text = line(&p, end);

    struct db_conf_kv kv[] = {{"timezone", tz, "fuzz.conf", 1},
                              {"hours", hours, "fuzz.conf", 2},
                              {"holidays", hol, "fuzz.conf", 3},
                              {"closures", clo, "fuzz.conf", 4}};
    struct db_conf_section sec = {"schedule", "fuzz", kv, 4};
    struct db_schedule *s = NULL;
    struct db_err e = {0};
    int rc = db_schedule_parse(&sec, &s, &e);
    if (rc == DB_OK) {
        /* Any instant from 2001 to 2137. */
        time_t t = (time_t)1000000000 + (time_t)when, r;
        int open = db_schedule_is_open(s, t);
        if (db_schedule_next_open(s, t, &r) == DB_OK) {
            if (r < t || !db_schedule_is_open(s, r)) abort();
            if (r > t && db_schedule_is_open(s, r - 1)) abort();
            if (open != (r == t)) abort();
            char buf[64];
            db_schedule_format(s, r, t, "uk", buf, sizeof buf);
            if (!memchr(buf, '\0', sizeof buf)) abort();
        }
        if (db_schedule_closed_since(s, t, &r) == DB_OK) {
            if (open || r > t || db_schedule_is_open(s, r) || !db_schedule_is_open(s, r - 1))
                abort();
        }
        db_schedule_free(s);
    } else if (s != NULL || e.code != rc || !memchr(e.msg, '\0', sizeof e.msg)) {
        abort();
    }

    (void)db_keyword_match(words, text);
    const char *vars[] = {"next_open", words, "customer_name", NULL, NULL};
    char *x = db_text_expand(text, vars);
    free(x);
    free(hours), free(hol), free(clo), free(words), free(text);
    return 0;
}
