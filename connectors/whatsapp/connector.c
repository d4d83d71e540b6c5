/* connector.c - WhatsApp Business Cloud API (Meta Graph API) connector.
 *
 * Pure translator between Meta's webhook/Graph payloads and the stream contract; the daemon
 * does every byte of I/O.  This file holds only the table; each slot lives in the file of
 * its concern: account.c, verify.c (signature and subscription handshake), parse.c with
 * content.c and walk.h, send.c, media.c.  Platform facts these files rely on are in
 * docs/platforms/whatsapp.md. */

#include "whatsapp_internal.h"

const struct db_connector db_whatsapp = {
    .name = WA_PLATFORM,
    /* Meta documents bodies of up to about 3 MB; batches of media metadata get close. */
    .max_body = 4u * 1024 * 1024,
    .max_text_chars = WA_MAX_TEXT_CHARS,
    /* The Cloud API answers 400 to longer texts, and a split message reads badly on a phone. */
    .split_long_text = 0,
    .max_caption_chars = WA_MAX_CAPTION_CHARS,
    /* Up to 3 go as reply buttons, more as a list message; 20 characters fit both. */
    .max_buttons = WA_MAX_LIST_ROWS,
    .max_button_title_chars = WA_MAX_BUTTON_TITLE,
    .max_buttons_text_chars = WA_MAX_INTERACTIVE_BODY,
    .account_new = db_wa_account_new,
    .account_free = db_wa_account_free,
    .account_keys = &db_wa_account_table,
    .verify = db_wa_verify,
    .parse = db_wa_parse,
    .chat_id_is_valid = db_wa_chat_id_is_valid,
    .build_send = db_wa_build_send,
    .read_send = db_wa_read_send,
    .build_poll = NULL,
    .read_poll = NULL,
    /* Webhooks are set up in Meta's app dashboard; there is no API call for it. */
    .build_webhook_setup = NULL,
    .read_webhook_setup = NULL,
    .handshake = db_wa_handshake,
    .build_media_lookup = db_wa_build_media_lookup,
    .read_media_lookup = db_wa_read_media_lookup,
    .build_typing = db_wa_build_typing,
    .build_read_mark = db_wa_build_read_mark,
    .build_templates = db_wa_build_templates,
    .read_templates = db_wa_read_templates,
    .check_template = db_wa_check_template,
};
