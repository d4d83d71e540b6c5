#include "daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

int db_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        fail_msg("no free port: %s", strerror(errno));
    close(fd);
    return ntohs(sa.sin_port);
}

/* Every gateway a test started, so that one a failed test left running dies with the test
 * binary instead of outliving it: a test that fails skips its own stop, and one that aborts
 * (a sanitizer report, with abort_on_error) skips the atexit handlers too.  Tests start
 * gateways from several threads (see db_test_daemon_start for a killed test binary). */
/* volatile: the SIGABRT handler may read them between any two stores of remember() */
static volatile pid_t started[512];
static volatile sig_atomic_t n_started;
static pthread_mutex_t started_lock = PTHREAD_MUTEX_INITIALIZER;

/* Only waitpid and kill: it also runs in the SIGABRT handler. */
static void kill_started(void)
{
    for (sig_atomic_t i = 0; i < n_started; i++)
        /* only a child of ours that still runs: a reaped pid may belong to anyone now */
        if (waitpid(started[i], NULL, WNOHANG) == 0) {
            kill(started[i], SIGKILL);
            waitpid(started[i], NULL, 0);
        }
}

static void kill_leftovers(void)
{
    pthread_mutex_lock(&started_lock);
    kill_started();
    pthread_mutex_unlock(&started_lock);
}

static void abort_handler(int sig)
{
    kill_started();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void remember(pid_t pid)
{
    pthread_mutex_lock(&started_lock);
    if (n_started == 0) {
        atexit(kill_leftovers);
        signal(SIGABRT, abort_handler);
    }
    if (n_started < (sig_atomic_t)(sizeof started / sizeof started[0])) {
        started[n_started] = pid;
        n_started = n_started + 1;
    }
    pthread_mutex_unlock(&started_lock);
}

static int healthy(void *arg)
{
    struct db_test_daemon *d = arg;
    struct db_test_resp r;
    db_test_http(d->port, "GET", "/healthz", NULL, NULL, 0, &r);
    int ok = r.status == 200;
    db_test_resp_clear(&r);
    return ok || !db_test_daemon_alive(d);
}

int db_test_daemon_start(struct db_test_daemon *d, const char *const *env,
                         const char *const *args, int port)
{
    memset(d, 0, sizeof *d);
    d->port = port ? port : db_test_free_port();
    snprintf(d->log_path, sizeof d->log_path, "/tmp/deskbridge-test-%d-%d.log", (int)getpid(),
             d->port);
    char listen_env[64];
    snprintf(listen_env, sizeof listen_env, "DESKBRIDGE_LISTEN=127.0.0.1:%d", d->port);
    const char *envp[64];
    size_t n = 0;
    static char path_env[1024];
    snprintf(path_env, sizeof path_env, "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin");
    envp[n++] = path_env;
    envp[n++] = listen_env;
    for (size_t i = 0; env && env[i] && n < 62; i++) envp[n++] = env[i];
    envp[n] = NULL;
    const char *argv[32] = {DB_DAEMON_PATH};
    size_t a = 1;
    for (size_t i = 0; args && args[i] && a < 31; i++) argv[a++] = args[i];
    argv[a] = NULL;

    /* A gateway forked by the main thread dies with the test binary even when that is killed
     * outright (ctest's timeout), where neither atexit nor the SIGABRT handler runs.  The
     * death signal fires when the forking *thread* ends, so a gateway started from another
     * thread (test_outbound_faults restarts from one that ends first) goes without it. */
    pid_t parent = getpid();
    int from_main = (pid_t)syscall(SYS_gettid) == parent;
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        if (from_main) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(127); /* the test died before the prctl */
        }
        int fd = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execve(DB_DAEMON_PATH, (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    d->pid = pid;
    remember(pid);
    if (!db_test_wait(healthy, d, 10000) || !db_test_daemon_alive(d)) {
        char *log = db_test_read_file(d->log_path, NULL);
        print_error("daemon log:\n%s\n", log);
        free(log);
        fail_msg("daemon did not become healthy on port %d", d->port);
    }
    return 0;
}

int db_test_daemon_alive(struct db_test_daemon *d)
{
    if (d->pid <= 0) return 0;
    int st;
    pid_t r = waitpid(d->pid, &st, WNOHANG);
    if (r == d->pid) {
        d->pid = -st - 1; /* remember that it is gone */
        return 0;
    }
    return r == 0;
}

int db_test_daemon_stop(struct db_test_daemon *d, int sig)
{
    if (d->pid <= 0) return d->pid < 0 ? -(d->pid + 1) : 0;
    kill(d->pid, sig);
    int st = 0;
    for (int i = 0; i < 250; i++) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return st;
        }
        usleep(20000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return st;
}

int db_test_daemon_log_count(const struct db_test_daemon *d, const char *needle)
{
    FILE *f = fopen(d->log_path, "r");
    if (!f) return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle)) n++;
    fclose(f);
    return n;
}

void db_test_daemon_log_tail(const struct db_test_daemon *d, int n, FILE *out)
{
    FILE *f = fopen(d->log_path, "r");
    if (!f || n <= 0) {
        if (f) fclose(f);
        return;
    }
    /* Two passes: count the lines, then print from the first of the last n. */
    char line[8192];
    long total = 0, at = 0;
    while (fgets(line, sizeof line, f)) total++;
    rewind(f);
    while (fgets(line, sizeof line, f))
        if (at++ >= total - n) fputs(line, out);
    fclose(f);
}

/* cmocka reports a failed group teardown but still exits 0, so a check that fails there is
 * also made to end the test program with status 1. */
static void fail_at_exit(void)
{
    fflush(NULL);
    _exit(1);
}

void db_test_exit_failing(void)
{
    static int registered;
    if (!registered++) atexit(fail_at_exit);
}

void db_test_daemon_assert_log_clean(const struct db_test_daemon *d,
                                     const char *const *never_logged)
{
    /* A sanitizer report that did not end the process still fails the test. */
    static const char *const reports[] = {"runtime error", "Sanitizer", NULL};
    const char *const *lists[] = {never_logged, reports};
    for (size_t l = 0; l < 2; l++)
        for (const char *const *n = lists[l]; n && *n; n++) {
            int hits = db_test_daemon_log_count(d, *n);
            if (hits) {
                fprintf(stderr, "%d line(s) of %s contain \"%s\"\n", hits, d->log_path, *n);
                db_test_exit_failing();
            }
            assert_int_equal(hits, 0);
        }
}

void db_test_daemon_stop_clean(struct db_test_daemon *d, const char *const *never_logged)
{
    int st = db_test_daemon_stop(d, SIGTERM);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "the daemon did not exit with 0 on SIGTERM (wait status %#x); log: %s\n",
                (unsigned)st, d->log_path);
        db_test_exit_failing();
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    db_test_daemon_assert_log_clean(d, never_logged);
    if (!getenv("KEEP_LOG") && !d->keep_log) unlink(d->log_path);
}

static int write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t w = write(fd, c, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        len -= (size_t)w;
    }
    return 0;
}

void db_test_http(int port, const char *method, const char *path, const char *const *headers,
                  const void *body, size_t len, struct db_test_resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0) return;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return;
    }
    char head[8192];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                     method, path);
    for (size_t i = 0; headers && headers[i]; i++)
        n += snprintf(head + n, sizeof head - (size_t)n, "%s\r\n", headers[i]);
    if (body) n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    /* A server may answer (413) and close before the whole body is sent: ignore write
     * errors and read what came back. */
    signal(SIGPIPE, SIG_IGN);
    if (write_all(fd, head, (size_t)n) == 0 && body) (void)write_all(fd, body, len);
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    long long deadline = db_test_now_ms() + 10000;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        long long left = deadline - db_test_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) break;
        if (got + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + got, cap - got - 1);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !end) {
        free(buf);
        return;
    }
    out->status = atoi(buf + 9);
    out->headers = strndup(buf, (size_t)(end - buf));
    char *b = end + 4;
    size_t blen = got - (size_t)(b - buf);
    char te[64];
    if (db_test_resp_header(out, "Transfer-Encoding", te, sizeof te) && strcasecmp(te, "chunked") == 0) {
        /* de-chunk in place */
        char *w = b, *r = b;
        for (;;) {
            size_t sz = strtoul(r, &r, 16);
            r = strstr(r, "\r\n");
            if (!r || sz == 0) break;
            r += 2;
            memmove(w, r, sz);
            w += sz;
            r += sz + 2;
        }
        blen = (size_t)(w - b);
    }
    out->body = malloc(blen + 1);
    memcpy(out->body, b, blen);
    out->body[blen] = '\0';
    out->body_len = blen;
    free(buf);
}

void db_test_resp_clear(struct db_test_resp *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

const char *db_test_resp_header(const struct db_test_resp *r, const char *name, char *buf,
                                size_t n)
{
    if (!r->headers) return NULL;
    size_t nl = strlen(name);
    for (const char *p = strstr(r->headers, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            snprintf(buf, n, "%.*s", (int)len, v);
            return buf;
        }
    }
    return NULL;
}

int db_test_wait(int (*cond)(void *), void *arg, int timeout_ms)
{
    long long deadline = db_test_now_ms() + timeout_ms;
    int v;
    while (!(v = cond(arg)) && db_test_now_ms() < deadline) usleep(20000);
    return v;
}

static int ready_now(void *arg)
{
    struct db_test_resp r;
    db_test_http(*(int *)arg, "GET", "/readyz", NULL, NULL, 0, &r);
    int ok = r.status == 200;
    db_test_resp_clear(&r);
    return ok;
}

int db_test_wait_ready(int port, int timeout_ms)
{
    return db_test_wait(ready_now, &port, timeout_ms);
}
