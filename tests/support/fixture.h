/* fixture.h - data-driven connector tests.
 *
 * A case is tests/fixtures/<platform>/<name>.json (the webhook body, byte-exact) and
 * <name>.expected.json, which holds either
 *   {"events": [ {...}, ... ], "reply_body": <optional JSON value>}
 * where each object is the exact event the connector must produce plus "_dedupe" (its dedupe
 * key), or
 *   {"error": "EINVAL"}            (parse must fail with that code and append nothing).
 * Optional "headers": {"Name": "value"} and "query": "..." in the expected file are applied
 * to the inbound request. */
#ifndef DB_TEST_FIXTURE_H
#define DB_TEST_FIXTURE_H

#include "deskbridge/connector.h"

/* Runs every case in tests/fixtures/<dir> through conn->parse with acct and checks the
 * result with cmocka assertions (failing the current test with the case name).  Returns the
 * number of cases run; a directory with no case fails the test. */
int db_test_run_fixtures(const struct db_connector *conn, const void *acct, const char *dir);

/* Builds an account of conn from "key=value" strings (NULL-terminated), platform conn->name
 * and id account; fails the test on error.  Free with conn->account_free. */
void *db_test_account(const struct db_connector *conn, const char *account,
                      const char *const *kv);

/* Asserts that conn refuses the account made of kv ("key=value" strings, NULL-terminated, on
 * lines 1, 2, ... of "test.conf") with key set to value on line 9 instead of any line of kv
 * that sets it: DB_ECONFIG, nothing built, the message exactly want, and value (when it is
 * longer than 3 bytes) nowhere in it, since account values may be secrets. */
void db_test_account_refuses(const struct db_connector *conn, const char *account,
                             const char *const *kv, const char *key, const char *value,
                             const char *want);

#endif
