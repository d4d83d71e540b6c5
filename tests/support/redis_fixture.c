#include "redis_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64
#define START_DEADLINE_MS 5000

struct db_test_redis {
    char dir[256];
    char sock[300];
    char url[320];
    char unix_url[320];
    int port; /* 0: unix socket only */
    pid_t pid;
    char *extra; /* the split extra args live here */
    char *argv_extra[MAX_ARGS];
    int nextra;
    const char *password; /* points into extra */
    redisContext *ctx;
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "redis fixture: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Splits on blanks; a pair of double quotes makes an argument of its own (so `""` passes
 * the empty string, as --save "" needs). */
static void split_args(struct db_test_redis *t, const char *extra)
{
    if (!extra) return;
    t->extra = strdup(extra);
    if (!t->extra) die("out of memory");
    char *p = t->extra;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        if (t->nextra == MAX_ARGS) die("too many extra args");
        char *start = p;
        if (*p == '"') {
            start = ++p;
            while (*p && *p != '"') p++;
        } else {
            while (*p && *p != ' ' && *p != '\t') p++;
        }
        if (*p) *p++ = '\0';
        t->argv_extra[t->nextra++] = start;
    }
    for (int i = 0; i + 1 < t->nextra; i++)
        if (strcmp(t->argv_extra[i], "--requirepass") == 0) t->password = t->argv_extra[i + 1];
}

/* A port nobody listens on right now; the server may still lose a race for it, which
 * spawn_and_wait detects by the early exit. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("bind: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

static redisContext *try_connect(struct db_test_redis *t)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectUnixWithTimeout(t->sock, tv);
    if (!c) return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (t->password) {
        redisReply *r = redisCommand(c, "AUTH %s", t->password);
        int ok = r && r->type != REDIS_REPLY_ERROR;
        if (r) freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static void spawn(struct db_test_redis *t)
{
    char portbuf[16], log[320];
    snprintf(portbuf, sizeof portbuf, "%d", t->port);
    snprintf(log, sizeof log, "%s/redis.log", t->dir);
    const char *argv[MAX_ARGS + 20];
    int n = 0;
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = portbuf;
    if (t->port) {
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
    }
    argv[n++] = "--unixsocket";
    argv[n++] = t->sock;
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = t->dir;
    for (int i = 0; i < t->nextra; i++) argv[n++] = t->argv_extra[i];
    argv[n] = NULL;

    pid_t ppid = getpid();
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != ppid) _exit(1);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp("redis-server", (char **)argv);
        _exit(127);
    }
    t->pid = pid;
}

/* 0 when PING answers within the deadline, -1 when the server exited (port taken...). */
static int wait_ready(struct db_test_redis *t)
{
    long long deadline = now_ms() + START_DEADLINE_MS;
    while (now_ms() < deadline) {
        int status;
        if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
            t->pid = 0;
            return -1;
        }
        redisContext *c = try_connect(t);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
            if (ok) {
                t->ctx = c;
                return 0;
            }
            redisFree(c);
        }
        sleep_ms(10);
    }
    die("redis-server did not answer PING within %d ms (log in %s)", START_DEADLINE_MS, t->dir);
    return -1;
}

static void start_server(struct db_test_redis *t, int pick_port)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        if (pick_port) t->port = free_port();
        spawn(t);
        if (wait_ready(t) == 0) return;
        if (!pick_port) break;
    }
    die("redis-server exited at start (see %s/redis.log)", t->dir);
}

static struct db_test_redis *start(const char *extra, int tcp)
{
    struct db_test_redis *t = calloc(1, sizeof *t);
    if (!t) die("out of memory");
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/dbredis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->dir)) die("mkdtemp: %s", strerror(errno));
    snprintf(t->sock, sizeof t->sock, "%s/redis.sock", t->dir);
    if (strlen(t->sock) >= 100) die("socket path too long: %s", t->sock);
    split_args(t, extra);
    start_server(t, tcp);
    snprintf(t->unix_url, sizeof t->unix_url, "unix://%s", t->sock);
    if (tcp) snprintf(t->url, sizeof t->url, "redis://127.0.0.1:%d", t->port);
    else snprintf(t->url, sizeof t->url, "%s", t->unix_url);
    return t;
}

struct db_test_redis *db_test_redis_start(const char *extra_args) { return start(extra_args, 0); }
struct db_test_redis *db_test_redis_start_tcp(const char *extra_args)
{
    return start(extra_args, 1);
}

const char *db_test_redis_url(const struct db_test_redis *t) { return t->url; }
const char *db_test_redis_unix_url(const struct db_test_redis *t) { return t->unix_url; }
int db_test_redis_port(const struct db_test_redis *t) { return t->port; }
int db_test_redis_pid(const struct db_test_redis *t) { return (int)t->pid; }
const char *db_test_redis_dir(const struct db_test_redis *t) { return t->dir; }

redisReply *db_test_redis_vcmd(struct db_test_redis *t, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(db_test_redis_ctx(t), fmt, ap);
    if (!r) fail_msg("redis: no answer to \"%s\"", fmt);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("redis: \"%s\": %s", fmt, r->str);
    return r;
}

redisReply *db_test_redis_cmd(struct db_test_redis *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = db_test_redis_vcmd(t, fmt, ap);
    va_end(ap);
    return r;
}

redisContext *db_test_redis_ctx(struct db_test_redis *t)
{
    if (t->ctx && !t->ctx->err) return t->ctx;
    if (t->ctx) redisFree(t->ctx);
    t->ctx = try_connect(t);
    if (!t->ctx) die("cannot connect to %s", t->sock);
    return t->ctx;
}

static void drop_ctx(struct db_test_redis *t)
{
    if (t->ctx) redisFree(t->ctx);
    t->ctx = NULL;
}

/* Waits up to ms for the server to exit; 0 when it did. */
static int reap(struct db_test_redis *t, int ms)
{
    long long deadline = now_ms() + ms;
    for (;;) {
        int status;
        pid_t p = waitpid(t->pid, &status, WNOHANG);
        if (p == t->pid || (p < 0 && errno == ECHILD)) {
            t->pid = 0;
            return 0;
        }
        if (now_ms() >= deadline) return -1;
        sleep_ms(5);
    }
}

void db_test_redis_kill(struct db_test_redis *t, int sig)
{
    if (!t->pid) return;
    if (kill(t->pid, sig) != 0) die("kill: %s", strerror(errno));
    if (sig == SIGSTOP || sig == SIGCONT) return;
    drop_ctx(t);
    if (reap(t, 10000) != 0) die("redis-server did not exit after signal %d", sig);
}

static void terminate(struct db_test_redis *t)
{
    drop_ctx(t);
    if (!t->pid) return;
    kill(t->pid, SIGCONT); /* a stopped server cannot act on SIGTERM */
    kill(t->pid, SIGTERM);
    if (reap(t, 5000) != 0) {
        kill(t->pid, SIGKILL);
        reap(t, 5000);
    }
}

void db_test_redis_restart(struct db_test_redis *t)
{
    terminate(t);
    start_server(t, 0);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void db_test_redis_stop(struct db_test_redis *t)
{
    if (!t) return;
    terminate(t);
    nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(t->extra);
    free(t);
}

void db_test_same_reply(const redisReply *a, const redisReply *b, const char *what)
{
    if (a->type != b->type) fail_msg("%s: reply types %d and %d", what, a->type, b->type);
    if (a->type == REDIS_REPLY_ARRAY) {
        if (a->elements != b->elements)
            fail_msg("%s: %zu and %zu elements", what, a->elements, b->elements);
        for (size_t i = 0; i < a->elements; i++)
            db_test_same_reply(a->element[i], b->element[i], what);
    } else if (a->type == REDIS_REPLY_STRING || a->type == REDIS_REPLY_STATUS) {
        if (a->len != b->len || memcmp(a->str, b->str, a->len) != 0)
            fail_msg("%s: \"%s\" and \"%s\"", what, a->str, b->str);
    } else if (a->type == REDIS_REPLY_INTEGER && a->integer != b->integer) {
        fail_msg("%s: %lld and %lld", what, a->integer, b->integer);
    }
}

void db_test_redis_run(struct db_test_redis *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    freeReplyObject(db_test_redis_vcmd(t, fmt, ap));
    va_end(ap);
}
