/* fuzz_http_head.c - the request-head parser of httpd on arbitrary bytes.
 *
 * The input is framed the way httpd.c frames it (a head always ends with the blank line),
 * and every accepted head is checked against what the server relies on afterwards. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/httpd_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    char *buf = malloc(size + 5);
    if (!buf) return 0;
    memcpy(buf, data, size);
    size_t len = size;
    if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
        memcpy(buf + len, "\r\n\r\n", 4);
        len += 4;
    }
    buf[len] = '\0';
    size_t nh = db_http_head_count_lines(buf, len);
    struct db_header *hv = malloc((nh ? nh : 1) * sizeof *hv);
    if (!hv) {
        free(buf);
        return 0;
    }
    struct db_http_head h;
    struct db_err e = {0};
    if (db_http_head_parse(buf, len, hv, nh, &h, &e) == DB_OK) {
        if (h.path[0] != '/' || h.nh > nh || (h.minor != 0 && h.minor != 1)) abort();
        if (h.chunked && h.content_length >= 0) abort();
        for (size_t i = 0; i < h.nh; i++)
            if (!h.hv[i].name[0] || strpbrk(h.hv[i].value, "\r\n")) abort();
    } else if (h.err_status < 400 || !h.err_code || !e.msg[0]) {
        abort();
    }
    free(hv);
    free(buf);
    return 0;
}
