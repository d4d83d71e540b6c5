/* connector.c - the Telegram Bot API connector (webhooks with a secret token, or getUpdates
 * long polling).
 *
 * Pure translator: bytes and configuration in, events and request values out.  This file
 * holds only the table; each slot lives in the file of its concern: account.c, verify.c,
 * parse.c, send.c, poll.c, webhook.c, media.c, with api.c for the Bot API envelope they
 * share.  Mapping, keys and limits: docs/platforms/telegram.md. */

#include "telegram_internal.h"

const struct db_connector db_telegram = {
    .name = "telegram",
    .max_body = 1024 * 1024,
    .max_text_chars = 4096,
    .split_long_text = 1,
    /* Bot API: a media caption is 0-1024 characters (core.telegram.org/bots/api, sendPhoto). */
    .max_caption_chars = 1024,
    /* The Bot API names no count or label length for inline keyboards; these are the
     * gateway's own, kept like the other platforms' so a reply works on all three. */
    .max_buttons = 10,
    .max_button_title_chars = 64,
    .account_new = db_tg_account_new,
    .account_free = db_tg_account_free,
    .account_keys = &db_tg_account_table,
    .verify = db_tg_verify,
    .parse = db_tg_parse,
    .chat_id_is_valid = db_tg_chat_id_is_valid,
    .build_send = db_tg_build_send,
    .read_send = db_tg_read_send,
    .build_poll = db_tg_build_poll,
    .read_poll = db_tg_read_poll,
    .build_webhook_setup = db_tg_build_webhook_setup,
    .read_webhook_setup = db_tg_read_webhook_setup,
    .handshake = NULL,
    .build_media_lookup = db_tg_build_media_lookup,
    .read_media_lookup = db_tg_read_media_lookup,
    .send_grant = db_tg_send_grant,
    .build_callback_answer = db_tg_build_callback_answer,
    .build_typing = db_tg_build_typing,
    /* Bots get no read marks on Telegram: no build_read_mark. */
};
