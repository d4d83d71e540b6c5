/* Operating a running gateway: reload on SIGHUP, graceful SIGTERM under load, several
 * processes on one Redis, and the operator commands.  Real binary, real redis-server. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "daemon.h"
#include "redis_fixture.h"
#include "testutil.h"

#define SECRET "ops-secret_42"

static struct db_test_redis *R;
static char conf_path[256];
static char redis_env[512];

static void write_conf(const char *extra)
{
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fprintf(f,
            "[gateway]\n"
            "api_token = ops-api-token-0123456789\n"
            "[telegram one]\n"
            "token = 7000000001:AAone\n"
            "webhook_secret = " SECRET "\n"
            "api_base = http://127.0.0.1:9\n"
            "%s",
            extra);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    R = db_test_redis_start(NULL);
    assert_non_null(R);
    snprintf(conf_path, sizeof conf_path, "/tmp/deskbridge-ops-%d.conf", (int)getpid());
    snprintf(redis_env, sizeof redis_env, "DESKBRIDGE_REDIS_URL=%s", db_test_redis_url(R));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    db_test_redis_stop(R);
    return 0;
}

static long long xlen(void)
{
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XLEN deskbridge:events");
    long long n = r ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

static int post(int port, const char *account, long long update_id)
{
    char body[512], path[128];
    snprintf(body, sizeof body,
             "{\"update_id\":%lld,\"message\":{\"message_id\":%lld,\"date\":1795365000,"
             "\"chat\":{\"id\":%lld,\"type\":\"private\"},\"text\":\"load\"}}",
             update_id, update_id, update_id % 50 + 1);
    snprintf(path, sizeof path, "/webhooks/telegram/%s", account);
    const char *headers[] = {"X-Telegram-Bot-Api-Secret-Token: " SECRET, NULL};
    struct db_test_resp r;
    db_test_http(port, "POST", path, headers, body, strlen(body), &r);
    int st = r.status;
    db_test_resp_clear(&r);
    return st;
}

/* How often each update id appears in the stream. */
static int *stream_counts(long long max_id)
{
    int *count = calloc((size_t)max_id + 1, sizeof *count);
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XRANGE deskbridge:events - +");
    assert_non_null(r);
    for (size_t i = 0; i < r->elements; i++) {
        json_t *ev = json_loads(r->element[i]->element[1]->element[1]->str, 0, NULL);
        const char *mid = json_string_value(json_object_get(ev, "external_message_id"));
        long long id = mid ? atoll(mid) : -1;
        if (id >= 0 && id <= max_id) count[id]++;
        json_decref(ev);
    }
    freeReplyObject(r);
    return count;
}

static void sighup_reloads_accounts_and_keeps_serving_on_a_bad_config(void **state)
{
    (void)state;
    write_conf("");
    const char *env[] = {redis_env, NULL};
    const char *args[] = {"--config", conf_path, NULL};
    struct db_test_daemon d;
    db_test_daemon_start(&d, env, args, 0);
    assert_int_equal(post(d.port, "one", 1), 200);
    assert_int_equal(post(d.port, "two", 2), 404);

    write_conf("[telegram two]\ntoken = 7000000002:AAtwo\nwebhook_secret = " SECRET
               "\napi_base = http://127.0.0.1:9\n");
    kill(d.pid, SIGHUP);
    int st = 0;
    for (int i = 0; i < 100 && (st = post(d.port, "two", 3)) != 200; i++) usleep(50000);
    assert_int_equal(st, 200);

    write_conf("[telegram three]\ntoken = not-a-token\n");
    kill(d.pid, SIGHUP);
    usleep(300000);
    assert_true(db_test_daemon_alive(&d));
    assert_int_equal(post(d.port, "two", 4), 200); /* the old configuration still serves */
    assert_true(db_test_daemon_log_count(&d, "reload refused") >= 1);
    st = db_test_daemon_stop(&d, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unlink(d.log_path);
}

struct load {
    int port[2];
    long long first, n;
    int *status; /* per update: the HTTP status it got */
};

static void *load_thread(void *arg)
{
    struct load *l = arg;
    for (long long i = 0; i < l->n; i++)
        l->status[i] = post(l->port[i % 2], "one", l->first + i);
    return NULL;
}

static void sigterm_under_load_loses_nothing(void **state)
{
    (void)state;
    write_conf("");
    const char *env[] = {redis_env, NULL};
    const char *args[] = {"--config", conf_path, NULL};
    struct db_test_daemon d;
    db_test_daemon_start(&d, env, args, 0);
    struct load l = {.port = {d.port, d.port}, .first = 100000, .n = 3000};
    l.status = calloc((size_t)l.n, sizeof *l.status);
    pthread_t t;
    pthread_create(&t, NULL, load_thread, &l);
    usleep(400000);
    int st = db_test_daemon_stop(&d, SIGTERM);
    pthread_join(t, NULL);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int *count = stream_counts(l.first + l.n);
    long long accepted = 0, other = 0;
    for (long long i = 0; i < l.n; i++) {
        if (l.status[i] == 200) {
            accepted++;
            if (count[l.first + i] != 1)
                fail_msg("update %lld answered 200 but is in the stream %d times", l.first + i,
                         count[l.first + i]);
        } else {
            other++;
        }
    }
    printf("# SIGTERM under load: %lld accepted (each in the stream once), %lld refused after "
           "the stop\n", accepted, other);
    assert_true(accepted > 0);
    free(count);
    free(l.status);
    unlink(d.log_path);
}

static void two_processes_on_one_redis_lose_and_double_nothing(void **state)
{
    (void)state;
    write_conf("");
    const char *env[] = {redis_env, NULL};
    const char *args[] = {"--config", conf_path, NULL};
    struct db_test_daemon a, b;
    db_test_daemon_start(&a, env, args, 0);
    db_test_daemon_start(&b, env, args, 0);
    /* Two clients, each sending the same 600 updates alternately to both processes: every
     * update arrives twice (a redelivery race) and must be written once. */
    struct load l1 = {.port = {a.port, b.port}, .first = 200000, .n = 600};
    struct load l2 = {.port = {b.port, a.port}, .first = 200000, .n = 600};
    l1.status = calloc(600, sizeof(int));
    l2.status = calloc(600, sizeof(int));
    pthread_t t1, t2;
    pthread_create(&t1, NULL, load_thread, &l1);
    pthread_create(&t2, NULL, load_thread, &l2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    int *count = stream_counts(l1.first + l1.n);
    for (long long i = 0; i < l1.n; i++) {
        assert_int_equal(l1.status[i], 200);
        assert_int_equal(l2.status[i], 200);
        if (count[l1.first + i] != 1)
            fail_msg("update %lld is in the stream %d times", l1.first + i, count[l1.first + i]);
    }
    free(count);
    free(l1.status);
    free(l2.status);
    db_test_daemon_stop(&a, SIGTERM);
    db_test_daemon_stop(&b, SIGTERM);
    unlink(a.log_path);
    unlink(b.log_path);
}

/* A gateway of two workers on the default configuration. */
static void start_two_workers(struct db_test_daemon *d)
{
    write_conf("");
    const char *env[] = {redis_env, NULL};
    const char *args[] = {"--config", conf_path, "--workers", "2", NULL};
    db_test_daemon_start(d, env, args, 0);
}

static void workers_share_the_port(void **state)
{
    (void)state;
    struct db_test_daemon d;
    start_two_workers(&d);
    long long before = xlen();
    for (long long i = 0; i < 200; i++) assert_int_equal(post(d.port, "one", 300000 + i), 200);
    assert_int_equal(xlen(), before + 200);
    /* Two workers run on the one port. */
    usleep(200000);
    char pattern[64];
    snprintf(pattern, sizeof pattern, "listening on 127.0.0.1:%d", d.port);
    assert_int_equal(db_test_daemon_log_count(&d, pattern), 2);
    db_test_daemon_stop_clean(&d, NULL);
}

/* The pids of parent's children (from /proc), up to max. */
static int children_of(pid_t parent, pid_t *out, int max)
{
    int n = 0;
    DIR *dir = opendir("/proc");
    assert_non_null(dir);
    for (struct dirent *e; n < max && (e = readdir(dir));) {
        pid_t p = (pid_t)atoi(e->d_name);
        if (p <= 0) continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* "pid (comm) state ppid ...": comm may hold spaces, so read after its ')' */
        const char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) out[n++] = p;
    }
    closedir(dir);
    return n;
}

/* 1 while pid runs (a zombie no longer runs). */
static int running(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static pid_t kids[2];
static int workers_gone(void *arg)
{
    (void)arg;
    return !running(kids[0]) && !running(kids[1]);
}

/* The supervisor killed outright (SIGKILL, as the OOM killer does) takes its workers with
 * it: none keeps the port unsupervised. */
static void workers_end_with_their_supervisor(void **state)
{
    (void)state;
    struct db_test_daemon d;
    start_two_workers(&d);
    assert_int_equal(post(d.port, "one", 310000), 200);
    assert_int_equal(children_of(d.pid, kids, 2), 2);
    kill(d.pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(d.pid, &st, 0), d.pid);
    d.pid = 0;
    assert_true(db_test_wait(workers_gone, NULL, 10000));
    /* nobody answers on the port any more */
    struct db_test_resp r;
    db_test_http(d.port, "GET", "/healthz", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 0);
    db_test_resp_clear(&r);
    if (!getenv("KEEP_LOG")) unlink(d.log_path);
}

/* What cmd prints (stdout and whatever it redirects), in a static buffer. */
static char *capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

static char *run_capture(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env -i PATH=/usr/bin:/bin '%s' '%s' --config '%s' %s 2>&1",
             redis_env, DB_DAEMON_PATH, conf_path, args);
    return capture(cmd);
}

static void operator_commands(void **state)
{
    (void)state;
    write_conf("[telegram polled]\ntoken = 7000000003:AApolled\n");
    char *out = run_capture("accounts");
    assert_non_null(strstr(out, "telegram   one"));
    assert_non_null(strstr(out, "webhook   /webhooks/telegram/one"));
    assert_non_null(strstr(out, "polled"));
    assert_non_null(strstr(out, "polling"));
    assert_null(strstr(out, "AAone")); /* no secrets */

    /* DESKBRIDGE_CONFIG names the file when there is no --config. */
    char *by_option = strdup(out), cmd[2048];
    snprintf(cmd, sizeof cmd, "env -i PATH=/usr/bin:/bin '%s' 'DESKBRIDGE_CONFIG=%s' '%s' accounts 2>&1",
             redis_env, conf_path, DB_DAEMON_PATH);
    assert_string_equal(capture(cmd), by_option);
    free(by_option);

    out = run_capture("reply telegram:one:42 'Hello from the console'");
    assert_non_null(strstr(out, "queued "));
    redisReply *r = redisCommand(db_test_redis_ctx(R), "XREVRANGE deskbridge:outbox + - COUNT 1");
    assert_int_equal(r->elements, 1);
    assert_non_null(strstr(r->element[0]->element[1]->element[1]->str, "Hello from the console"));
    freeReplyObject(r);
    out = run_capture("reply telegram:nope:42 hi");
    assert_non_null(strstr(out, "conversation"));

    /* tail prints what is in the streams: the webhooks of the tests above, the reply's
     * queued state.  It runs until stopped; timeout stops it. */
    snprintf(cmd, sizeof cmd,
             "env -i PATH=/usr/bin:/bin '%s' timeout -s INT 2 '%s' --config '%s' tail --from-start",
             redis_env, DB_DAEMON_PATH, conf_path);
    FILE *p = popen(cmd, "r");
    char line[1024];
    int messages = 0;
    while (fgets(line, sizeof line, p))
        if (strstr(line, "message") && strstr(line, "telegram:one:")) messages++;
    pclose(p);
    assert_true(messages > 0);

    out = run_capture("check-config");
    assert_non_null(strstr(out, "ok, 2 accounts"));
    write_conf("[telegram bad]\nbogus = 1\n");
    out = run_capture("check-config");
    assert_non_null(strstr(out, "bogus"));
    assert_non_null(strstr(out, ":8:")); /* file and line */
}

/* Forks a child that starts a gateway, tells us its pid and dies of signal sig, and waits
 * for the child.  Returns the gateway's pid. */
static pid_t gateway_of_a_child_killed_by(int sig)
{
    write_conf("");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        const char *env[] = {redis_env, NULL};
        const char *args[] = {"--config", conf_path, NULL};
        struct db_test_daemon d;
        db_test_daemon_start(&d, env, args, 0);
        if (write(fds[1], &d.pid, sizeof d.pid) != (ssize_t)sizeof d.pid) _exit(1);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        raise(sig);
        _exit(1);
    }
    close(fds[1]);
    pid_t gateway = 0;
    assert_int_equal(read(fds[0], &gateway, sizeof gateway), (ssize_t)sizeof gateway);
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), sig);
    return gateway;
}

/* A test binary that aborts (a sanitizer report with abort_on_error) runs no atexit handler;
 * the fixture's SIGABRT handler still stops the gateways it started. */
static void a_gateway_dies_with_a_test_binary_that_aborts(void **state)
{
    (void)state;
    pid_t gateway = gateway_of_a_child_killed_by(SIGABRT);
    /* The handler killed and reaped it before the child died: no such process now.  One
     * that outlived the child is killed here, so a failure leaves nothing running. */
    int alive = kill(gateway, 0) == 0 || errno != ESRCH;
    if (alive) kill(gateway, SIGKILL);
    assert_false(alive);
}

/* ctest kills a test binary that overruns its timeout with SIGKILL: nothing of the binary
 * runs then, so only the death signal set at the fork can take its gateway along. */
static void a_gateway_dies_with_a_test_binary_that_is_killed(void **state)
{
    (void)state;
    /* The child's gateway is reparented to us when the child dies, so it can be waited for
     * (and is not left to an init that may not reap). */
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    pid_t gateway = gateway_of_a_child_killed_by(SIGKILL);
    int st = 0;
    pid_t got = 0;
    for (int i = 0; i < 250 && got == 0; i++) {
        got = waitpid(gateway, &st, WNOHANG);
        if (got == 0) usleep(20000);
    }
    if (got == 0) { /* outlived the child by 5 s: kill it, so a failure leaves nothing */
        kill(gateway, SIGKILL);
        waitpid(gateway, NULL, 0);
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    assert_int_equal(got, gateway);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

/* A bad environment override stops the daemon with the reason said once on stderr, and
 * status 2.  The daemon used to load the configuration to learn its worker count and then
 * again to run, printing the same error twice. */
static void a_bad_environment_value_is_reported_once(void **state)
{
    (void)state;
    write_conf("");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env -i PATH=/usr/bin:/bin '%s' DESKBRIDGE_WORKERS=abc '%s' --config '%s' 2>&1; "
             "echo \"status=$?\"",
             redis_env, DB_DAEMON_PATH, conf_path);
    const char *out = capture(cmd);
    const char *needle = "environment: DESKBRIDGE_WORKERS: must be an integer from 1 to 64";
    const char *first = strstr(out, needle);
    assert_non_null(first);
    assert_null(strstr(first + 1, needle));
    assert_non_null(strstr(out, "status=2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sighup_reloads_accounts_and_keeps_serving_on_a_bad_config),
        cmocka_unit_test(sigterm_under_load_loses_nothing),
        cmocka_unit_test(two_processes_on_one_redis_lose_and_double_nothing),
        cmocka_unit_test(workers_share_the_port),
        cmocka_unit_test(workers_end_with_their_supervisor),
        cmocka_unit_test(operator_commands),
        cmocka_unit_test(a_bad_environment_value_is_reported_once),
        cmocka_unit_test(a_gateway_dies_with_a_test_binary_that_aborts),
        cmocka_unit_test(a_gateway_dies_with_a_test_binary_that_is_killed),
    };
    return cmocka_run_group_tests_name("operations", tests, setup, teardown);
}
