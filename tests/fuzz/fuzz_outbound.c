/* fuzz_outbound.c - an agent's message (POST /v1/messages, P:outbox) on arbitrary bytes:
 * the API's checks (db_outbound_from_json, buttons included) and then, for what they accept,
 * the connector's request.  What the API accepts must build on the platform it names (a
 * refusal there would be a limit discovered late, as a failed send), with the buttons it
 * was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/features.h"
#include "conf/config.h"
#include "send/outbound.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct db_config *config(void)
{
    static char *const env[] = {
        "TELEGRAM_BOT_TOKEN=7000000001:AAfuzz", "WHATSAPP_ACCESS_TOKEN=t",
        "WHATSAPP_APP_SECRET=s", "WHATSAPP_VERIFY_TOKEN=v", "WHATSAPP_PHONE_NUMBER_ID=1065",
        "VIBER_ACCOUNT=shop", "VIBER_AUTH_TOKEN=vbtoken", "DESKBRIDGE_API_TOKEN=fuzz-token-0123456789",
        NULL};
    struct db_config *c = NULL;
    struct db_err e = {0};
    if (db_config_load(NULL, env, db_feature_tables, &c, &e) != DB_OK) abort();
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct db_config *cfg;
    if (!cfg) cfg = config();
    json_t *cmd = NULL;
    struct db_err e = {0};
    if (db_json_parse_object(data, size, &cmd, &e) != DB_OK) return 0;
    const struct db_account *acct;
    struct db_outbound msg;
    const char *field = NULL;
    int rc = db_outbound_from_json(cfg, cmd, &acct, &msg, &field, &e);
    if (rc != DB_OK) {
        if (rc != DB_EINVAL || !field || !memchr(e.msg, '\0', sizeof e.msg)) abort();
        json_decref(cmd);
        return 0;
    }
    if (msg.buttons && (!json_is_array(msg.buttons) || json_array_size(msg.buttons) == 0 ||
                        json_array_size(msg.buttons) > acct->conn->max_buttons))
        abort();
    msg.id = "fuzz-1";
    struct db_http_req req = {0};
    rc = db_conn_build_send(acct->conn, acct->state, &msg, &req, &e);
    /* Text without buttons may still meet a platform rule only the connector knows (a
     * caption on a sticker); with buttons the API's checks are the platform's. */
    if (msg.buttons && rc != DB_OK && rc != DB_ENOMEM) abort();
    if (rc == DB_OK && msg.buttons) {
        json_t *body = json_loadb(req.body, req.body_len, 0, NULL);
        const json_t *b0 = json_array_get(msg.buttons, 0);
        /* The first button's id reaches the platform. */
        if (!body || !strstr(req.body, json_string_value(json_object_get(b0, "id")))) abort();
        json_decref(body);
    }
    db_http_req_clear(&req);
    json_decref(cmd);
    return 0;
}
