/* fake_platform_server - one fake platform (tests/support/fake_platform.h) for shell tests.
 *
 * Prints "port N" on stdout, then reads one command per line on stdin and answers each with
 * exactly one line, except dump (see below):
 *   rule METHOD PATH TIMES STATUS DELAY_MS RESET BODY...   -> ok   (METHOD/PATH "*" = any;
 *                                                              BODY is the rest of the line)
 *   header NAME VALUE...                                    -> ok   (adds to the last rule)
 *   default STATUS BODY...                                  -> ok
 *   count [PATH]                                            -> N    (no PATH or "*" = all)
 *   wait PATH N TIMEOUT_MS                                  -> N reached
 *   dump                 -> one JSON object per recorded request
 *                           ({"method","path","headers":{...},"body"}), then "ok"
 *   reset                                                   -> ok
 *   quit (or end of input)                                  -> exits 0
 * Unknown or malformed commands answer "error ...". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_platform.h"

/* Splits off the next space-separated word of *p (modified in place); NULL when none. */
static char *word(char **p)
{
    char *s = *p;
    while (*s == ' ') s++;
    if (!*s) return NULL;
    char *e = strchr(s, ' ');
    if (e) {
        *e = '\0';
        *p = e + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}

static const char *any(const char *s)
{
    return s && strcmp(s, "*") == 0 ? NULL : s;
}

static void dump(struct db_fake *f)
{
    struct db_fake_request r;
    for (size_t i = 0; db_fake_get(f, i, &r) == DB_OK; i++) {
        json_t *h = json_object();
        for (size_t j = 0; j < r.headers.n; j++)
            json_object_set_new(h, r.headers.v[j].name, json_string(r.headers.v[j].value));
        json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "method", r.method, "path", r.path,
                              "headers", h, "body", json_stringn(r.body, r.body_len));
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", line ? line : "{}");
        free(line);
        json_decref(o);
        db_fake_request_clear(&r);
    }
    printf("ok\n");
}

int main(void)
{
    struct db_fake *f = db_fake_start();
    if (!f) {
        fprintf(stderr, "fake_platform_server: cannot start\n");
        return 1;
    }
    printf("port %d\n", db_fake_port(f));
    fflush(stdout);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        char *p = line;
        const char *cmd = word(&p);
        if (!cmd) continue;
        if (strcmp(cmd, "quit") == 0) break;
        if (strcmp(cmd, "rule") == 0) {
            const char *m = word(&p), *path = word(&p), *times = word(&p), *status = word(&p);
            const char *delay = word(&p), *reset = word(&p);
            if (!reset) {
                printf("error rule needs METHOD PATH TIMES STATUS DELAY RESET BODY\n");
            } else {
                while (*p == ' ') p++;
                db_fake_rule(f, any(m), any(path), atoi(times), atoi(status), p, atoi(delay),
                             atoi(reset));
                printf("ok\n");
            }
        } else if (strcmp(cmd, "header") == 0) {
            const char *name = word(&p);
            while (*p == ' ') p++;
            if (!name) {
                printf("error header needs NAME VALUE\n");
            } else {
                db_fake_rule_header(f, name, p);
                printf("ok\n");
            }
        } else if (strcmp(cmd, "default") == 0) {
            const char *status = word(&p);
            while (*p == ' ') p++;
            if (!status) {
                printf("error default needs STATUS BODY\n");
            } else {
                db_fake_default(f, atoi(status), p);
                printf("ok\n");
            }
        } else if (strcmp(cmd, "count") == 0) {
            printf("%zu\n", db_fake_count(f, any(word(&p))));
        } else if (strcmp(cmd, "wait") == 0) {
            const char *path = word(&p), *cnt = word(&p), *ms = word(&p);
            if (!ms) printf("error wait needs PATH N TIMEOUT_MS\n");
            else printf("%zu\n", db_fake_wait(f, any(path), (size_t)atol(cnt), atoi(ms)));
        } else if (strcmp(cmd, "dump") == 0) {
            dump(f);
        } else if (strcmp(cmd, "reset") == 0) {
            db_fake_reset(f);
            printf("ok\n");
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    free(line);
    db_fake_stop(f);
    return 0;
}
