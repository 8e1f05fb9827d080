/* The server API as an embedder uses it: start-up failures with messages,
 * stop semantics, two servers at once, hooks, log and access-log callbacks,
 * stats, host-provided listeners, and the mpmserve binary. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define RUN_BOUND_MS 10000

/* A TCP socket bound to 127.0.0.1 on an ephemeral port; *port gets it. */
static int bound_socket(int *port, int do_listen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void get_hello(int port)
{
    th_expect_serving(port);
}

static void port_in_use_fails_run_with_address(void **state)
{
    th_fixture_t *fx = *state;
    int port;
    int fd = bound_socket(&port, 1);
    th_server_t *s = th_new_bare_server(fx);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(th_server_set(s, "Listen", addr), 0);
    assert_int_equal(th_server_launch(s), 0);
    int returned = th_server_wait_run(s, RUN_BOUND_MS);
    close(fd);
    assert_true(returned);
    assert_int_equal(s->run_rc, MPM_EADDRINUSE);
    const char *msg = mpm_server_errmsg(s->srv);
    assert_non_null(msg);
    if (!strstr(msg, addr))
        fail_msg("errmsg '%s' does not name %s", msg, addr);
}

typedef struct hello_wait {
    th_server_t *s;
    int port;
} hello_wait_t;

/* True once GET / answers, or once run() returned (no point waiting). */
static int answers_hello_or_run_returned(void *arg)
{
    hello_wait_t *w = arg;
    if (th_server_wait_run(w->s, 0))
        return 1;
    int port = w->port;
    tc_response_t r;
    int ok = tc_exchange(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r, 2000) ==
                 TC_OK &&
             r.status == 200;
    tc_response_free(&r);
    return ok;
}

/* The header's usage: run() without bind() first binds by itself. */
static void run_without_bind_serves(void **state)
{
    th_fixture_t *fx = *state;
    int port;
    close(bound_socket(&port, 0)); /* a port that was free a moment ago */
    th_server_t *s = th_new_bare_server(fx);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(th_server_set(s, "Listen", addr), 0);
    assert_int_equal(th_server_launch(s), 0);
    hello_wait_t w = {s, port};
    int returned = 0;
    if (!th_wait_for(answers_hello_or_run_returned, &w, RUN_BOUND_MS) ||
        (returned = th_server_wait_run(s, 0)) != 0) {
        fail_msg("no answer on %s; run %s (%s: %s)", addr, returned ? "returned" : "still running",
                 returned ? mpm_err_name(s->run_rc) : "-", mpm_server_errmsg(s->srv));
    }
}

static void unknown_directive_fails_with_message(void **state)
{
    mpm_config_t *cfg;
    (void)state;
    assert_int_equal(mpm_config_new(&cfg), 0);
    assert_int_equal(mpm_config_set(cfg, "NoSuchDirective", "1"), MPM_ECONFIG);
    assert_non_null(strstr(mpm_config_errmsg(cfg), "NoSuchDirective"));
    assert_int_equal(mpm_config_set(cfg, "KeepAliveTimeout", "soon"), MPM_ECONFIG);
    assert_true(strlen(mpm_config_errmsg(cfg)) > 0);
    assert_int_equal(mpm_config_set(cfg, "MPM", "nosuchmpm"), MPM_ECONFIG);
    assert_true(strlen(mpm_config_errmsg(cfg)) > 0);
    mpm_config_free(cfg);
}

static void server_without_handler_is_econfig(void **state)
{
    th_fixture_t *fx = *state;
    if (strcmp(fx->strategy, "prefork") != 0 && !th_strategy_built(fx->strategy))
        skip();
    mpm_config_t *cfg;
    mpm_server_t *srv = NULL;
    assert_int_equal(mpm_config_new(&cfg), 0);
    assert_int_equal(mpm_config_set(cfg, "Listen", "127.0.0.1:0"), 0);
    assert_int_equal(mpm_config_set(cfg, "OneProcess", "On"), 0);
    assert_int_equal(mpm_config_set(cfg, "MPM", fx->strategy), 0);
    assert_int_equal(mpm_server_new(cfg, &srv), MPM_ECONFIG);
    assert_true(strlen(mpm_config_errmsg(cfg)) > 0);
    mpm_server_free(srv);
    mpm_config_free(cfg);
}

/* Calls made wrong get their documented error and change nothing: NULL
 * arguments, a port before the bind or past the last listener, a second
 * bind, a restart in one-process mode, a stats struct too small. */
static void api_misuse_gets_its_error(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    mpm_server_t *out = NULL;
    assert_int_equal(mpm_server_new(NULL, &out), MPM_EINVAL);
    assert_int_equal(mpm_server_new(th_server_config(s), NULL), MPM_EINVAL);
    assert_null(out);
    assert_int_equal(mpm_server_bind(NULL), MPM_EINVAL);
    assert_int_equal(mpm_server_port(NULL, 0), MPM_EINVAL);
    assert_int_equal(mpm_server_run(NULL), MPM_EINVAL);
    assert_int_equal(mpm_server_stop(NULL, 1), MPM_EINVAL);
    assert_int_equal(mpm_server_restart(NULL, 1), MPM_EINVAL);
    if (th_server_new(s) != 0)
        fail_msg("%s", s->errmsg);
    assert_int_equal(mpm_server_port(s->srv, 0), MPM_ESTATE);
    assert_int_equal(mpm_server_bind(s->srv), 0);
    assert_int_equal(mpm_server_bind(s->srv), MPM_ESTATE);
    int port = mpm_server_port(s->srv, 0);
    assert_true(port > 0);
    assert_int_equal(mpm_server_port(s->srv, 1), MPM_EINVAL);
    assert_int_equal(mpm_server_restart(s->srv, 1), MPM_ENOTSUP);
    mpm_child_stats_t small = {.size = 4};
    assert_int_equal(mpm_server_child_stats(s->srv, 0, &small), MPM_EINVAL);
    assert_int_equal(mpm_server_child_stats(s->srv, 0, NULL), MPM_EINVAL);
    /* Still a good server: it runs and serves on the port it bound. */
    assert_int_equal(th_server_run_async(s), 0);
    s->port = port;
    th_expect_serving(port);
}

static void stop_twice_is_fine(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    get_hello(s->port);
    assert_int_equal(mpm_server_stop(s->srv, 0), 0);
    assert_int_equal(mpm_server_stop(s->srv, 0), 0);
    assert_true(th_server_wait_run(s, RUN_BOUND_MS));
    assert_int_equal(s->run_rc, 0);
    /* After run returned: no effect. */
    assert_int_equal(mpm_server_stop(s->srv, 1), 0);
    /* A server runs once. */
    assert_int_equal(mpm_server_run(s->srv), MPM_ESTATE);
}

static void stop_before_run_returns_at_once(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    if (th_server_new(s) != 0)
        fail_msg("%s", s->errmsg);
    assert_int_equal(mpm_server_stop(s->srv, 0), 0);
    assert_int_equal(th_server_run_async(s), 0);
    assert_true(th_server_wait_run(s, RUN_BOUND_MS));
    assert_int_equal(s->run_rc, 0);
}

static int handler_called(void *arg)
{
    th_server_t *s = arg;
    return atomic_load(&s->handler_calls) > 0;
}

static void graceful_stop_finishes_inflight_request(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(handler_called, s, RUN_BOUND_MS));
    assert_int_equal(mpm_server_stop(s->srv, 1), 0);
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "slept");
    tc_response_free(&r);
    assert_true(th_server_wait_run(s, RUN_BOUND_MS));
    assert_int_equal(s->run_rc, 0);
}

static void stop_now_closes_idle_connection(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    tc_response_free(&r);
    /* The connection idles in keep-alive (KeepAliveTimeout 5 s). */
    int64_t start = tc_now_ms();
    assert_int_equal(mpm_server_stop(s->srv, 0), 0);
    assert_true(th_server_wait_run(s, RUN_BOUND_MS));
    assert_int_equal(tc_wait_close(c, RUN_BOUND_MS, NULL), TC_CLOSED);
    if (tc_now_ms() - start > 4000)
        fail_msg("stop took %lld ms with an idle connection", (long long)(tc_now_ms() - start));
}

static void two_servers_serve_independently(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *a = th_start_server(fx, NULL);
    th_server_t *b = th_start_server(fx, NULL);
    assert_int_not_equal(a->port, b->port);
    /* Hold a kept-alive connection on A: prefork's A is then busy with it. */
    tc_conn_t *ca = th_connect(fx, a->port);
    tc_response_t r;
    th_send(ca, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(ca, &r, 0);
    tc_response_free(&r);
    get_hello(b->port);
    th_send(ca, "GET /info HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    th_read(ca, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    assert_int_equal(atomic_load(&a->handler_calls), 2);
    assert_int_equal(atomic_load(&b->handler_calls), 1);
    /* Stopping one leaves the other serving. */
    assert_int_equal(th_server_stop(a, 0), 0);
    get_hello(b->port);
}

typedef struct hook_counts {
    atomic_int init;
    atomic_int exit;
    int fail;
} hook_counts_t;

static int count_init(void *data)
{
    hook_counts_t *h = data;
    atomic_fetch_add(&h->init, 1);
    return h->fail ? -1 : 0;
}

static void count_exit(void *data)
{
    hook_counts_t *h = data;
    atomic_fetch_add(&h->exit, 1);
}

static void child_init_called_once(void **state)
{
    th_fixture_t *fx = *state;
    static hook_counts_t hooks;
    memset(&hooks, 0, sizeof(hooks));
    th_server_t *s = th_new_server(fx);
    mpm_config_set_child_hooks(th_server_config(s), count_init, count_exit, &hooks);
    if (th_server_start(s) != 0)
        fail_msg("%s", s->errmsg);
    get_hello(s->port);
    get_hello(s->port);
    assert_int_equal(th_server_stop(s, 0), 0);
    assert_int_equal(s->run_rc, 0);
    assert_int_equal(atomic_load(&hooks.init), 1);
}

static void failing_child_init_fails_run(void **state)
{
    th_fixture_t *fx = *state;
    static hook_counts_t hooks;
    memset(&hooks, 0, sizeof(hooks));
    hooks.fail = 1;
    th_server_t *s = th_new_server(fx);
    mpm_config_set_child_hooks(th_server_config(s), count_init, NULL, &hooks);
    if (th_server_start(s) != 0) /* bound first: only the hook can fail run */
        fail_msg("%s", s->errmsg);
    assert_true(th_server_wait_run(s, RUN_BOUND_MS));
    assert_int_equal(s->run_rc, MPM_ECHILD);
    assert_int_equal(atomic_load(&hooks.init), 1);
    assert_true(strlen(mpm_server_errmsg(s->srv)) > 0);
}

static void thread_hooks_run(void **state)
{
    th_fixture_t *fx = *state;
    static hook_counts_t hooks;
    memset(&hooks, 0, sizeof(hooks));
    th_server_t *s = th_new_server(fx);
    mpm_config_set_thread_hooks(th_server_config(s), count_init, count_exit, &hooks);
    if (th_server_start(s) != 0)
        fail_msg("%s", s->errmsg);
    get_hello(s->port);
    assert_int_equal(th_server_stop(s, 0), 0);
    /* prefork one-process serves on the calling thread: one unit; worker
     * and event run the hooks in each of their ThreadsPerChild (25) pool
     * threads, and not in the listener. */
    int units = strcmp(fx->strategy, "prefork") == 0 ? 1 : 25;
    assert_int_equal(atomic_load(&hooks.init), units);
    assert_int_equal(atomic_load(&hooks.exit), units);
}

static void log_callback_receives_lines(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LogLevel", "debug", NULL};
    th_server_t *s = th_start_server(fx, dirs);
    get_hello(s->port);
    tc_response_t r;
    th_request(s->port, "G@T / HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    tc_response_free(&r);
    assert_int_equal(th_server_stop(s, 0), 0);
    assert_true(th_server_log_length(s) > 0);
}

typedef struct access_wait {
    th_server_t *s;
    size_t n;
} access_wait_t;

static int has_access_entries(void *arg)
{
    access_wait_t *w = arg;
    return th_server_access_count(w->s) >= w->n;
}

static void access_log_gets_each_request(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /nope?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
               "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde");
    for (int i = 0; i < 3; i++) {
        th_read(c, &r, 0);
        tc_response_free(&r);
    }
    access_wait_t w = {s, 3};
    assert_true(th_wait_for(has_access_entries, &w, RUN_BOUND_MS));
    th_access_t a = th_server_access_at(s, 0);
    assert_string_equal(a.method, "GET");
    assert_string_equal(a.target, "/");
    assert_int_equal(a.status, 200);
    assert_int_equal(a.bytes, 13);
    assert_int_equal(a.version, 11);
    assert_string_equal(a.remote, "127.0.0.1");
    a = th_server_access_at(s, 1);
    assert_string_equal(a.target, "/nope?x=1");
    assert_int_equal(a.status, 404);
    assert_int_equal(a.bytes, strlen("not found\n"));
    a = th_server_access_at(s, 2);
    assert_string_equal(a.method, "POST");
    assert_string_equal(a.target, "/echo-whole");
    assert_int_equal(a.status, 200);
    assert_int_equal(a.bytes, 5);
}

typedef struct stats_wait {
    th_server_t *s;
    uint64_t requests;
} stats_wait_t;

static int has_requests(void *arg)
{
    stats_wait_t *w = arg;
    mpm_stats_t st = {.size = sizeof(st)};
    return mpm_server_stats(w->s->srv, &st) == 0 && st.requests_served >= w->requests;
}

static void stats_count_requests(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    mpm_stats_t st = {.size = sizeof(st)};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    assert_string_equal(st.strategy, fx->strategy);
    uint64_t before = st.requests_served;
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        tc_response_t r;
        th_read(c, &r, 0);
        tc_response_free(&r);
    }
    get_hello(s->port);
    stats_wait_t w = {s, before + 4};
    assert_true(th_wait_for(has_requests, &w, RUN_BOUND_MS));
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    assert_int_equal(st.requests_served, before + 4);
    assert_int_equal(st.processes, 1); /* checked once surely running */
    assert_true(st.connections_served >= 2);
    st.size = 1;
    assert_int_equal(mpm_server_stats(s->srv, &st), MPM_EINVAL);
}

static void host_listen_fd_is_used_and_kept_open(void **state)
{
    th_fixture_t *fx = *state;
    int port;
    int fd = bound_socket(&port, 1);
    th_server_t *s = th_new_bare_server(fx);
    assert_int_equal(mpm_config_add_listen_fd(th_server_config(s), fd), 0);
    if (th_server_start(s) != 0) {
        close(fd);
        fail_msg("%s", s->errmsg);
    }
    assert_int_equal(s->port, port);
    get_hello(port);
    int stopped = th_server_stop(s, 0);
    if (stopped == 0) {
        mpm_server_free(s->srv);
        s->srv = NULL;
    }
    int still_open = fcntl(fd, F_GETFD) != -1;
    int accepting = 0;
    socklen_t len = sizeof(accepting);
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len);
    close(fd);
    assert_int_equal(stopped, 0);
    assert_true(still_open);
    assert_true(accepting);
}

/* Marks in open[] the descriptors this process has open now. */
static void list_fds(unsigned char *open, int max)
{
    memset(open, 0, (size_t)max);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int dfd = d ? dirfd(d) : -1;
    while (d && (e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != dfd && fd < max)
            open[fd] = 1;
    }
    if (d)
        closedir(d);
}

/* Every descriptor the library opens (listeners, wake pipes, epoll sets,
 * eventfds, pidfds, control channels) is close-on-exec: a host that execs
 * must not leak them into its programs. */
static void library_fds_are_cloexec(void **state)
{
    th_fixture_t *fx = *state;
    enum { MAXFD = 4096 };
    static unsigned char before[MAXFD], after[MAXFD];
    list_fds(before, MAXFD);
    th_server_t *s = th_new_server(fx);
    assert_int_equal(th_server_set(s, "OneProcess", strcmp(fx->strategy, "worker") ? "On" : "Off"),
                     0);
    assert_int_equal(th_server_set(s, "HandleSignals", "Off"), 0);
    if (th_server_start(s) != 0)
        fail_msg("%s", s->errmsg);
    get_hello(s->port);
    list_fds(after, MAXFD);
    int checked = 0;
    for (int fd = 0; fd < MAXFD; fd++) {
        if (!after[fd] || before[fd])
            continue;
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || !(flags & FD_CLOEXEC))
            fail_msg("fd %d is not close-on-exec", fd);
        checked++;
    }
    assert_true(checked >= 2); /* at least a listener and a wake pipe */
}

static int path_exists(void *path)
{
    return access(path, F_OK) == 0;
}

/* Listen unix:/path serves over a unix socket, removes the socket file when
 * the server is freed, and reports the peer as "unix". */
static void unix_socket_listener_serves(void **state)
{
    th_fixture_t *fx = *state;
    char path[108], spec[120];
    snprintf(path, sizeof(path), "/tmp/mpm-test-%d-%s.sock", (int)getpid(), fx->strategy);
    snprintf(spec, sizeof(spec), "unix:%s", path);
    th_server_t *s = th_new_bare_server(fx);
    assert_int_equal(th_server_set(s, "Listen", spec), 0);
    if (th_server_launch(s) != 0) /* run() binds: a unix listener has no port */
        fail_msg("%s", s->errmsg);
    assert_true(th_wait_for(path_exists, path, 10000));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char req[] = "GET /info HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
    char buf[2048];
    size_t got = 0;
    ssize_t n;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (got < sizeof(buf) - 1 && (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "remote=unix"));
    assert_int_equal(th_server_stop(s, 0), 0);
    mpm_server_free(s->srv);
    s->srv = NULL;
    assert_int_equal(access(path, F_OK), -1);
}

static void bad_listen_fd_is_einval(void **state)
{
    mpm_config_t *cfg;
    (void)state;
    assert_int_equal(mpm_config_new(&cfg), 0);
    assert_int_equal(mpm_config_add_listen_fd(cfg, -1), MPM_EINVAL);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(mpm_config_add_listen_fd(cfg, pipefd[0]), MPM_EINVAL);
    close(pipefd[0]);
    close(pipefd[1]);
    mpm_config_free(cfg);
}

/* ---- the mpmserve binary ---- */

/* Pids of live processes whose parent is us (orphans reparented to us as
 * subreaper included), other than the ones in `except`. */
static size_t our_children(pid_t *out, size_t max)
{
    size_t n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        char st;
        int ppid;
        if (rp && sscanf(rp + 2, "%c %d", &st, &ppid) == 2 && ppid == getpid() && st != 'Z')
            out[n++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return n;
}

static void reap_zombies(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static int no_children_left(void *arg)
{
    pid_t pids[16];
    (void)arg;
    reap_zombies();
    return our_children(pids, 16) == 0;
}

static void run_mpmserve(th_fixture_t *fx, int one_process)
{
    if (!th_mpmserve_path())
        skip();
    if (!th_strategy_built(fx->strategy))
        skip();
    /* Orphaned grandchildren come to us, so none can hide. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const char *args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", "--test-routes",
                          one_process ? "--one-process" : NULL, NULL};
    th_process_t *p = th_start_mpmserve(fx, args);
    assert_true(p->port > 0);
    tc_response_t r;
    th_request(p->port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "Hello, World!");
    tc_response_free(&r);
    pid_t pid = p->pid;
    int rc = th_process_stop(p, SIGTERM, RUN_BOUND_MS);
    assert_int_equal(rc, 0);
    assert_true(WIFEXITED(p->status));
    assert_int_equal(WEXITSTATUS(p->status), 0);
    assert_int_equal(kill(pid, 0), -1);
    int clean = th_wait_for(no_children_left, NULL, RUN_BOUND_MS);
    if (!clean) {
        pid_t pids[16];
        size_t n = our_children(pids, 16);
        for (size_t i = 0; i < n; i++)
            kill(pids[i], SIGKILL);
        reap_zombies();
        fail_msg("%zu process(es) left behind after mpmserve exited", n);
    }
}

static void mpmserve_one_process_serves_and_exits_cleanly(void **state)
{
    run_mpmserve(*state, 1);
}

static void mpmserve_multi_process_serves_and_exits_cleanly(void **state)
{
    run_mpmserve(*state, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX(run_without_bind_serves),
        TH_MATRIX(port_in_use_fails_run_with_address),
        TH_CASE(unknown_directive_fails_with_message, "prefork"),
        TH_MATRIX(server_without_handler_is_econfig),
        TH_MATRIX(stop_twice_is_fine),
        TH_CASE(api_misuse_gets_its_error, "prefork"),
        TH_CASE(api_misuse_gets_its_error, "event"),
        TH_MATRIX(stop_before_run_returns_at_once),
        TH_MATRIX(graceful_stop_finishes_inflight_request),
        TH_MATRIX(stop_now_closes_idle_connection),
        TH_MATRIX(two_servers_serve_independently),
        TH_MATRIX(child_init_called_once),
        TH_MATRIX(failing_child_init_fails_run),
        TH_MATRIX(thread_hooks_run),
        TH_MATRIX(log_callback_receives_lines),
        TH_MATRIX(access_log_gets_each_request),
        TH_MATRIX(stats_count_requests),
        TH_MATRIX(host_listen_fd_is_used_and_kept_open),
        TH_MATRIX(unix_socket_listener_serves),
        TH_MATRIX(library_fds_are_cloexec),
        TH_CASE(bad_listen_fd_is_einval, "prefork"),
        TH_MATRIX(mpmserve_one_process_serves_and_exits_cleanly),
        TH_MATRIX(mpmserve_multi_process_serves_and_exits_cleanly),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
