/* sse.h - an inbox stream served to one HTTP client as Server-Sent Events, live.
 *
 * An inbox stream's entries have the fields type, conversation and data (data JSON text);
 * each becomes `id: <entry id>`, `event: <type>`, `data: {"type","conversation","data"}`.
 * The client gets the entries after a starting id, then every new one as it is written: the
 * process's waker (wake.h) calls when the stream grows, and the entries are read then with
 * XRANGE; without a waker the stream is read every DB_SSE_POLL_MS.  A comment line goes out
 * after 15 s of silence, so proxies keep the connection.  A client that does not read is not
 * sent more until it has taken what is queued (1 MiB). */
#ifndef DB_STREAM_SSE_H
#define DB_STREAM_SSE_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct db_services;
struct db_httpd_req;
struct db_sse;

#define DB_SSE_POLL_MS 200

struct db_sse_opts {
    const char *key;  /* the stream */
    const char *from; /* the last entry the client has ("0-0": from the start) */
    /* Optional: called for every entry before it is sent; return 0 to skip it. */
    int (*filter)(const redisReply *entry, void *arg);
    /* Optional: called once when the stream ends (client gone, shutdown); the owner frees
     * what arg holds then.  db_sse_send must not be called after. */
    void (*on_end)(void *arg);
    void *arg;
};

/* Starts the stream on req (200 text/event-stream; extra_headers NULL-terminated, may be
 * NULL).  Returns the stream, or NULL after answering 500 (out of memory; on_end not called). */
struct db_sse *db_sse_start(struct db_services *svc, struct db_httpd_req *req,
                            const struct db_sse_opts *o, const char *const *extra_headers);
/* Sends one more event of the owner's own (event name and one line of data); 0, or -1 when
 * the client is gone or has too much queued. */
int db_sse_send(struct db_sse *s, const char *event, const char *data);

#endif
