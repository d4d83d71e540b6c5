/* sniff.c - file signatures of what customers send through messengers: photos, stickers,
 * voice notes, videos, documents.  Each is checked at a fixed offset; containers that share a
 * signature (RIFF, ISO base media) are told apart by their brand. */
#include "util/sniff.h"

#include <string.h>

static int at(const unsigned char *p, size_t n, size_t off, const char *magic, size_t len)
{
    return n >= off + len && memcmp(p + off, magic, len) == 0;
}

const char *db_sniff_type(const unsigned char *p, size_t n)
{
    if (at(p, n, 0, "\xFF\xD8\xFF", 3)) return "image/jpeg";
    if (at(p, n, 0, "\x89PNG\r\n\x1A\n", 8)) return "image/png";
    if (at(p, n, 0, "GIF87a", 6) || at(p, n, 0, "GIF89a", 6)) return "image/gif";
    if (at(p, n, 0, "RIFF", 4) && at(p, n, 8, "WEBP", 4)) return "image/webp";
    if (at(p, n, 0, "RIFF", 4) && at(p, n, 8, "WAVE", 4)) return "audio/wav";
    if (at(p, n, 0, "RIFF", 4) && at(p, n, 8, "AVI ", 4)) return "video/x-msvideo";
    if (at(p, n, 0, "%PDF-", 5)) return "application/pdf";
    if (at(p, n, 0, "OggS", 4)) return "audio/ogg";
    if (at(p, n, 0, "\x1A\x45\xDF\xA3", 4)) return "video/webm";
    if (at(p, n, 0, "#!AMR", 5)) return "audio/amr";
    if (at(p, n, 0, "ID3", 3)) return "audio/mpeg";
    if (at(p, n, 4, "ftyp", 4)) {
        /* ISO base media: the major brand says which. */
        if (at(p, n, 8, "heic", 4) || at(p, n, 8, "heix", 4) || at(p, n, 8, "mif1", 4))
            return "image/heic";
        if (at(p, n, 8, "M4A ", 4)) return "audio/mp4";
        if (at(p, n, 8, "qt  ", 4)) return "video/quicktime";
        if (at(p, n, 8, "3gp", 3)) return "video/3gpp";
        return "video/mp4";
    }
    if (at(p, n, 0, "PK\x03\x04", 4)) return "application/zip";
    if (at(p, n, 0, "\x1F\x8B", 2)) return "application/gzip"; /* Telegram .tgs stickers */
    if (n >= 2 && p[0] == 0xFF && (p[1] & 0xF6) == 0xF0) return "audio/aac";
    if (n >= 2 && p[0] == 0xFF && (p[1] & 0xE0) == 0xE0) return "audio/mpeg";
    return NULL;
}

const char *db_sniff_ext(const char *type)
{
    static const char *const map[][2] = {
        {"image/jpeg", "jpg"},      {"image/png", "png"},         {"image/gif", "gif"},
        {"image/webp", "webp"},     {"image/heic", "heic"},       {"audio/wav", "wav"},
        {"video/x-msvideo", "avi"}, {"application/pdf", "pdf"},   {"audio/ogg", "ogg"},
        {"video/webm", "webm"},     {"audio/amr", "amr"},         {"audio/mpeg", "mp3"},
        {"audio/mp4", "m4a"},       {"video/quicktime", "mov"},   {"video/3gpp", "3gp"},
        {"video/mp4", "mp4"},       {"application/zip", "zip"},   {"application/gzip", "gz"},
        {"audio/aac", "aac"},       {NULL, NULL}};
    for (int i = 0; type && map[i][0]; i++)
        if (strcmp(map[i][0], type) == 0) return map[i][1];
    return "bin";
}
