/* bare_server - the ceiling of the HTTP layer for bench/run.sh.
 *
 * One libevent evhttp loop on 127.0.0.1:PORT that reads each request whole and answers 200
 * with a tiny JSON body, doing no other work.  The gateway is measured against it so the
 * report can say how much of the gap to wrk's numbers is the HTTP library and how much is
 * ours.  Built by run.sh with cc, not part of the CMake build.
 *
 * usage: bare_server PORT   (PORT 0 = the kernel picks; the chosen port is printed on stdout) */
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(out, "{\"ok\":true}", 11);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    int rc = 1;
    struct event_base *base = NULL;
    struct evhttp *http = NULL;
    struct event *sig = NULL;
    int port = argc > 1 ? atoi(argv[1]) : 0;

    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base) goto fail;
    http = evhttp_new(base);
    if (!http) goto fail;
    /* Webhook-sized limits, like the gateway's, so both refuse the same abuse. */
    evhttp_set_max_body_size(http, 1 << 20);
    evhttp_set_gencb(http, on_request, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", (unsigned short)port);
    if (!bs) {
        fprintf(stderr, "bare_server: cannot bind 127.0.0.1:%d\n", port);
        goto fail;
    }
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len) != 0) goto fail;
    printf("port %d\n", ntohs(sin.sin_port));
    fflush(stdout);
    sig = evsignal_new(base, SIGTERM, on_signal, base);
    if (!sig || event_add(sig, NULL) != 0) goto fail;
    event_base_dispatch(base);
    rc = 0;
fail:
    if (sig) event_free(sig);
    if (http) evhttp_free(http);
    if (base) event_base_free(base);
    return rc;
}
