#include "sentinel_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon.h"
#include "testutil.h"

redisReply *db_test_redis_port_cmd(int port, const char *fmt, ...)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *rep = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (c && !c->err) rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (c) redisFree(c);
    return rep;
}

void db_test_sentinel_start(struct db_test_sentinel *s, int master_port)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/dbsentinel-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    char conf[300];
    snprintf(conf, sizeof conf, "%s/sentinel.conf", s->dir);
    for (int attempt = 0; attempt < 10; attempt++) {
        s->port = db_test_free_port();
        FILE *f = fopen(conf, "w");
        assert_non_null(f);
        fprintf(f,
                "port %d\nbind 127.0.0.1\ndir %s\n"
                "sentinel monitor mymaster 127.0.0.1 %d 1\n"
                "sentinel down-after-milliseconds mymaster 1000\n"
                "sentinel failover-timeout mymaster 5000\n",
                s->port, s->dir, master_port);
        fclose(f);
        s->pid = fork();
        assert_true(s->pid >= 0);
        if (s->pid == 0) {
            /* Dies with the test, and keeps no copy of the test's output pipes. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execlp("redis-server", "redis-server", conf, "--sentinel", (char *)NULL);
            _exit(127);
        }
        long long deadline = db_test_now_ms() + 5000;
        while (db_test_now_ms() < deadline) {
            if (waitpid(s->pid, NULL, WNOHANG) == s->pid) break; /* port lost: retry */
            redisReply *rep = db_test_redis_port_cmd(s->port, "PING");
            int ok = rep && rep->type == REDIS_REPLY_STATUS;
            if (rep) freeReplyObject(rep);
            if (ok) return;
            usleep(20 * 1000);
        }
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    fail_msg("sentinel did not start");
}

void db_test_sentinel_stop(struct db_test_sentinel *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", s->dir);
}

void db_test_sentinel_failover(struct db_test_sentinel *s, int timeout_ms)
{
    long long deadline = db_test_now_ms() + timeout_ms;
    int known = 0;
    while (!known && db_test_now_ms() < deadline) {
        redisReply *rep = db_test_redis_port_cmd(s->port, "SENTINEL replicas mymaster");
        known = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1;
        if (rep) freeReplyObject(rep);
        if (!known) usleep(100 * 1000);
    }
    if (!known) fail_msg("sentinel never learned of the replica");
    /* Right after discovery the replica may not count as good yet (NOGOODSLAVE): retry. */
    char last[128] = "";
    while (db_test_now_ms() < deadline) {
        redisReply *rep = db_test_redis_port_cmd(s->port, "SENTINEL FAILOVER mymaster");
        int started = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep && rep->type == REDIS_REPLY_ERROR) snprintf(last, sizeof last, "%s", rep->str);
        if (rep) freeReplyObject(rep);
        if (started) return;
        usleep(200 * 1000);
    }
    fail_msg("SENTINEL FAILOVER: %s", last);
}
