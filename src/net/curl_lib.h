/* curl_lib.h - libcurl, loaded into the process on first use.
 *
 * The daemon does not link libcurl: libcurl and the libraries it drags in (TLS, Kerberos,
 * LDAP, SSH, ...) cost several megabytes of resident memory at start, and a process that
 * never makes an outbound call (an ingest-only process, or any process before its first send)
 * should not pay for them.  db_curl_lib() dlopen()s the library the first time something
 * needs it, resolves the functions the HTTP client uses into a table, and runs
 * curl_global_init, once per process (thread-safe).  The library is never unloaded.
 *
 * Code compiles against curl's headers as usual and calls through the table:
 *     const struct db_curl_lib *cl = db_curl_lib(&err);
 *     CURL *e = cl ? cl->easy_init() : NULL; */
#ifndef DB_CURL_LIB_H
#define DB_CURL_LIB_H

#include <curl/curl.h>
#include <stddef.h>

/* Each member is a pointer to the libcurl function it is named after (curl_<member>), typed
 * from curl's own prototype, so the table follows the headers of the curl compiled against
 * (prototypes differ between versions, e.g. curl_url_get's handle became const). */
#define DB_CURL_FN(name) __typeof__(curl_##name) *name
struct db_curl_lib {
    DB_CURL_FN(global_init);
    DB_CURL_FN(easy_init);
    DB_CURL_FN(easy_setopt);
    DB_CURL_FN(easy_getinfo);
    DB_CURL_FN(easy_cleanup);
    DB_CURL_FN(easy_strerror);
    DB_CURL_FN(slist_append);
    DB_CURL_FN(slist_free_all);
    DB_CURL_FN(multi_init);
    DB_CURL_FN(multi_setopt);
    DB_CURL_FN(multi_add_handle);
    DB_CURL_FN(multi_remove_handle);
    DB_CURL_FN(multi_socket_action);
    DB_CURL_FN(multi_assign);
    DB_CURL_FN(multi_info_read);
    DB_CURL_FN(multi_cleanup);
    DB_CURL_FN(url);
    DB_CURL_FN(url_set);
    DB_CURL_FN(url_get);
    DB_CURL_FN(url_cleanup);
    DB_CURL_FN(free);
};
#undef DB_CURL_FN

/* The process's libcurl, loaded and initialised on the first call (the soname chosen at
 * build time, see DB_CURL_SONAME in CMakeLists.txt).  Returns the table (static, valid for
 * the life of the process), or NULL when the library or one of its functions could not be
 * found or curl_global_init failed; then *err (if err is not NULL) gets a static message
 * naming the soname and the loader's reason, and every later call returns NULL with the same
 * message without trying again.  The failure is logged once, at error level.  Safe to call
 * from any thread. */
const struct db_curl_lib *db_curl_lib(const char **err);

/* The soname db_curl_lib() loads (static string). */
const char *db_curl_lib_soname(void);

/* Internal, for db_curl_lib() and the loader's tests: dlopen()s soname and resolves every
 * member of *out; neither caches, initialises curl nor logs.  DB_OK, or DB_ENOTFOUND with a
 * message naming soname and the reason in err (err_len bytes, always NUL-terminated); on
 * failure the library is closed again and *out is zeroed. */
int db_curl_lib_load_from(const char *soname, struct db_curl_lib *out, char *err,
                          size_t err_len);

#endif
