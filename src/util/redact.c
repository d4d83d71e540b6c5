#include "util/redact.h"

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

void db_redact_url(const char *url, char *out, size_t outsz)
{
    if (!outsz) return;
    size_t o = 0;
    const char *p = url ? url : "";
    while (*p && o + 1 < outsz) {
        const char *hide_until = NULL;
        if (strncmp(p, "/bot", 4) == 0 && strchr(p + 4, ':') &&
            (!strchr(p + 4, '/') || strchr(p + 4, ':') < strchr(p + 4, '/'))) {
            hide_until = strchr(p + 4, '/');
            if (!hide_until) hide_until = p + strlen(p);
            p += 4;
            const char *lit = "/bot***";
            for (; *lit && o + 1 < outsz; lit++) out[o++] = *lit;
            p = hide_until;
            continue;
        }
        if ((strncmp(p, "token=", 6) == 0 || strncmp(p, "access_token=", 13) == 0) &&
            (p == url || p[-1] == '?' || p[-1] == '&')) {
            const char *eq = strchr(p, '=');
            for (; p <= eq && o + 1 < outsz; p++) out[o++] = *p;
            const char *lit = "***";
            for (; *lit && o + 1 < outsz; lit++) out[o++] = *lit;
            while (*p && *p != '&') p++;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
}

void db_redact_id(const char *value, char *out, size_t outsz)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    const char *v = value ? value : "";
    SHA256((const unsigned char *)v, strlen(v), md);
    snprintf(out, outsz, "#%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
}
