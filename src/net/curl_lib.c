/* curl_lib.c - dlopen()s libcurl on first use (see curl_lib.h for why). */
#include "net/curl_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "log/log.h"

/* Set by CMakeLists.txt from the libcurl pkg-config found, so the library loaded at run time
 * has the ABI of the headers compiled against. */
#ifndef DB_CURL_SONAME
#define DB_CURL_SONAME "libcurl.so.4"
#endif

/* dlsym returns void *; ISO C has no conversion to a function pointer, POSIX guarantees the
 * representation, so copy the bits. */
#define RESOLVE(member)                                                                        \
    do {                                                                                       \
        void *p_ = dlsym(h, "curl_" #member);                                                  \
        if (!p_) {                                                                             \
            missing = "curl_" #member;                                                         \
            goto fail;                                                                         \
        }                                                                                      \
        memcpy(&t.member, &p_, sizeof t.member);                                               \
    } while (0)

int db_curl_lib_load_from(const char *soname, struct db_curl_lib *out, char *err,
                          size_t err_len)
{
    struct db_curl_lib t;
    const char *missing = NULL;
    memset(out, 0, sizeof *out);
    memset(&t, 0, sizeof t);
    /* RTLD_NOW: a library that lacks something fails here, not in the middle of a send.
     * RTLD_LOCAL: its symbols stay out of the global namespace, so nothing else binds to
     * them by accident. */
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        if (!why) why = "unknown reason";
        /* glibc's message already starts with the name it was given: say it once. */
        size_t n = strlen(soname);
        if (strncmp(why, soname, n) == 0 && why[n] == ':')
            snprintf(err, err_len, "libcurl could not be loaded (%s)", why);
        else
            snprintf(err, err_len, "libcurl could not be loaded (%s: %s)", soname, why);
        return DB_ENOTFOUND;
    }
    RESOLVE(global_init);
    RESOLVE(easy_init);
    RESOLVE(easy_setopt);
    RESOLVE(easy_getinfo);
    RESOLVE(easy_cleanup);
    RESOLVE(easy_strerror);
    RESOLVE(slist_append);
    RESOLVE(slist_free_all);
    RESOLVE(multi_init);
    RESOLVE(multi_setopt);
    RESOLVE(multi_add_handle);
    RESOLVE(multi_remove_handle);
    RESOLVE(multi_socket_action);
    RESOLVE(multi_assign);
    RESOLVE(multi_info_read);
    RESOLVE(multi_cleanup);
    RESOLVE(url);
    RESOLVE(url_set);
    RESOLVE(url_get);
    RESOLVE(url_cleanup);
    RESOLVE(free);
    *out = t;
    return DB_OK;

fail:
    snprintf(err, err_len, "libcurl could not be loaded (%s: no symbol %s)", soname, missing);
    dlclose(h);
    return DB_ENOTFOUND;
}

#undef RESOLVE

/* One table per process, filled at most once: worker threads and every HTTP client share it,
 * and a failure is final (a library missing at the first send will not appear later without
 * a restart, and retrying dlopen on every send would only repeat the log line). */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct db_curl_lib table;
static int loaded;
static char fail_msg[512];

static void load_once(void)
{
    static const struct db_log_ctx ctx = {.module = "http_client"};
    if (db_curl_lib_load_from(DB_CURL_SONAME, &table, fail_msg, sizeof fail_msg) != DB_OK) {
        db_log(DB_LOG_ERROR, &ctx, "%s; outbound HTTP calls fail until restarted", fail_msg);
        return;
    }
    /* Once for the whole process and never cleaned up: the library is never unloaded, and
     * curl_global_cleanup while another thread's client is alive would pull TLS state from
     * under it. */
    CURLcode rc = table.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(fail_msg, sizeof fail_msg, "libcurl could not be loaded (%s: %s)",
                 DB_CURL_SONAME, table.easy_strerror(rc));
        db_log(DB_LOG_ERROR, &ctx, "%s; outbound HTTP calls fail until restarted", fail_msg);
        return;
    }
    loaded = 1;
}

const struct db_curl_lib *db_curl_lib(const char **err)
{
    pthread_once(&once, load_once);
    if (loaded) return &table;
    if (err) *err = fail_msg;
    return NULL;
}

const char *db_curl_lib_soname(void)
{
    return DB_CURL_SONAME;
}
