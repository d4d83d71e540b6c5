/* test_sniff.c - content types from the first bytes (util/sniff.c), never from a name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "util/sniff.h"

static const char *sniff(const char *bytes, size_t n)
{
    return db_sniff_type((const unsigned char *)bytes, n);
}

static void known_signatures(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        const char *type, *ext;
    } cases[] = {
        {"\xFF\xD8\xFF\xE0\x00\x10JFIF", 10, "image/jpeg", "jpg"},
        {"\x89PNG\r\n\x1A\n\0\0\0\rIHDR", 16, "image/png", "png"},
        {"GIF89a\x01\x00", 8, "image/gif", "gif"},
        {"RIFF\x24\x00\x00\x00WEBPVP8 ", 16, "image/webp", "webp"},
        {"RIFF\x24\x00\x00\x00WAVEfmt ", 16, "audio/wav", "wav"},
        {"%PDF-1.7\n", 9, "application/pdf", "pdf"},
        {"OggS\x00\x02", 6, "audio/ogg", "ogg"},
        {"\x1A\x45\xDF\xA3\x9F", 5, "video/webm", "webm"},
        {"\x00\x00\x00\x20" "ftypisom", 12, "video/mp4", "mp4"},
        {"\x00\x00\x00\x18" "ftypheic", 12, "image/heic", "heic"},
        {"\x00\x00\x00\x14" "ftypqt  ", 12, "video/quicktime", "mov"},
        {"\x00\x00\x00\x1C" "ftypM4A ", 12, "audio/mp4", "m4a"},
        {"PK\x03\x04\x14\x00", 6, "application/zip", "zip"},
        {"\x1F\x8B\x08\x00", 4, "application/gzip", "gz"},
        {"ID3\x04\x00", 5, "audio/mpeg", "mp3"},
        {"#!AMR\n", 6, "audio/amr", "amr"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = sniff(cases[i].bytes, cases[i].n);
        assert_non_null(t);
        assert_string_equal(t, cases[i].type);
        assert_string_equal(db_sniff_ext(t), cases[i].ext);
    }
}

/* What names no signature, or is cut short, is not guessed: the store keeps it as
 * application/octet-stream (an HTML page a customer sent is not served as text/html). */
static void unknown_or_short_is_null(void **state)
{
    (void)state;
    assert_null(sniff("<!DOCTYPE html><script>", 23));
    assert_null(sniff("hello", 5));
    assert_null(sniff("", 0));
    assert_null(sniff("\x89PNG\r\n", 6));
    assert_null(sniff("RIFF\x24\x00\x00\x00", 8));
    assert_null(sniff("GIF8", 4));
    assert_string_equal(db_sniff_ext(NULL), "bin");
    assert_string_equal(db_sniff_ext("text/html"), "bin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_signatures),
        cmocka_unit_test(unknown_or_short_is_null),
    };
    return cmocka_run_group_tests_name("sniff", tests, NULL, NULL);
}
