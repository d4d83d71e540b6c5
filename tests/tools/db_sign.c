/* db_sign.c - `db_sign KEY FILE`: prints the lowercase hex HMAC-SHA256 of FILE's bytes under
 * KEY, computed by deskbridge's own crypto helpers, so script tests can check them against
 * independent implementations (whatsapp-api-js, viber-bot).  Exit 0, or 2 on usage/read
 * errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crypto.h"

/* Reads the whole file into a malloc'd buffer (caller frees); NULL on error. */
static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) return NULL;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) goto fail;
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) goto fail;
    fclose(f);
    *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: db_sign KEY FILE\n");
        return 2;
    }
    size_t len = 0;
    unsigned char *data = read_all(argv[2], &len);
    if (!data) {
        perror(argv[2]);
        return 2;
    }
    unsigned char mac[32];
    char hex[65];
    db_hmac_sha256(argv[1], strlen(argv[1]), data, len, mac);
    db_hex_encode(mac, sizeof mac, hex);
    printf("%s\n", hex);
    free(data);
    return 0;
}
