/* connector.c - the Viber REST bot API as a pure translator (see docs/platforms/viber.md).
 *
 * This file holds only the table; each slot lives in the file of its concern: account.c,
 * verify.c, parse.c, send.c, webhook.c, with api.c for the envelope they share.
 *
 * Facts these files rely on (Viber's REST bot API documentation; see docs/platforms/viber.md):
 * - callbacks carry no bot id, so the account is the one whose webhook path was hit;
 * - timestamps are Unix milliseconds; message_token is a 64-bit integer, often above 2^53 and
 *   sometimes a string, so it is only ever read through db_json_id, never through double;
 * - errors of send_message and set_webhook arrive inside HTTP 200 as {"status": N}. */

#include "viber_internal.h"

const struct db_connector db_viber = {
    .name = PLATFORM,
    .max_body = 1024 * 1024,
    .max_text_chars = TEXT_MAX_CHARS,
    .max_caption_chars = CAPTION_MAX_CHARS,
    .split_long_text = 1,
    /* Viber's keyboard documentation names no count or label length; the gateway's own,
     * like Telegram's. */
    .max_buttons = 10,
    .max_button_title_chars = 64,
    .account_new = db_vb_account_new,
    .account_free = db_vb_account_free,
    .account_keys = &db_vb_account_table,
    .verify = db_vb_verify,
    .parse = db_vb_parse,
    .chat_id_is_valid = db_vb_chat_id_is_valid,
    .build_send = db_vb_build_send,
    .read_send = db_vb_read_send,
    .build_webhook_setup = db_vb_build_webhook_setup,
    .read_webhook_setup = db_vb_read_webhook_setup,
};
