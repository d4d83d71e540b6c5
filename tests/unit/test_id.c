/* Gateway ids: valid, unique, and never repeated across a fork (the random bytes are drawn a
 * block at a time, so a child must not reuse the parent's block). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/id.h"

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

static void ids_are_valid_and_unique(void **state)
{
    (void)state;
    enum { N = 100000 };
    char(*ids)[DB_ID_LEN + 1] = malloc(N * sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        db_id_new(ids[i]);
        assert_true(db_id_is_valid(ids[i]));
    }
    qsort(ids, N, sizeof *ids, cmp);
    for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void a_forked_child_draws_other_bytes(void **state)
{
    (void)state;
    char first[DB_ID_LEN + 1], parent[DB_ID_LEN + 1], child[DB_ID_LEN + 1] = "";
    db_id_new(first); /* the parent now holds a block of random bytes */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[DB_ID_LEN + 1];
        db_id_new(id);
        _exit(write(fds[1], id, DB_ID_LEN) == DB_ID_LEN ? 0 : 1);
    }
    close(fds[1]);
    db_id_new(parent);
    assert_int_equal(read(fds[0], child, DB_ID_LEN), DB_ID_LEN);
    child[DB_ID_LEN] = '\0';
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Same millisecond or not, the 16 random characters must differ. */
    assert_memory_not_equal(parent + 10, child + 10, DB_ID_LEN - 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_are_valid_and_unique),
        cmocka_unit_test(a_forked_child_draws_other_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
