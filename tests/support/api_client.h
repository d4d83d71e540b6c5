/* api_client.h - the agent API and the streams as the end-to-end tests use them. */
#ifndef DB_TEST_API_CLIENT_H
#define DB_TEST_API_CLIENT_H

#include <hiredis/hiredis.h>
#include <jansson.h>

/* POSTs json to path on 127.0.0.1:port with "Authorization: Bearer <token>"; *status gets
 * the HTTP status.  Returns the answer body (malloc'd, caller frees; NULL without one). */
char *db_test_post_json(int port, const char *token, const char *path, const char *json,
                        int *status);

/* One call to 127.0.0.1:port with "Authorization: Bearer <token>" and a JSON body (body may
 * be NULL).  *out (when out is not NULL) gets the answer's JSON, NULL when the body is not
 * JSON; the caller decrefs it.  Returns the HTTP status (0 when the connection failed). */
int db_test_api(int port, const char *token, const char *method, const char *path,
                const char *body, json_t **out);

/* Polls GET /v1/messages/<id> until its status is want; fails the test (printing the last
 * record seen) after timeout_ms.  Returns the record (new reference). */
json_t *db_test_wait_message(int port, const char *token, const char *id, const char *want,
                             int timeout_ms);

/* XLEN of deskbridge:<stream> (the default prefix); fails the test when Redis does not
 * answer. */
long long db_test_xlen(redisContext *c, const char *stream);

/* Waits until consumer group group of deskbridge:events has been handed the stream's newest
 * entry and acknowledged everything it was handed; fails the test after timeout_ms. */
void db_test_wait_events_read(redisContext *c, const char *group, int timeout_ms);

/* The JSON in field of the newest entry of deskbridge:<stream> (new reference); fails the
 * test when the stream is empty or the field is missing. */
json_t *db_test_last_entry(redisContext *c, const char *stream, const char *field);

#endif
