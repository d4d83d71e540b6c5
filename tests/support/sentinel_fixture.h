/* sentinel_fixture.h - a real Redis Sentinel on a free loopback port for tests, watching
 * one master as "mymaster" (quorum 1, down-after 1000 ms, failover-timeout 5000 ms). */
#ifndef DB_TEST_SENTINEL_FIXTURE_H
#define DB_TEST_SENTINEL_FIXTURE_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

struct db_test_sentinel {
    pid_t pid;
    int port;
    char dir[256];
};

/* Starts a sentinel for the master on 127.0.0.1:master_port; fails the test if it does not
 * answer PING within 5 s.  The process dies with the thread that started it. */
void db_test_sentinel_start(struct db_test_sentinel *s, int master_port);
void db_test_sentinel_stop(struct db_test_sentinel *s);
/* One command on a fresh connection to 127.0.0.1:port (NULL on failure); caller frees. */
redisReply *db_test_redis_port_cmd(int port, const char *fmt, ...);
/* Waits (up to timeout_ms) until the sentinel knows one replica, then asks it to fail over,
 * retrying while it answers NOGOODSLAVE; fails the test otherwise. */
void db_test_sentinel_failover(struct db_test_sentinel *s, int timeout_ms);

#endif
