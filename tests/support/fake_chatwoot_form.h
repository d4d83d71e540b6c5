/* fake_chatwoot_form.h - the multipart/form-data body of a message creation, as the fake
 * Chatwoot reads it (content, message_type, source_id, private, one attachments[] file). */
#ifndef DB_FAKE_CHATWOOT_FORM_H
#define DB_FAKE_CHATWOOT_FORM_H

#include <stddef.h>

struct cw_form {
    char content[512], message_type[16], source_id[128], private_[8];
    char file_name[128], file_type[64];
    size_t file_size;
    unsigned long file_sum; /* sum of the file's bytes */
    int has_file;
};

/* Parses body (len bytes) with the boundary of ctype into *fm (zeroed first).  0, or -1 when
 * the body is not well-formed multipart. */
int cw_form_parse(const char *ctype, const char *body, size_t len, struct cw_form *fm);

#endif
