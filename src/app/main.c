/* main.c - the command-line front: runs the gateway or one of its operator commands. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "app/cli.h"
#include "app/features.h"
#include "conf/config.h"
#include "app/gateway.h"
#include "net/httpd.h"
#include "net/http_client.h"
#include "log/log.h"
#include "util/json_alloc.h"
#include "util/parse.h"

extern char **environ;

static const char usage[] =
    "usage: deskbridge [options]                      run the gateway\n"
    "       deskbridge check-config FILE              validate a configuration file\n"
    "       deskbridge accounts                       list accounts and how they receive\n"
    "       deskbridge tail [--from-start]            print the streams live\n"
    "       deskbridge reply CONVERSATION TEXT        send TEXT as an agent\n"
    "       deskbridge agent invite ID [--supervisor] print a one-time console sign-in link\n"
    "       deskbridge webhook set PLATFORM --url URL [--account ID]\n"
    "       deskbridge webhook delete PLATFORM [--account ID]\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (accounts on several platforms; default:\n"
    "                      $DESKBRIDGE_CONFIG); the environment overrides it (docs/config.md)\n"
    "  -r, --role ROLE     ingest|dispatch|send|all (default all)\n"
    "  -w, --workers N     run N processes sharing the listening port\n"
    "      --account ID    the account, when a platform has several\n"
    "      --url URL       public base URL of the gateway (or the full webhook URL)\n"
    "      --supervisor    agent invite: the agent signs in as a supervisor\n"
    "  -h, --help          this text\n"
    "  -V, --version       print the version\n"
    "\n"
    "Without a configuration file the environment is enough, e.g. TELEGRAM_BOT_TOKEN and\n"
    "DESKBRIDGE_REDIS_URL.  See README.md and docs/config.md.\n";

struct run {
    struct event_base *base;
    struct db_gateway gw;
    const char *config_file;
    struct event *tick;
    long long stop_deadline_ms;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    (void)fd, (void)what;
    struct db_log_ctx ctx = {"main", NULL, NULL, NULL};
    if (db_gateway_drain(&r->gw)) {
        db_log(DB_LOG_INFO, &ctx, "drained; exiting");
        event_base_loopbreak(r->base);
    } else if (mono_ms() >= r->stop_deadline_ms) {
        db_log(DB_LOG_WARN, &ctx, "shutdown timeout; exiting with work in flight "
                                  "(unacknowledged entries are claimed by another process)");
        event_base_loopbreak(r->base);
    }
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct run *r = arg;
    (void)what;
    struct db_log_ctx ctx = {"main", NULL, NULL, NULL};
    if (sig == SIGHUP) {
        struct db_config *cfg = NULL;
        struct db_err e = {0};
        if (db_config_load(r->config_file, environ, db_feature_tables, &cfg, &e) != DB_OK) {
            db_log(DB_LOG_ERROR, &ctx, "reload refused, keeping the running configuration: %s",
                   e.msg);
            return;
        }
        db_gateway_reload(&r->gw, cfg);
        db_log(DB_LOG_INFO, &ctx, "configuration reloaded: %zu accounts",
               r->gw.svc.cfg->cfg->n_accounts);
        return;
    }
    if (r->tick) return; /* already stopping */
    db_log(DB_LOG_INFO, &ctx, "signal %d: stopping", (int)sig);
    r->stop_deadline_ms = mono_ms() + r->gw.svc.cfg->cfg->shutdown_timeout_ms;
    r->tick = event_new(r->base, -1, EV_PERSIST, tick_cb, r);
    struct timeval tv = {0, 50 * 1000};
    if (r->tick) event_add(r->tick, &tv);
    tick_cb(-1, 0, r);
}

static int load(const char *file, struct db_config **cfg)
{
    struct db_err e = {0};
    if (db_config_load(file, environ, db_feature_tables, cfg, &e) != DB_OK) {
        fprintf(stderr, "deskbridge: %s\n", e.msg);
        return -1;
    }
    enum db_log_level level = DB_LOG_INFO;
    if ((*cfg)->log_level && db_log_parse_level((*cfg)->log_level, &level) == DB_OK)
        db_log_set_level(level);
    db_log_set_json((*cfg)->log_json);
    return 0;
}

static int run_gateway(const char *file, const char *role, int workers, int worker)
{
    struct db_config *cfg;
    if (load(file, &cfg) != 0) return 2;
    if (workers > 0) cfg->workers = workers;
    cfg->worker = worker;
    /* argv outlives the configuration; the loaded role is a static string, not to free. */
    if (role) cfg->role = role;
    signal(SIGPIPE, SIG_IGN);
    struct run r = {.config_file = file};
    r.base = event_base_new();
    struct db_err e = {0};
    if (!r.base || db_log_attach(r.base) != DB_OK ||
        db_gateway_start(&r.gw, r.base, cfg, &e) != DB_OK) {
        db_log_detach();
        fprintf(stderr, "deskbridge: %s\n", e.msg[0] ? e.msg : "cannot start");
        if (r.base) event_base_free(r.base);
        return 1;
    }
    struct event *sigs[4];
    int signums[4] = {SIGTERM, SIGINT, SIGHUP, 0};
    for (int i = 0; signums[i]; i++) {
        sigs[i] = evsignal_new(r.base, signums[i], signal_cb, &r);
        if (sigs[i]) evsignal_add(sigs[i], NULL);
    }
    struct db_log_ctx ctx = {"main", NULL, NULL, NULL};
    db_log(DB_LOG_INFO, &ctx, "deskbridge %s listening on %s (port %d), %zu accounts, role %s",
           DB_VERSION, r.gw.svc.cfg->cfg->listen, db_httpd_port(r.gw.svc.httpd),
           r.gw.svc.cfg->cfg->n_accounts, r.gw.svc.cfg->cfg->role ? r.gw.svc.cfg->cfg->role : "all");
    event_base_dispatch(r.base);
    db_gateway_stop(&r.gw);
    for (int i = 0; signums[i]; i++)
        if (sigs[i]) event_free(sigs[i]);
    if (r.tick) event_free(r.tick);
    db_log_detach();
    event_base_free(r.base);
    return 0;
}

/* ---- several workers sharing the port ---- */

static volatile sig_atomic_t sup_term, sup_hup;

static void sup_signal(int sig)
{
    if (sig == SIGHUP) sup_hup = 1;
    else sup_term = 1;
}

static pid_t spawn_worker(const char *file, const char *role, int workers, int index)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        /* A supervisor killed outright (SIGKILL, the OOM killer) passes nothing on: without
         * this its workers would keep the port, unsupervised, beside the next supervisor's.
         * SIGTERM, so they drain as on a stop; a supervisor gone before the prctl is seen
         * by its pid. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(1);
        _exit(run_gateway(file, role, workers, index));
    }
    return pid;
}

/* Starts n workers (SO_REUSEPORT spreads connections over them), passes SIGTERM/SIGINT and
 * SIGHUP on, and restarts a worker that died, so one crash never takes the port down. */
static int run_workers(const char *file, const char *role, int n)
{
    struct db_config *cfg;
    if (load(file, &cfg) != 0) return 2; /* fail fast on a bad config, before forking */
    db_config_free(cfg);
    struct sigaction sa = {.sa_handler = sup_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pid_t kids[64];
    struct db_log_ctx ctx = {"main", NULL, NULL, NULL};
    for (int i = 0; i < n; i++) kids[i] = spawn_worker(file, role, n, i);
    int alive = n, rc = 0;
    while (alive > 0) {
        if (sup_hup) {
            sup_hup = 0;
            for (int i = 0; i < n; i++) if (kids[i] > 0) kill(kids[i], SIGHUP);
        }
        if (sup_term == 1) {
            sup_term = 2;
            for (int i = 0; i < n; i++) if (kids[i] > 0) kill(kids[i], SIGTERM);
        }
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) continue; /* EINTR: a signal to pass on */
        for (int i = 0; i < n; i++) {
            if (kids[i] != pid) continue;
            if (sup_term) {
                kids[i] = 0;
                alive--;
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
            } else {
                db_log(DB_LOG_ERROR, &ctx, "worker %d (pid %ld) ended (status %d); restarting",
                       i, (long)pid, st);
                sleep(1);
                kids[i] = spawn_worker(file, role, n, i);
            }
        }
    }
    return rc;
}

/* ---- webhook set / delete ---- */

struct oneshot {
    struct event_base *base;
    const struct db_account *acct;
    int rc;
    char msg[sizeof ((struct db_err *)0)->msg];
};

static void setup_done(const struct db_http_resp *resp, void *arg)
{
    struct oneshot *o = arg;
    struct db_err e = {0};
    o->rc = db_conn_read_webhook_setup(o->acct->conn, o->acct->state, resp, &e);
    snprintf(o->msg, sizeof o->msg, "%s",
             o->rc == DB_OK ? "ok" : (e.msg[0] ? e.msg : (resp->transport_error ? resp->transport_error : "failed")));
    event_base_loopbreak(o->base);
}

static int webhook_cmd(const char *file, const char *verb, const char *platform,
                       const char *account, const char *url)
{
    int set = strcmp(verb, "set") == 0;
    if (!set && strcmp(verb, "delete") != 0) {
        fprintf(stderr, "deskbridge: webhook takes set or delete\n");
        return 2;
    }
    if (set && !url) {
        fprintf(stderr, "deskbridge: webhook set needs --url URL\n");
        return 2;
    }
    struct db_config *cfg;
    if (load(file, &cfg) != 0) return 2;
    const struct db_account *acct = account ? db_config_account(cfg, platform, account)
                                            : db_config_sole_account(cfg, platform);
    if (!acct) {
        fprintf(stderr, "deskbridge: no %s account%s%s%s\n", platform, account ? " " : "",
                account ? account : "", account ? "" : " (or several: name one with --account)");
        db_config_free(cfg);
        return 2;
    }
    char full[2048] = "";
    if (set) {
        /* A base URL gets the gateway's webhook path appended. */
        if (strstr(url, "/webhooks/"))
            snprintf(full, sizeof full, "%s", url);
        else
            snprintf(full, sizeof full, "%s%s/webhooks/%s/%s", url,
                     url[strlen(url) - 1] == '/' ? "" : "", acct->platform, acct->id);
        if (full[0] && strstr(full, "//webhooks/")) {
            char *d = strstr(full, "//webhooks/");
            memmove(d, d + 1, strlen(d));
        }
    }
    struct db_http_req req = {0};
    struct db_err e = {0};
    int rc = db_conn_build_webhook_setup(acct->conn, acct->state, set ? full : NULL, &req, &e);
    struct oneshot o = {.acct = acct, .rc = DB_EIO};
    o.base = event_base_new();
    struct db_http_client *hc = o.base ? db_http_client_new(o.base, NULL) : NULL;
    if (rc == DB_OK && hc) rc = db_http_client_send(hc, &req, 30000, setup_done, NULL, &o, NULL);
    db_http_req_clear(&req);
    if (rc == DB_OK && hc) {
        event_base_dispatch(o.base);
        rc = o.rc;
    } else {
        snprintf(o.msg, sizeof o.msg, "%s", e.msg[0] ? e.msg : db_strerror(rc));
    }
    if (rc == DB_OK)
        printf("%s webhook %s for %s %s%s%s\n", set ? "registered" : "removed",
               set ? "" : "", acct->platform, acct->id, set ? ": " : "", set ? full : "");
    else
        fprintf(stderr, "deskbridge: webhook %s failed: %s\n", verb, o.msg);
    db_http_client_free(hc);
    if (o.base) event_base_free(o.base);
    db_config_free(cfg);
    return rc == DB_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"role", required_argument, NULL, 'r'},
                                         {"account", required_argument, NULL, 'a'},
                                         {"url", required_argument, NULL, 'u'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"from-start", no_argument, NULL, 'f'},
                                         {"supervisor", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    db_json_alloc_install(); /* before the first jansson value */
    const char *file = getenv("DESKBRIDGE_CONFIG"), *role = NULL, *account = NULL, *url = NULL;
    int c, workers = 0, from_start = 0, supervisor = 0;
    while ((c = getopt_long(argc, argv, "c:r:w:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'r': role = optarg; break;
        case 'a': account = optarg; break;
        case 'u': url = optarg; break;
        case 'w':
            if (db_parse_int(optarg, 1, 64, &workers) != 0) {
                fprintf(stderr, "deskbridge: --workers must be 1 to 64\n");
                return 2;
            }
            break;
        case 'f': from_start = 1; break;
        case 's': supervisor = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case 'V': printf("deskbridge %s\n", DB_VERSION); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (role && strcmp(role, "all") && strcmp(role, "ingest") && strcmp(role, "send") &&
        strcmp(role, "dispatch")) {
        fprintf(stderr, "deskbridge: --role must be ingest, dispatch, send or all\n");
        return 2;
    }
    if (optind >= argc) {
        struct db_config *cfg;
        if (!workers) { /* DESKBRIDGE_WORKERS or the file's */
            /* load() has printed why: stop here, loading again would say it twice. */
            if (load(file, &cfg) != 0) return 2;
            workers = cfg->workers;
            db_config_free(cfg);
        }
        return workers > 1 ? run_workers(file, role, workers) : run_gateway(file, role, 0, 0);
    }
    const char *cmd = argv[optind];
    if (strcmp(cmd, "check-config") == 0) {
        const char *f = optind + 1 < argc ? argv[optind + 1] : file;
        struct db_config *cfg;
        if (load(f, &cfg) != 0) return 1;
        printf("%s: ok, %zu accounts\n", f ? f : "environment", cfg->n_accounts);
        db_config_free(cfg);
        return 0;
    }
    if (strcmp(cmd, "accounts") == 0 || strcmp(cmd, "tail") == 0 ||
        (strcmp(cmd, "reply") == 0 && optind + 2 < argc)) {
        struct db_config *cfg;
        if (load(file, &cfg) != 0) return 2;
        int rc = strcmp(cmd, "accounts") == 0 ? db_cli_accounts(cfg, stdout)
                 : strcmp(cmd, "tail") == 0   ? db_cli_tail(cfg, from_start, stdout)
                                              : db_cli_reply(cfg, argv[optind + 1], argv[optind + 2], stdout);
        db_config_free(cfg);
        return rc;
    }
    if (strcmp(cmd, "agent") == 0 && optind + 2 < argc && strcmp(argv[optind + 1], "invite") == 0) {
        struct db_config *cfg;
        if (load(file, &cfg) != 0) return 2;
        int rc = db_cli_agent_invite(cfg, argv[optind + 2], supervisor, stdout);
        db_config_free(cfg);
        return rc;
    }
    if (strcmp(cmd, "webhook") == 0 && optind + 2 < argc)
        return webhook_cmd(file, argv[optind + 1], argv[optind + 2], account, url);
    fprintf(stderr, "deskbridge: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
