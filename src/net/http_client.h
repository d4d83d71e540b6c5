/* http_client.h - outbound HTTP on the event loop (libcurl multi driven by libevent).
 *
 * Used for platform API calls (sends, long polls, media lookups) and helpdesk webhooks.
 * Connections are kept alive and reused per host.  Response bodies are capped.  With
 * block_private set, a connection to a loopback, private, link-local, CGNAT, ULA or
 * IPv4-mapped-private address is refused after DNS resolution (SSRF guard for URLs that
 * agents or payloads supply); platform base URLs configured by the operator use a client
 * without it, so tests can point them at 127.0.0.1.  A guarded client may be given one
 * loopback address and port that it still reaches (test_allow), for tests of files that a
 * webhook names. */
#ifndef DB_HTTP_CLIENT_H
#define DB_HTTP_CLIENT_H

#include <stddef.h>

#include "deskbridge/http_msg.h"
#include "deskbridge/status.h"

struct event_base;
struct db_http_client;
struct db_http_call;

struct db_http_client_opts {
    long timeout_ms;            /* whole request (default 30000); per call override below */
    long connect_timeout_ms;    /* default 5000 */
    size_t max_response_bytes;  /* body cap, default 4 MiB; larger -> transport_error */
    int max_connections;        /* total open connections (default 64) */
    int max_per_host;           /* default 16 */
    int block_private;          /* SSRF guard (see above) */
    /* Tests only (DESKBRIDGE_TEST_ALLOW_FETCH): "127.0.0.1:PORT" or "[::1]:PORT", the one
     * loopback address and port the guard lets through, over http too, for a URL naming
     * exactly that address literal and port (net/netcheck.h db_http_allow_parse; anything
     * else makes db_http_client_new fail).  Copied; NULL = no exception. */
    const char *test_allow;
    /* Optional: every request signed by libcurl itself with AWS Signature V4
     * (CURLOPT_AWS_SIGV4, e.g. "aws:amz:us-east-1:s3") under userpwd ("<key id>:<secret>",
     * CURLOPT_USERPWD).  Both copied; NULL = unsigned. */
    const char *aws_sigv4, *userpwd;
};

/* Called once per call with the answer (or resp->status 0 and transport_error set).
 * resp and everything it points to are borrowed for the duration of the callback. */
typedef void (*db_http_done_fn)(const struct db_http_resp *resp, void *arg);
/* Streaming variant: called for each piece of body as it arrives (after the status line and
 * headers are known); return 0 to continue, -1 to abort the transfer. */
typedef int (*db_http_data_fn)(long status, const struct db_headers *headers,
                               const char *data, size_t len, void *arg);

struct db_http_client *db_http_client_new(struct event_base *base,
                                          const struct db_http_client_opts *opts);
/* 1 when URLs a and b name the same host, as libcurl parses them (so the answer is about
 * the host curl would connect to); 0 when they differ or either does not parse. */
int db_http_same_host(const char *a, const char *b);
/* Aborts every call in flight (their done callbacks run with transport_error "cancelled")
 * and frees c.  NULL-safe. */
void db_http_client_free(struct db_http_client *c);

/* Starts req (copied; the caller may clear it at once).  timeout_ms 0 = the client default.
 * A guarded client takes https URLs only, except one naming its test_allow address.
 * done is called exactly once, never before this returns.  With data_cb set, the body is
 * not collected but handed to data_cb piece by piece (done then gets body NULL).  *call (if
 * not NULL) gets a handle for db_http_call_cancel, valid until done runs.  DB_OK or
 * DB_ENOMEM / DB_EINVAL (bad URL).  The first send of the process initialises libcurl;
 * when that fails, every send returns DB_OK and done gets status 0 with transport_error
 * "libcurl cannot be initialised (curl_global_init failed)" (the URL is then not checked). */
int db_http_client_send(struct db_http_client *c, const struct db_http_req *req,
                        long timeout_ms, db_http_done_fn done, db_http_data_fn data_cb,
                        void *arg, struct db_http_call **call) DB_MUST_CHECK;
/* Aborts a call; its done callback runs with transport_error "cancelled" before this
 * returns. */
void db_http_call_cancel(struct db_http_call *call);

/* Calls in flight. */
size_t db_http_client_inflight(const struct db_http_client *c);

#endif
