/* fake_telegram - a fast stand-in for the Telegram Bot API, for bench/run.sh.
 *
 * tests/tools/fake_platform_server records every request for later inspection, which is what
 * tests want and what a throughput run cannot afford; this one only counts.  Every request is
 * answered 200 with a Bot API success whose result carries both a fresh message_id (what a
 * send reads) and the fields getMe/getWebhookInfo readers look for, so the gateway can start
 * against it.  GET /_stats answers {"sends":N,"first_us":T0,"last_us":T1} where sends counts
 * POSTs to .../sendMessage and the times are CLOCK_MONOTONIC microseconds of the first and
 * last of them, so the sender's rate is measured where the sends land.  A POST to a path ending
 * in /messages (the WhatsApp Graph API's send, for bench/soak.sh) is answered with a Graph
 * API success carrying a fresh wamid.fake.<n> and counted in "wa_sends".
 *
 * usage: fake_telegram PORT   (0 = the kernel picks; "port N" is printed on stdout) */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct counts {
    unsigned long long sends, next_id, first_us, last_us, wa_sends;
};

static unsigned long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct counts *c = arg;
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    const char *uri = evhttp_request_get_uri(req);
    char path[512];
    /* The query, if any, is not part of the method name. */
    size_t n = strcspn(uri, "?");
    if (n >= sizeof path) n = sizeof path - 1;
    memcpy(path, uri, n);
    path[n] = '\0';
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (strcmp(path, "/_stats") == 0) {
        evbuffer_add_printf(out, "{\"sends\":%llu,\"first_us\":%llu,\"last_us\":%llu,\"wa_sends\":%llu}\n",
                            c->sends, c->first_us, c->last_us, c->wa_sends);
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST && ends_with(path, "/sendMessage")) {
        unsigned long long t = now_us();
        if (c->sends++ == 0) c->first_us = t;
        c->last_us = t;
    }
    c->next_id++;
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST && ends_with(path, "/messages")) {
        c->wa_sends++;
        evbuffer_add_printf(out,
                            "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"1\","
                            "\"wa_id\":\"1\"}],\"messages\":[{\"id\":\"wamid.fake.%llu\"}]}",
                            c->next_id);
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    evbuffer_add_printf(out,
                        "{\"ok\":true,\"result\":{\"message_id\":%llu,\"date\":1749416383,"
                        "\"chat\":{\"id\":1,\"type\":\"private\"},\"id\":123456,\"is_bot\":true,"
                        "\"first_name\":\"bench\",\"username\":\"bench_bot\",\"url\":\"\","
                        "\"pending_update_count\":0}}",
                        c->next_id);
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
    struct counts c = {0, 0, 0, 0, 0};
    struct event_base *base = NULL;
    struct evhttp *http = NULL;
    struct event *sig = NULL;
    int port = argc > 1 ? atoi(argv[1]) : 0;

    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base) goto fail;
    http = evhttp_new(base);
    if (!http) goto fail;
    evhttp_set_gencb(http, on_request, &c);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", (unsigned short)port);
    if (!bs) {
        fprintf(stderr, "fake_telegram: cannot bind 127.0.0.1:%d\n", port);
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
