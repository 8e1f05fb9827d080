/* mpmserve: argument parsing, configuration, signals, run.
 *
 * Signals. In one-process mode mpmserve owns them (HandleSignals Off):
 * SIGINT/SIGTERM stop at once, SIGWINCH stops gracefully, SIGHUP and SIGUSR1
 * (restart, graceful restart) are ignored because there is no restart without
 * a master. When the library runs as master (multi-process mode) it installs
 * its own handlers for the duration of mpm_server_run() (HandleSignals On,
 * httpd's meaning: TERM stop, HUP restart, USR1 graceful restart, WINCH
 * graceful stop) and restores ours afterwards. Our handlers only call
 * mpm_server_stop(), which is async-signal-safe. */
#include "mpmserve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS_MAX_ITEMS 64

/* The server signals act on; NULL between servers. A stop that arrives while
 * no server exists is remembered in g_stop_req and applied to the next one. */
static _Atomic(mpm_server_t *) g_srv;
static volatile sig_atomic_t g_stop_req; /* 0 none, 1 graceful, 2 now */

typedef struct ms_opts {
    const char *mpm;
    const char *listen[MS_MAX_ITEMS];
    size_t nlisten;
    const char *set[MS_MAX_ITEMS];
    size_t nset;
    const char *root;
    int one_process;
    int test_routes;
    const char *tls_listen[MS_MAX_ITEMS];
    size_t ntls_listen;
    const char *cert[MS_MAX_ITEMS]; /* --cert/--key pairs, in order */
    size_t ncert;
    const char *key[MS_MAX_ITEMS];
    size_t nkey;
    const char *access_log;
} ms_opts_t;

static void usage(FILE *f)
{
    fputs("usage: mpmserve [options]\n"
          "  --mpm prefork|worker|event  strategy (default: the best one built)\n"
          "  --listen HOST:PORT          listen address, repeatable (default 127.0.0.1:8080;\n"
          "                              port 0 picks a free port, printed at start)\n"
          "  --tls-listen HOST:PORT      TLS listener, repeatable (ports printed after\n"
          "                              the plain ones)\n"
          "  --cert FILE --key FILE      TLS certificate (PEM chain) and key, repeatable:\n"
          "                              the first is the default, others chosen by SNI\n"
          "  --root DIR                  directory served under /files/ (default: .)\n"
          "  --set Directive=value       any mpmlib directive, repeatable\n"
          "                              (e.g. --set KeepAliveTimeout=10)\n"
          "  --access-log FILE           Combined Log Format lines to FILE ('-': stdout)\n"
          "  --one-process               serve in this process, no master, no fork\n"
          "  --test-routes               enable /crash (aborts the serving process), /pid and /hang\n"
          "  --help, --version\n"
          "routes: GET / and /hello.txt, any /echo, GET /status, GET /metrics, GET /stream?n=K,\n"
          "        GET /sleep?ms=N, GET /files/PATH, GET /tls, GET /crash (--test-routes)\n"
          "signals: INT/TERM stop, WINCH graceful stop; HUP/USR1 restart (multi-process\n"
          "         mode only; ignored in one-process mode)\n",
          f);
}

static void on_signal(int sig)
{
    int saved = errno;
    int graceful = (sig == SIGWINCH);
    if (g_stop_req < 2)
        g_stop_req = graceful ? 1 : 2;
    mpm_server_t *srv = atomic_load(&g_srv);
    if (srv)
        mpm_server_stop(srv, graceful);
    errno = saved;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

static void on_log(mpm_log_level_t level, const char *msg, void *data)
{
    (void)data;
    const char *name = level <= MPM_LOG_ERROR    ? "error"
                       : level == MPM_LOG_WARN   ? "warn"
                       : level == MPM_LOG_NOTICE ? "notice"
                       : level == MPM_LOG_INFO   ? "info"
                                                 : "debug";
    /* One fprintf per line: stdio locks the stream, so lines from several
     * threads do not interleave. */
    fprintf(stderr, "mpmserve: [%s] %s\n", name, msg);
}

/* Takes the option's value from "--opt=value" or the next argument. */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "mpmserve: %s needs a value\n", name);
        exit(2);
    }
    return argv[++*i];
}

static int is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static void push(const char **list, size_t *n, const char *v, const char *what)
{
    if (*n >= MS_MAX_ITEMS) {
        fprintf(stderr, "mpmserve: too many %s options (max %d)\n", what, MS_MAX_ITEMS);
        exit(2);
    }
    list[(*n)++] = v;
}

static void parse_args(int argc, char **argv, ms_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->root = ".";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("mpmserve (mpmlib %s)\n", mpm_version_string());
            exit(0);
        } else if (is_opt(a, "--mpm")) {
            o->mpm = opt_value(argc, argv, &i, "--mpm");
            if (strcmp(o->mpm, "prefork") != 0 && strcmp(o->mpm, "worker") != 0 &&
                strcmp(o->mpm, "event") != 0) {
                fprintf(stderr, "mpmserve: --mpm: '%s' is not one of prefork, worker, event\n",
                        o->mpm);
                exit(2);
            }
        } else if (is_opt(a, "--listen")) {
            push(o->listen, &o->nlisten, opt_value(argc, argv, &i, "--listen"), "--listen");
        } else if (is_opt(a, "--tls-listen")) {
            push(o->tls_listen, &o->ntls_listen, opt_value(argc, argv, &i, "--tls-listen"),
                 "--tls-listen");
        } else if (is_opt(a, "--cert")) {
            push(o->cert, &o->ncert, opt_value(argc, argv, &i, "--cert"), "--cert");
        } else if (is_opt(a, "--key")) {
            push(o->key, &o->nkey, opt_value(argc, argv, &i, "--key"), "--key");
        } else if (is_opt(a, "--access-log")) {
            o->access_log = opt_value(argc, argv, &i, "--access-log");
        } else if (is_opt(a, "--root")) {
            o->root = opt_value(argc, argv, &i, "--root");
        } else if (is_opt(a, "--set")) {
            const char *s = opt_value(argc, argv, &i, "--set");
            if (!strchr(s, '=') || s[0] == '=') {
                fprintf(stderr, "mpmserve: --set wants Directive=value, got '%s'\n", s);
                exit(2);
            }
            push(o->set, &o->nset, s, "--set");
        } else if (strcmp(a, "--one-process") == 0) {
            o->one_process = 1;
        } else if (strcmp(a, "--test-routes") == 0) {
            o->test_routes = 1;
        } else {
            fprintf(stderr, "mpmserve: unknown argument '%s' (see --help)\n", a);
            exit(2);
        }
    }
    if (o->ncert != o->nkey) {
        fprintf(stderr, "mpmserve: --cert and --key go together (one --key per --cert)\n");
        exit(2);
    }
    if (o->ntls_listen && !o->ncert) {
        fprintf(stderr, "mpmserve: --tls-listen needs --cert and --key\n");
        exit(2);
    }
    if (o->nlisten == 0 && o->ntls_listen == 0)
        o->listen[o->nlisten++] = "127.0.0.1:8080";
}

/* Sets one directive or exits 2 with the library's reason. */
static void set_or_die(mpm_config_t *cfg, const char *key, const char *value, const char *flag)
{
    int rc = mpm_config_set(cfg, key, value);
    if (rc != 0) {
        const char *why = mpm_config_errmsg(cfg);
        fprintf(stderr, "mpmserve: %s: %s\n", flag, why && *why ? why : mpm_strerror(rc));
        exit(2);
    }
}

/* Builds the configuration from the options. */
static mpm_config_t *build_config(const ms_opts_t *o, ms_app_t *app, int one_process,
                                  int handle_signals, int *access_fd)
{
    mpm_config_t *cfg;
    int rc = mpm_config_new(&cfg);
    if (rc != 0) {
        fprintf(stderr, "mpmserve: mpm_config_new: %s\n", mpm_strerror(rc));
        exit(1);
    }
    char flag[320];
    if (o->mpm)
        set_or_die(cfg, "MPM", o->mpm, "--mpm");
    set_or_die(cfg, "OneProcess", one_process ? "On" : "Off", "--one-process");
    set_or_die(cfg, "HandleSignals", handle_signals ? "On" : "Off", "HandleSignals");
    for (size_t i = 0; i < o->nlisten; i++) {
        snprintf(flag, sizeof flag, "--listen %s", o->listen[i]);
        set_or_die(cfg, "Listen", o->listen[i], flag);
    }
    for (size_t i = 0; i < o->ntls_listen; i++) {
        snprintf(flag, sizeof flag, "--tls-listen %s", o->tls_listen[i]);
        set_or_die(cfg, "TLSListen", o->tls_listen[i], flag);
    }
    for (size_t i = 0; i < o->ncert; i++) {
        if (mpm_config_add_tls_certificate(cfg, o->cert[i], o->key[i]) != 0) {
            fprintf(stderr, "mpmserve: --cert %s: %s\n", o->cert[i], mpm_config_errmsg(cfg));
            exit(2);
        }
    }
    for (size_t i = 0; i < o->nset; i++) {
        char kv[512];
        snprintf(kv, sizeof kv, "%s", o->set[i]);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        snprintf(flag, sizeof flag, "--set %s", o->set[i]);
        set_or_die(cfg, kv, eq + 1, flag);
    }
    mpm_config_set_handler(cfg, ms_handle, app);
    mpm_config_set_log_cb(cfg, on_log, NULL);
    if (*access_fd >= 0)
        ms_access_log_attach(cfg, access_fd);
    return cfg;
}

/* Creates a server from cfg; exits on failure (2 for configuration errors,
 * 1 otherwise). */
static mpm_server_t *new_server_or_die(mpm_config_t *cfg, const ms_opts_t *o)
{
    mpm_server_t *srv = NULL;
    int rc = mpm_server_new(cfg, &srv);
    if (rc != 0) {
        const char *why = mpm_config_errmsg(cfg);
        if (rc == MPM_ENOTSUP)
            fprintf(stderr, "mpmserve: --mpm %s: not available in this build%s%s%s\n",
                    o->mpm ? o->mpm : "(default)", why && *why ? " (" : "", why ? why : "",
                    why && *why ? ")" : "");
        else
            fprintf(stderr, "mpmserve: bad configuration: %s\n",
                    why && *why ? why : mpm_strerror(rc));
        exit(rc == MPM_ECONFIG ? 2 : 1);
    }
    return srv;
}

/* Binds and prints the listeners; returns 0 or the error. */
static int bind_and_announce(mpm_server_t *srv, size_t nlisten)
{
    int rc = mpm_server_bind(srv);
    if (rc != 0)
        return rc; /* main() prints mpm_server_errmsg() */
    for (size_t i = 0; i < nlisten; i++) {
        int port = mpm_server_port(srv, i);
        printf("mpmserve: listening on 127.0.0.1:%d\n", port < 0 ? 0 : port);
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    ms_opts_t o;
    parse_args(argc, argv, &o);

    ms_app_t app = {.root = o.root, .test_routes = o.test_routes};
    app.root_fd = open(o.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (app.root_fd < 0) {
        fprintf(stderr, "mpmserve: --root %s: %s\n", o.root, strerror(errno));
        return 2;
    }

    static int access_fd = -1; /* outlives the server: the callback's data */
    if (o.access_log && ms_access_log_open(o.access_log, &access_fd) != 0)
        return 2;

    install_signals();

    /* Validate every flag once, in the mode asked for; exits 2 on a bad one. */
    int one_process = o.one_process;
    mpm_config_t *cfg = build_config(&o, &app, one_process, !one_process, &access_fd);
    mpm_server_t *srv = new_server_or_die(cfg, &o);
    mpm_config_free(cfg);

    atomic_store(&g_srv, srv);
    if (g_stop_req)
        mpm_server_stop(srv, g_stop_req == 1);
    int rc = bind_and_announce(srv, o.nlisten + o.ntls_listen);
    if (rc == 0)
        rc = mpm_server_run(srv);
    if (rc != 0) {
        const char *why = mpm_server_errmsg(srv);
        fprintf(stderr, "mpmserve: %s%s%s\n", mpm_strerror(rc), *why ? ": " : "", why);
    }
    atomic_store(&g_srv, NULL);
    mpm_server_free(srv);
    close(app.root_fd);
    if (access_fd > STDERR_FILENO)
        close(access_fd);
    return rc == 0 ? 0 : 1;
}
