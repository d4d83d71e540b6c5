/* tcp_fault_proxy - a TCP proxy whose behaviour a test switches through a file.
 *
 *   tcp_fault_proxy LISTEN_PORT TARGET_HOST TARGET_PORT CONTROL_FILE
 *
 * Listens on 127.0.0.1:LISTEN_PORT (0 = any; the port is printed as "port N") and relays
 * each connection to TARGET.  Every 100 ms it reads one word from CONTROL_FILE:
 *   pass   relay bytes (default, also when the file is missing or unreadable)
 *   stall  relay nothing, keep every connection open (a hung server / black hole)
 *   reset  abort every connection with RST and refuse new ones
 *   drop   accept nothing new (connects pile up in the backlog), keep existing ones */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

enum mode { PASS, STALL, RESET, DROP };

struct pair {
    struct bufferevent *side[2]; /* 0 client, 1 target */
    struct pair *prev, *next;
};

static struct event_base *base;
static struct evconnlistener *listener;
static struct sockaddr_storage target;
static int target_len;
static const char *control;
static enum mode mode = PASS;
static struct pair *pairs;

static void abort_bev(struct bufferevent *bev)
{
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0) {
        /* Zero linger turns close() into an RST, as a crashed peer or firewall would. */
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    bufferevent_free(bev);
}

static void pair_close(struct pair *p, int rst)
{
    for (int i = 0; i < 2; i++) {
        if (!p->side[i]) continue;
        if (rst) abort_bev(p->side[i]);
        else bufferevent_free(p->side[i]);
    }
    if (p->prev) p->prev->next = p->next;
    else pairs = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p);
}

static void relay(struct pair *p, int from)
{
    struct evbuffer *in = bufferevent_get_input(p->side[from]);
    struct evbuffer *out = bufferevent_get_output(p->side[!from]);
    evbuffer_add_buffer(out, in);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct pair *p = arg;
    if (mode == STALL) return; /* data stays in the input buffer until "pass" */
    relay(p, bev == p->side[1]);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct pair *p = arg;
    if (what & BEV_EVENT_CONNECTED) return;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        int from = bev == p->side[1];
        if (mode != STALL) relay(p, from); /* forward what is left before closing */
        pair_close(p, 0);
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    if (mode == RESET) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        evutil_closesocket(fd);
        return;
    }
    struct pair *p = calloc(1, sizeof *p);
    if (!p) goto fail;
    p->side[0] = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    p->side[1] = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!p->side[0] || !p->side[1]) goto fail;
    p->next = pairs;
    if (pairs) pairs->prev = p;
    pairs = p;
    for (int i = 0; i < 2; i++) {
        bufferevent_setcb(p->side[i], read_cb, NULL, event_cb, p);
        bufferevent_enable(p->side[i], EV_READ | EV_WRITE);
    }
    if (bufferevent_socket_connect(p->side[1], (struct sockaddr *)&target, target_len) != 0)
        pair_close(p, 1);
    return;
fail:
    if (p && p->side[0]) bufferevent_free(p->side[0]);
    else evutil_closesocket(fd);
    if (p && p->side[1]) bufferevent_free(p->side[1]);
    free(p);
}

static enum mode read_mode(void)
{
    char word[32] = "";
    FILE *f = fopen(control, "r");
    if (!f) return PASS;
    if (fscanf(f, "%31s", word) != 1) word[0] = '\0';
    fclose(f);
    if (strcmp(word, "stall") == 0) return STALL;
    if (strcmp(word, "reset") == 0) return RESET;
    if (strcmp(word, "drop") == 0) return DROP;
    return PASS;
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    enum mode m = read_mode();
    if (m == mode) return;
    enum mode old = mode;
    mode = m;
    if (m == RESET)
        while (pairs) pair_close(pairs, 1);
    if (m == DROP) evconnlistener_disable(listener);
    else if (old == DROP) evconnlistener_enable(listener);
    if (old == STALL && m != STALL) {
        /* Release what piled up while stalled. */
        for (struct pair *p = pairs; p; p = p->next) {
            relay(p, 0);
            relay(p, 1);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s LISTEN_PORT TARGET_HOST TARGET_PORT CONTROL_FILE\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    control = argv[4];
    char spec[300];
    snprintf(spec, sizeof spec, "%s:%s", argv[2], argv[3]);
    target_len = sizeof target;
    if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&target, &target_len) != 0) {
        fprintf(stderr, "bad target %s (numeric address expected)\n", spec);
        return 2;
    }
    base = event_base_new();
    if (!base) return 1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    listener = evconnlistener_new_bind(base, accept_cb, NULL,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                       (struct sockaddr *)&sin, sizeof sin);
    if (!listener) {
        perror("listen");
        return 1;
    }
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    getsockname(evconnlistener_get_fd(listener), (struct sockaddr *)&bound, &blen);
    printf("port %d\n", ntohs(bound.sin_port));
    fflush(stdout);
    mode = read_mode();
    if (mode == DROP) evconnlistener_disable(listener);
    struct event *poll = event_new(base, -1, EV_PERSIST, poll_cb, NULL);
    struct timeval tv = {0, 100 * 1000};
    event_add(poll, &tv);
    event_base_dispatch(base);
    event_free(poll);
    evconnlistener_free(listener);
    event_base_free(base);
    return 0;
}
