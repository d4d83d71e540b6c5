#include "console/password.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/crypto.h"

#define SALT_LEN 16
#define KEY_LEN 32
#define QUEUE_MAX 16

static int derive(const char *secret, const unsigned char *salt, long iterations,
                  unsigned char key[KEY_LEN])
{
    return PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, SALT_LEN, (int)iterations,
                             EVP_sha256(), KEY_LEN, key) == 1
               ? 0
               : -1;
}

int db_password_hash(const char *secret, long iterations, char out[DB_PASSWORD_HASH_MAX])
{
    unsigned char salt[SALT_LEN], key[KEY_LEN];
    char salt_hex[2 * SALT_LEN + 1], key_hex[2 * KEY_LEN + 1];
    if (iterations < 1 || db_random_bytes(salt, sizeof salt) != 0 ||
        derive(secret, salt, iterations, key) != 0)
        return -1;
    db_hex_encode(salt, sizeof salt, salt_hex);
    db_hex_encode(key, sizeof key, key_hex);
    OPENSSL_cleanse(key, sizeof key);
    snprintf(out, DB_PASSWORD_HASH_MAX, "pbkdf2-sha256$%ld$%s$%s", iterations, salt_hex, key_hex);
    return 0;
}

int db_password_verify(const char *secret, const char *stored)
{
    char salt_hex[2 * SALT_LEN + 1], key_hex[2 * KEY_LEN + 1];
    unsigned char salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
    long iterations;
    if (!stored || sscanf(stored, "pbkdf2-sha256$%ld$%32[0-9a-f]$%64[0-9a-f]", &iterations,
                          salt_hex, key_hex) != 3)
        return 0;
    /* A stored count outside these bounds was not written by this code. */
    if (iterations < 1 || iterations > 100000000 || db_hex_decode(salt_hex, salt, SALT_LEN) ||
        db_hex_decode(key_hex, want, KEY_LEN) || derive(secret, salt, iterations, got) != 0)
        return 0;
    int ok = db_ct_equal(got, KEY_LEN, want, KEY_LEN);
    OPENSSL_cleanse(got, sizeof got);
    return ok;
}

/* ---- the worker thread ---- */

struct job {
    struct job *next;
    char *secret;
    char *stored; /* NULL: make a hash */
    long iterations;
    int ok;
    char hash[DB_PASSWORD_HASH_MAX];
    db_password_done_fn cb;
    void *arg;
};

/* One worker per process, and per event base: the gateway has one loop per process. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *todo, *done;
    size_t queued;
    int pipe[2];
    struct event *ev;
    int started;
    pid_t pid;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .pipe = {-1, -1}};

static void wipe_free(char *s)
{
    if (!s) return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static void *worker(void *unused)
{
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&W.mu);
        while (!W.todo) pthread_cond_wait(&W.cv, &W.mu);
        struct job *j = W.todo;
        W.todo = j->next;
        pthread_mutex_unlock(&W.mu);
        if (j->stored) j->ok = db_password_verify(j->secret, j->stored);
        else j->ok = db_password_hash(j->secret, j->iterations, j->hash) == 0;
        wipe_free(j->secret);
        j->secret = NULL;
        pthread_mutex_lock(&W.mu);
        j->next = W.done;
        W.done = j;
        pthread_mutex_unlock(&W.mu);
        char b = 1;
        ssize_t n = write(W.pipe[1], &b, 1); /* a full pipe already wakes the loop */
        (void)n;
    }
    return NULL;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what, (void)arg;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {}
    pthread_mutex_lock(&W.mu);
    struct job *list = W.done;
    W.done = NULL;
    pthread_mutex_unlock(&W.mu);
    while (list) {
        struct job *j = list;
        list = j->next;
        pthread_mutex_lock(&W.mu);
        W.queued--;
        pthread_mutex_unlock(&W.mu);
        j->cb(j->ok, j->stored ? "" : j->hash, j->arg);
        OPENSSL_cleanse(j->hash, sizeof j->hash);
        free(j->stored);
        free(j);
    }
}

static int start(struct event_base *base)
{
    pthread_t t;
    pthread_attr_t attr;
    if (pipe2(W.pipe, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    W.ev = event_new(base, W.pipe[0], EV_READ | EV_PERSIST, done_cb, NULL);
    if (!W.ev || event_add(W.ev, NULL) != 0) goto fail;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, worker, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) goto fail;
    W.started = 1;
    W.pid = getpid();
    return 0;
fail:
    if (W.ev) event_free(W.ev);
    W.ev = NULL;
    close(W.pipe[0]), close(W.pipe[1]);
    W.pipe[0] = W.pipe[1] = -1;
    return -1;
}

int db_password_job(struct event_base *base, const char *secret, const char *stored,
                    long iterations, db_password_done_fn cb, void *arg)
{
    /* A forked worker process has no thread of its parent: it starts its own. */
    if ((!W.started || W.pid != getpid()) && start(base) != 0) return -1;
    struct job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    j->secret = strdup(secret);
    j->stored = stored ? strdup(stored) : NULL;
    if (!j->secret || (stored && !j->stored)) {
        wipe_free(j->secret);
        free(j->stored);
        free(j);
        return -1;
    }
    j->iterations = iterations;
    j->cb = cb;
    j->arg = arg;
    pthread_mutex_lock(&W.mu);
    int full = W.queued >= QUEUE_MAX;
    if (!full) {
        W.queued++;
        struct job **tail = &W.todo;
        while (*tail) tail = &(*tail)->next;
        *tail = j;
        pthread_cond_signal(&W.cv);
    }
    pthread_mutex_unlock(&W.mu);
    if (full) {
        wipe_free(j->secret);
        free(j->stored);
        free(j);
        return -1;
    }
    return 0;
}
