/* Log lines: the text and JSON shapes (JSON lines parse, with escaping), cutting of long
 * lines, and the gathering of info lines until the end of a loop pass while warnings go out
 * at once and in order. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>

#include "log/log.h"

static int saved_stderr = -1, pipe_rd = -1;

/* Sends stderr into a pipe whose read end is non-blocking (cmocka reports failures on stderr
 * too, so a failing check shows up in what the next drain reads). */
static int capture(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    pipe_rd = fds[0];
    db_log_set_level(DB_LOG_DEBUG);
    db_log_set_json(0);
    return 0;
}

static int restore(void **state)
{
    (void)state;
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    close(pipe_rd);
    return 0;
}

/* Everything written so far; caller frees. */
static char *drain(void)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    ssize_t r;
    while ((r = read(pipe_rd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
    return buf;
}

static void text_line_shape(void **state)
{
    (void)state;
    struct db_log_ctx ctx = {"webhook", "whatsapp", "1065", "01ABC"};
    db_log(DB_LOG_INFO, &ctx, "accepted events=%d written=%d", 2, 1);
    char *out = drain();
    /* 2026-11-23T13:05:15.123Z info  module=... */
    assert_int_equal(strlen(out) > 25, 1);
    assert_int_equal(out[4], '-');
    assert_int_equal(out[19], '.');
    assert_int_equal(out[23], 'Z');
    assert_string_equal(out + 24, " info  module=webhook platform=whatsapp account=1065 id=01ABC "
                                  "accepted events=2 written=1\n");
    free(out);
}

static void json_line_parses_with_escapes(void **state)
{
    (void)state;
    db_log_set_json(1);
    struct db_log_ctx ctx = {"api", NULL, "a\"b", NULL};
    db_log(DB_LOG_WARN, &ctx, "bad \\ value \"%s\"\t%c", "x", 1);
    db_log_set_json(0);
    char *out = drain();
    size_t len = strlen(out);
    assert_true(len > 0 && out[len - 1] == '\n');
    json_error_t je;
    json_t *v = json_loads(out, 0, &je);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(v, "module")), "api");
    assert_string_equal(json_string_value(json_object_get(v, "account")), "a\"b");
    assert_null(json_object_get(v, "platform"));
    assert_string_equal(json_string_value(json_object_get(v, "msg")), "bad \\ value \"x\"\t\x01");
    assert_int_equal(strlen(json_string_value(json_object_get(v, "ts"))), 24);
    json_decref(v);
    free(out);
}

static void long_message_is_cut_to_one_line(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    db_log(DB_LOG_ERROR, NULL, "%s", big);
    char *out = drain();
    size_t len = strlen(out);
    assert_true(len > 1000 && len <= 2048);
    assert_int_equal(out[len - 1], '\n');
    assert_null(memchr(out, '\n', len - 1));
    free(out);
}

static void logging_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    char **seen = arg;
    db_log(DB_LOG_INFO, NULL, "third");
    *seen = drain(); /* still inside the pass: the line must not be out yet */
}

static void info_waits_for_the_end_of_the_pass_warnings_do_not(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    assert_int_equal(db_log_attach(base), DB_OK);

    db_log(DB_LOG_INFO, NULL, "first");
    char *out = drain();
    assert_string_equal(out, ""); /* gathered */
    free(out);

    db_log(DB_LOG_WARN, NULL, "second");
    out = drain();
    /* the warning went out at once, after the info line gathered before it */
    char *a = strstr(out, "first"), *b = strstr(out, "second");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    free(out);

    char *seen = NULL;
    struct event *ev = event_new(base, -1, 0, logging_cb, &seen);
    event_active(ev, EV_TIMEOUT, 1);
    event_base_loop(base, EVLOOP_ONCE);
    assert_non_null(seen);
    assert_null(strstr(seen, "third"));
    free(seen);
    out = drain(); /* the pass is over: written */
    assert_non_null(strstr(out, "third"));
    free(out);

    db_log(DB_LOG_DEBUG, NULL, "fourth");
    db_log_detach(); /* writes what is gathered */
    out = drain();
    assert_non_null(strstr(out, "fourth"));
    free(out);
    event_free(ev);
    event_base_free(base);

    db_log(DB_LOG_INFO, NULL, "fifth"); /* no loop attached: at once */
    out = drain();
    assert_non_null(strstr(out, "fifth"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_line_shape),
        cmocka_unit_test(json_line_parses_with_escapes),
        cmocka_unit_test(long_message_is_cut_to_one_line),
        cmocka_unit_test(info_waits_for_the_end_of_the_pass_warnings_do_not),
    };
    return cmocka_run_group_tests(tests, capture, restore);
}
