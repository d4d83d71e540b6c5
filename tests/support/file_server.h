/* file_server.h - a file host on 127.0.0.1 for tests: what a platform's media server (Viber's,
 * a CDN) answers for the URLs a webhook names, as binary bodies with their own Content-Type
 * (the fake platform of fake_platform.h answers JSON text only).
 *
 * Paths are matched exactly (the query is part of the path); a path without a file answers
 * 404.  Every answer closes its connection.  It runs on its own thread; the functions below
 * may be called from the test's thread at any time. */
#ifndef DB_TEST_FILE_SERVER_H
#define DB_TEST_FILE_SERVER_H

#include <stddef.h>

struct db_files;

/* Starts the host on a free port of 127.0.0.1; fails the test when it cannot. */
struct db_files *db_files_start(void);
/* Stops the thread and frees everything.  NULL-safe. */
void db_files_stop(struct db_files *s);
int db_files_port(const struct db_files *s);

/* Serves body (len bytes, copied) at path with status and ctype, replacing what path served
 * before.  With cut_at < len the answer announces len bytes in Content-Length but the
 * connection is closed after cut_at of them (a download that breaks off); cut_at (size_t)-1
 * sends everything. */
void db_files_put(struct db_files *s, const char *path, int status, const char *ctype,
                  const void *body, size_t len, size_t cut_at);

/* Requests seen for exactly path (any method), or for every path when path is NULL. */
size_t db_files_count(struct db_files *s, const char *path);

#endif
