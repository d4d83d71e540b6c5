/* httpd.h - the gateway's HTTP/1.1 server on libevent.
 *
 * Own parser rather than evhttp because every limit must be explicit and every error must
 * be a JSON body: header bytes and count, body size decided per route *before* the body is
 * read (413 without buffering it), read timeouts for slow clients, a connection cap,
 * Content-Length together with Transfer-Encoding refused, NUL bytes in headers refused.
 * Keep-alive and chunked request bodies are supported; pipelined requests are served in
 * order.
 *
 * Handlers may answer later (after a Redis round trip): a request stays valid until it is
 * answered with one of the db_httpd_respond* calls, even when the client went away (the
 * answer is then dropped).  Every request must be answered exactly once. */
#ifndef DB_HTTPD_H
#define DB_HTTPD_H

#include <stddef.h>

#include "deskbridge/http_msg.h"
#include "deskbridge/status.h"

#include "net/httpd_types.h"

struct event_base;

/* New server on base; limits may be NULL for the defaults (a zero member takes its default).
 * Returns NULL on ENOMEM.  Free with db_httpd_free. */
struct db_httpd *db_httpd_new(struct event_base *base, const struct db_httpd_limits *limits,
                              db_httpd_body_limit_fn limit_cb, db_httpd_handler_fn handler,
                              void *arg);

/* Listens on "host:port" (IPv4, [IPv6] or a hostname; port 0 picks a free port).  With
 * reuseport, SO_REUSEPORT is set so several processes share the port.  May be called more
 * than once.  DB_OK or DB_EIO with the reason in e. */
int db_httpd_listen(struct db_httpd *s, const char *host_port, int reuseport, struct db_err *e)
    DB_MUST_CHECK;
/* Port of the first listener (after port 0 was asked), or -1. */
int db_httpd_port(const struct db_httpd *s);

/* Stops accepting new connections; open connections finish their current request and are
 * closed instead of kept alive. */
void db_httpd_stop_accepting(struct db_httpd *s);
/* Requests received but not yet answered. */
size_t db_httpd_inflight(const struct db_httpd *s);
/* Connections open now. */
size_t db_httpd_connections(const struct db_httpd *s);
/* The most connections that were open at once since the start or the last reset, which
 * brings it down to the connections open now. */
size_t db_httpd_connections_peak(const struct db_httpd *s);
void db_httpd_connections_peak_reset(struct db_httpd *s);
/* Closes every connection and listener and frees s.  Unanswered requests are dropped.
 * NULL-safe. */
void db_httpd_free(struct db_httpd *s);

/* ---- the request (borrowed pointers, valid until the request is answered) ---- */
const char *db_httpd_req_method(const struct db_httpd_req *r);
const char *db_httpd_req_path(const struct db_httpd_req *r);  /* percent-decoded, no query */
const char *db_httpd_req_query(const struct db_httpd_req *r); /* raw, NULL when none */
const char *db_httpd_req_header(const struct db_httpd_req *r, const char *name);
const struct db_headers *db_httpd_req_headers(const struct db_httpd_req *r);
const unsigned char *db_httpd_req_body(const struct db_httpd_req *r, size_t *len);
const char *db_httpd_req_peer(const struct db_httpd_req *r); /* "ip:port" */
/* Fills a connector view of the request (all borrowed from r). */
void db_httpd_req_inbound(const struct db_httpd_req *r, struct db_inbound *in);
/* Per-request pointer for the handler's own use (NULL initially). */
void db_httpd_req_set_data(struct db_httpd_req *r, void *data);
void *db_httpd_req_data(const struct db_httpd_req *r);

/* ---- answers: exactly one per request ---- */

/* Sends status with body (copied) and Content-Type ctype; extra headers as "Name: value"
 * pairs in a NULL-terminated array (may be NULL). */
void db_httpd_respond(struct db_httpd_req *r, int status, const char *ctype, const void *body,
                      size_t len, const char *const *extra_headers);
/* Sends status with {"error": {"code": code, "message": message}} as application/json. */
void db_httpd_respond_error(struct db_httpd_req *r, int status, const char *code,
                            const char *message);

/* Streaming answers (Server-Sent Events, media downloads): start sends the head with
 * chunked transfer-encoding; chunk sends bytes; end finishes the request.  When the client
 * disconnects, gone_cb is called once (and the request must still be ended with
 * db_httpd_stream_end, which then only frees it; db_httpd_gone_fn in httpd_types.h). */
void db_httpd_stream_start(struct db_httpd_req *r, int status, const char *ctype,
                           const char *const *extra_headers, db_httpd_gone_fn gone_cb,
                           void *arg);
/* 0, or -1 when the client is gone.  Data is buffered; see db_httpd_stream_pending. */
int db_httpd_stream_chunk(struct db_httpd_req *r, const void *data, size_t len);
/* Bytes queued to the client but not yet written (for back-pressure). */
size_t db_httpd_stream_pending(const struct db_httpd_req *r);
void db_httpd_stream_end(struct db_httpd_req *r);
/* Ends a stream that broke off: what was queued is still written, then the connection is
 * closed without the closing chunk, so the client knows the body is incomplete. */
void db_httpd_stream_abort(struct db_httpd_req *r);

#endif
