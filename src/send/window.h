/* window.h - WhatsApp's customer-service window as the gateway keeps it.
 *
 * WhatsApp delivers a free-form message (anything but a template) only within 24 hours of the
 * customer's last message; later ones fail at Meta with 131047.  The gateway remembers each
 * WhatsApp conversation's newest customer message and its time (the platform's, stored by the
 * ingest: store/store.h, db_store_customer_last), so a reply that would fail is refused before
 * Meta is called: with 409 window_closed at the API, as a failed message with that code on
 * the outbox.  A conversation whose customer message the gateway does not know (older than the
 * store keeps, or from before this gateway) is let through; Meta's 131047 still tells then. */
#ifndef DB_WINDOW_H
#define DB_WINDOW_H

#include <stdint.h>

#include "conf/config.h"
#include "deskbridge/connector.h"

struct db_store;

#define DB_WINDOW_S 86400

/* The code and the agent's explanation of a refusal. */
#define DB_WINDOW_CLOSED_CODE "window_closed"
#define DB_WINDOW_CLOSED_MSG                                                                   \
    "the customer's last message is more than 24 hours old: WhatsApp takes only a template "   \
    "message now (send \"template\")"

/* 1 when msg to acct is free-form on a platform with a window: a WhatsApp message without a
 * template. */
int db_window_applies(const struct db_account *acct, const struct db_outbound *msg);

/* Now, in Unix seconds, as the window sees it: the clock moved by the test hook
 * DESKBRIDGE_CLOCK_OFFSET_S (seconds, may be negative), as for the automatic answers. */
int64_t db_window_now_s(void);

/* 1 when a reply at now_s is outside the window opened by a customer message at last_in_s. */
int db_window_closed(int64_t last_in_s, int64_t now_s);

/* cb(DB_OK) when conversation's window is open or unknown, cb(DB_EREJECTED) when it is
 * closed, cb(DB_EAGAIN) when Redis could not say. */
typedef void (*db_window_fn)(int status, void *arg);
void db_window_check(struct db_store *store, const char *conversation, db_window_fn cb,
                     void *arg);

#endif
