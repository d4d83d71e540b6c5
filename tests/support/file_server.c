/* file_server.c - see file_server.h.  One thread accepts and answers one request per
 * connection; the table of files and the request log are under one mutex. */
#include "file_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_FILES 32
#define MAX_SEEN 256

struct file {
    char path[256];
    int status;
    char ctype[96];
    char *body;
    size_t len, cut_at;
};

struct db_files {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    struct file files[MAX_FILES];
    size_t n_files;
    char seen[MAX_SEEN][256];
    size_t n_seen;
};

static int send_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t w = send(fd, c, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads the request head (the body of a GET is not expected); 0 with the path, -1. */
static int read_path(int fd, char *path, size_t n)
{
    char buf[8192];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) return -1;
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) return -1;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n")) break;
    }
    char method[16], target[256];
    if (sscanf(buf, "%15s %255s", method, target) != 2) return -1;
    snprintf(path, n, "%s", target);
    return 0;
}

static void serve_one(struct db_files *s, int fd)
{
    char path[256];
    if (read_path(fd, path, sizeof path) != 0) return;
    pthread_mutex_lock(&s->mu);
    if (s->n_seen < MAX_SEEN) snprintf(s->seen[s->n_seen++], sizeof s->seen[0], "%s", path);
    struct file f = {.status = 404, .ctype = "text/plain"}; /* no file: an empty 404 */
    char *body = NULL;
    for (size_t i = 0; i < s->n_files; i++)
        if (strcmp(s->files[i].path, path) == 0) {
            f = s->files[i];
            /* A copy: the table may change while this answer is written. */
            body = f.len ? malloc(f.len) : NULL;
            if (body) memcpy(body, s->files[i].body, f.len);
            else f.len = 0;
        }
    pthread_mutex_unlock(&s->mu);
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      f.status, f.ctype, f.len);
    size_t send_n = f.cut_at < f.len ? f.cut_at : f.len;
    if (send_all(fd, head, (size_t)hn) == 0 && send_n) (void)send_all(fd, body, send_n);
    free(body);
}

static void *main_loop(void *arg)
{
    struct db_files *s = arg;
    while (!s->stop) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) continue;
        serve_one(s, c);
        close(c);
    }
    return NULL;
}

struct db_files *db_files_start(void)
{
    struct db_files *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->fd, 32), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, main_loop, s), 0);
    return s;
}

void db_files_stop(struct db_files *s)
{
    if (!s) return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
    for (size_t i = 0; i < s->n_files; i++) free(s->files[i].body);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int db_files_port(const struct db_files *s)
{
    return s->port;
}

void db_files_put(struct db_files *s, const char *path, int status, const char *ctype,
                  const void *body, size_t len, size_t cut_at)
{
    assert_true(strlen(path) < sizeof s->files[0].path);
    char *copy = len ? malloc(len) : NULL;
    if (len) {
        assert_non_null(copy);
        memcpy(copy, body, len);
    }
    pthread_mutex_lock(&s->mu);
    struct file *f = NULL;
    for (size_t i = 0; i < s->n_files && !f; i++)
        if (strcmp(s->files[i].path, path) == 0) f = &s->files[i];
    if (!f && s->n_files < MAX_FILES) f = &s->files[s->n_files++];
    if (f) {
        free(f->body);
        snprintf(f->path, sizeof f->path, "%s", path);
        snprintf(f->ctype, sizeof f->ctype, "%s", ctype);
        f->status = status;
        f->body = copy;
        f->len = len;
        f->cut_at = cut_at;
        copy = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    assert_null(copy); /* the table was full */
}

size_t db_files_count(struct db_files *s, const char *path)
{
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_seen; i++)
        if (!path || strcmp(s->seen[i], path) == 0) n++;
    pthread_mutex_unlock(&s->mu);
    return n;
}
