/* The master through the API, in this process: mpm_server_run() with
 * OneProcess Off forks children from a test thread, as an embedding host
 * would; stop and restart are API calls; signals are the host's. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define RUN_BOUND_MS 30000

/* A master with two small children; fails the case if it does not start. */
static th_server_t *start_master(th_fixture_t *fx, int handle_signals)
{
    static const char *const dirs[] = {"StartServers", "2",        "MinSpareServers", "1",
                                       "MaxSpareServers", "4",     "MinSpareThreads", "1",
                                       "MaxSpareThreads", "60",    NULL};
    th_server_t *s = th_new_server(fx);
    for (size_t i = 0; dirs[i]; i += 2)
        assert_int_equal(th_server_set(s, dirs[i], dirs[i + 1]), 0);
    assert_int_equal(th_server_set(s, "OneProcess", "Off"), 0);
    assert_int_equal(th_server_set(s, "HandleSignals", handle_signals ? "On" : "Off"), 0);
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    return s;
}

static mpm_stats_t stats(th_server_t *s)
{
    mpm_stats_t st = {.size = sizeof(st)};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    return st;
}

static int two_ready(void *arg)
{
    mpm_stats_t st = stats(arg);
    return st.processes == 2 && st.idle_workers >= 2;
}

static int generation_one(void *arg)
{
    return stats(arg).generation == 1;
}

static void get_hello(int port)
{
    tc_response_t r;
    th_request(port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "Hello, World!");
    tc_response_free(&r);
}

static void master_serves_restarts_and_stops(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start_master(fx, 0);
    assert_true(th_wait_for(two_ready, s, RUN_BOUND_MS));
    get_hello(s->port);
    mpm_child_stats_t c = {.size = sizeof(c)};
    int rows = 0, pids[2] = {0};
    for (unsigned i = 0; i < stats(s).slots; i++) {
        if (mpm_server_child_stats(s->srv, i, &c) == 0 && rows < 2)
            pids[rows++] = c.pid;
    }
    assert_int_equal(rows, 2);
    assert_true(pids[0] > 0 && pids[0] != getpid());
    assert_int_equal(mpm_server_child_stats(s->srv, stats(s).slots, &c), MPM_ERANGE);

    assert_int_equal(mpm_server_restart(s->srv, 1), 0);
    assert_true(th_wait_for(generation_one, s, RUN_BOUND_MS));
    get_hello(s->port);
    assert_int_equal(th_server_stop(s, 1), 0);
    assert_int_equal(s->run_rc, 0);
    for (int i = 0; i < 2; i++)
        assert_true(kill(pids[i], 0) != 0); /* reaped: gone */
}

static int fail_init(void *data)
{
    return -1;
}

static void failing_child_init_stops_master(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    assert_int_equal(th_server_set(s, "OneProcess", "Off"), 0);
    assert_int_equal(th_server_set(s, "HandleSignals", "Off"), 0);
    mpm_config_set_child_hooks(th_server_config(s), fail_init, NULL, NULL);
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    assert_true(th_server_wait_run(s, RUN_BOUND_MS));
    assert_int_equal(s->run_rc, MPM_ECHILD);
    assert_non_null(strstr(mpm_server_errmsg(s->srv), "child init"));
}

static atomic_int host_usr1;

static void host_handler(int sig)
{
    atomic_fetch_add(&host_usr1, 1);
}

static void signal_handlers_are_restored_and_not_shared(void **state)
{
    th_fixture_t *fx = *state;
    struct sigaction mine = {.sa_handler = host_handler}, now;
    sigemptyset(&mine.sa_mask);
    atomic_store(&host_usr1, 0);
    assert_int_equal(sigaction(SIGUSR1, &mine, NULL), 0);

    th_server_t *a = start_master(fx, 1);
    assert_true(th_wait_for(two_ready, a, RUN_BOUND_MS));
    /* A second master in the same process cannot own the signals too. */
    th_server_t *b = th_new_server(fx);
    assert_int_equal(th_server_set(b, "OneProcess", "Off"), 0);
    if (th_server_start(b) != 0)
        fail_msg("start: %s", b->errmsg);
    assert_true(th_server_wait_run(b, RUN_BOUND_MS));
    assert_int_equal(b->run_rc, MPM_ESTATE);

    assert_int_equal(th_server_stop(a, 0), 0);
    assert_int_equal(sigaction(SIGUSR1, NULL, &now), 0);
    assert_ptr_equal(now.sa_handler, host_handler);
    raise(SIGUSR1);
    assert_int_equal(atomic_load(&host_usr1), 1);
    signal(SIGUSR1, SIG_DFL);
}

/* Each child reports its init and exit hooks on a pipe the test reads. */
static int report_init(void *data)
{
    return write(*(int *)data, "i", 1) == 1 ? 0 : -1;
}

static void report_exit(void *data)
{
    (void)!write(*(int *)data, "x", 1);
}

static void child_hooks_run_in_every_child(void **state)
{
    th_fixture_t *fx = *state;
    static int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    th_server_t *s = th_new_server(fx);
    assert_int_equal(th_server_set(s, "OneProcess", "Off"), 0);
    assert_int_equal(th_server_set(s, "HandleSignals", "Off"), 0);
    assert_int_equal(th_server_set(s, "StartServers", "2"), 0);
    mpm_config_set_child_hooks(th_server_config(s), report_init, report_exit, &pipefd[1]);
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    get_hello(s->port);
    assert_int_equal(th_server_stop(s, 1), 0);
    close(pipefd[1]);
    char buf[256];
    ssize_t n = read(pipefd[0], buf, sizeof(buf)); /* every writer is gone: all of it */
    close(pipefd[0]);
    int inits = 0, exits = 0;
    for (ssize_t i = 0; i < n; i++) {
        inits += buf[i] == 'i';
        exits += buf[i] == 'x';
    }
    assert_true(inits >= 2);
    assert_int_equal(exits, inits);
}

static int log_count(th_server_t *s, const char *text)
{
    int n = 0;
    pthread_mutex_lock(&s->lock);
    for (const char *p = s->log; p && (p = strstr(p, text)) != NULL; p += strlen(text))
        n++;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int limit_logged(void *arg)
{
    return th_server_log_contains(arg, "reached MaxRequestWorkers");
}

static void max_request_workers_is_a_ceiling_logged_once(void **state)
{
    th_fixture_t *fx = *state;
    int prefork = strcmp(fx->strategy, "prefork") == 0;
    static const char *const pre[] = {"StartServers", "1", "MinSpareServers", "1",
                                      "MaxSpareServers", "2", "MaxRequestWorkers", "1",
                                      "ServerLimit", "1", NULL};
    static const char *const thr[] = {"StartServers", "1", "ThreadsPerChild", "2",
                                      "MinSpareThreads", "1", "MaxSpareThreads", "3",
                                      "MaxRequestWorkers", "2", "ServerLimit", "1", NULL};
    th_server_t *s = th_new_server(fx);
    for (const char *const *d = prefork ? pre : thr; *d; d += 2)
        assert_int_equal(th_server_set(s, d[0], d[1]), 0);
    assert_int_equal(th_server_set(s, "OneProcess", "Off"), 0);
    assert_int_equal(th_server_set(s, "HandleSignals", "Off"), 0);
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    /* Keep every unit busy: with a kept-alive connection (prefork, worker:
     * it holds its process or thread), or with a request in its handler
     * (event parks an idle connection without a thread). */
    for (int i = 0; i < (prefork ? 1 : 2); i++) {
        if (strcmp(fx->strategy, "event") == 0)
            th_send(th_connect(fx, s->port), "GET /sleep?ms=8000 HTTP/1.1\r\nHost: t\r\n\r\n");
        else
            th_hold_connection(fx, s->port);
    }
    assert_true(th_wait_for(limit_logged, s, RUN_BOUND_MS));
    /* Two more maintenance passes (one a second) still at the ceiling. */
    uint64_t t0 = stats(s).uptime_ms;
    while (stats(s).uptime_ms < t0 + 2500)
        usleep(50000);
    assert_int_equal(stats(s).processes, 1); /* the ceiling held */
    assert_int_equal(log_count(s, "reached MaxRequestWorkers"), 1);
}

/* /restart-me: the handler, in a child, asks for a graceful restart of the
 * whole server; the body is the call's return code. */
static void restart_from_handler(mpm_request_t *req, void *data)
{
    if (strcmp(mpm_request_path(req), "/restart-me") != 0) {
        th_handler(req, data);
        return;
    }
    char body[16];
    snprintf(body, sizeof body, "%d", mpm_server_restart(mpm_request_server(req), 1));
    mpm_response_send(req, body, strlen(body));
}

/* A handler in a child asks for a graceful restart: the master hears it
 * over the child's control channel and starts generation 1, the asking
 * request's response still goes out, and the new generation serves. */
static void restart_asked_from_a_child(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    assert_int_equal(th_server_set(s, "OneProcess", "Off"), 0);
    assert_int_equal(th_server_set(s, "HandleSignals", "Off"), 0);
    mpm_config_set_handler(th_server_config(s), restart_from_handler, s);
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    assert_int_equal(stats(s).generation, 0);
    tc_response_t r;
    th_request(s->port, "GET /restart-me HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "0");
    tc_response_free(&r);
    assert_true(th_wait_for(generation_one, s, RUN_BOUND_MS));
    get_hello(s->port);
    assert_int_equal(th_server_stop(s, 1), 0);
    assert_int_equal(s->run_rc, 0);
}

#define MASTER_CASE(f) TH_CASE(f, "prefork"), TH_CASE(f, "worker"), TH_CASE(f, "event")

int main(void)
{
    const struct CMUnitTest tests[] = {
        MASTER_CASE(master_serves_restarts_and_stops),
        MASTER_CASE(failing_child_init_stops_master),
        MASTER_CASE(signal_handlers_are_restored_and_not_shared),
        MASTER_CASE(child_hooks_run_in_every_child),
        MASTER_CASE(max_request_workers_is_a_ceiling_logged_once),
        MASTER_CASE(restart_asked_from_a_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
