/* Stopping a multi-process server: the master's stop signals, the grace
 * period before SIGKILL, a graceful stop's in-flight requests and refused
 * newcomers, and children that never outlive their master. Mostly the real
 * mpmserve binary; the death-signal case runs a harness server in a helper
 * process, whose handler can tell when its child was told to stop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "pool.h"
#include "proc.h"

#define MAX_KIDS TPOOL_MAX_KIDS
/* How long a master may take to exit by itself after a stop signal with
 * idle children: TERM is immediate, WINCH takes the 1 s drain window. */
#define EXIT_BOUND_MS 10000

/* Processes a case parked outside the fixture (a stopped child, a helper
 * master) that teardown must kill if the case failed before it could. A
 * case that ends well has seen them gone and forgets them (forget_strays),
 * so that teardown never signals a pid the system has since reused. */
static pid_t strays[MAX_KIDS];
static int nstrays;

static void keep_stray(pid_t pid)
{
    if (nstrays < MAX_KIDS)
        strays[nstrays++] = pid;
}

static void forget_strays(void)
{
    nstrays = 0;
}

static int stop_teardown(void **state)
{
    for (int i = 0; i < nstrays; i++) {
        if (kill(strays[i], SIGKILL) == 0 || errno != ESRCH)
            (void)waitpid(strays[i], NULL, 0); /* ours only if re-parented */
    }
    nstrays = 0;
    return th_teardown(state);
}

static int reaped(pid_t pid)
{
    return kill(pid, 0) != 0 && errno == ESRCH;
}

static int pid_gone_cond(void *arg)
{
    return tp_gone(*(pid_t *)arg);
}

/* The master must leave by itself, promptly, with status 0, and take every
 * child with it. */
static void stop_signal_stops_master(th_fixture_t *fx, int sig)
{
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int n = tpool_children(p->pid, kids, MAX_KIDS);
    assert_true(n >= 2);
    assert_true(tpool_get_ok(p->port, "/"));
    int64_t t0 = tc_now_ms();
    assert_int_equal(kill(p->pid, sig), 0);
    if (th_process_stop(p, 0, EXIT_BOUND_MS) != 0)
        fail_msg("the master did not exit within %d ms of signal %d", EXIT_BOUND_MS, sig);
    int64_t took = tc_now_ms() - t0;
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
        fail_msg("master exit status 0x%x after signal %d, expected exit 0", p->status, sig);
    assert_true(tp_wait_all_gone(kids, n, 10000));
    fprintf(stderr, "signal %d: master exited after %lld ms\n", sig, (long long)took);
}

static void sigterm_stops_master_and_children(void **state)
{
    stop_signal_stops_master(*state, SIGTERM);
}

static void sigint_stops_master_and_children(void **state)
{
    stop_signal_stops_master(*state, SIGINT);
}

static void sigwinch_stops_master_and_children(void **state)
{
    stop_signal_stops_master(*state, SIGWINCH);
}

static void killed_master_leaves_no_child(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int n = tpool_children(p->pid, kids, MAX_KIDS);
    th_process_stop(p, SIGKILL, 20000);
    for (int i = 0; i < n; i++) {
        /* Orphans of a killed master come to us (we are a subreaper). */
        waitpid(kids[i], NULL, 0);
        assert_true(th_wait_for(pid_gone_cond, &kids[i], 20000));
    }
}

/* The /status request itself is one busy unit; the sleeping one is another. */
static int sleep_in_handler(void *arg)
{
    return tpool_status_number(*(int *)arg, "busy_workers") >= 2;
}

/* A request longer than the 3 s a hard stop allows: only a graceful stop
 * lets it finish. */
static void graceful_stop_finishes_in_flight_request(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int nkids = tpool_children(p->pid, kids, MAX_KIDS);
    tc_conn_t *c = th_connect(fx, p->port);
    th_send(c, "GET /sleep?ms=4000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(sleep_in_handler, &p->port, 20000));
    assert_int_equal(kill(p->pid, SIGWINCH), 0);
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "slept 4000 ms\n");
    /* Keep-alive is decided when the head goes out, after the stop began
     * (DESIGN §4): the client learns the connection ends with this answer. */
    if (!tc_header_has_token(&r, "Connection", "close"))
        fail_msg("the request in flight during a graceful stop was answered without "
                 "Connection: close");
    tc_response_free(&r);
    th_expect_closed(c);
    assert_int_equal(th_process_stop(p, 0, 20000), 0);
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    assert_true(tp_wait_all_gone(kids, nkids, 10000));
}

/* A hard stop does not wait out a long handler: mpmserve's /sleep polls
 * mpm_request_server_stopping_now(), which a child's SIGTERM (the library's
 * handler) sets, so every child exits by itself well before the 3 s grace
 * would end in SIGKILL. */
static void hard_stop_cuts_long_request_short(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start_logged(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int nkids = tpool_children(p->pid, kids, MAX_KIDS);
    tc_conn_t *c = th_connect(fx, p->port);
    th_send(c, "GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(sleep_in_handler, &p->port, 20000));
    int64_t t0 = tc_now_ms();
    if (th_process_stop(p, SIGTERM, EXIT_BOUND_MS) != 0)
        fail_msg("the master did not exit within %d ms of SIGTERM", EXIT_BOUND_MS);
    int64_t took = tc_now_ms() - t0;
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    assert_non_null(p->log);
    if (strstr(p->log, "exited on signal"))
        fail_msg("a child had to be killed: the sleeping handler ignored the hard stop");
    /* Under the 3 s after which a child is killed (which the log check
     * above tells apart), with room for a loaded machine. */
    if (took >= 2900)
        fail_msg("the master took %lld ms to stop with a request in flight", (long long)took);
    assert_true(tp_wait_all_gone(kids, nkids, 10000));
}

/* The same in one-process mode, where mpmserve's own signal handler turns
 * SIGTERM into mpm_server_stop(srv, 0): the process leaves at once, not
 * after the minute the handler wants. */
static void hard_stop_cuts_long_request_short_one_process(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *const args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0",
                                "--one-process", NULL};
    th_process_t *p = th_start_mpmserve(fx, args);
    tc_conn_t *c = th_connect(fx, p->port);
    th_send(c, "GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_false(tc_readable(c, 300)); /* it is sleeping, not answered */
    int64_t t0 = tc_now_ms();
    if (th_process_stop(p, SIGTERM, EXIT_BOUND_MS) != 0)
        fail_msg("mpmserve did not exit within %d ms of SIGTERM", EXIT_BOUND_MS);
    int64_t took = tc_now_ms() - t0;
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    if (took >= 5000) /* against the handler's minute */
        fail_msg("mpmserve took %lld ms to stop with a request in flight", (long long)took);
}

/* One process, GracefulShutdownTimeout=1: past the bound a graceful stop
 * is a hard one, which the sleeping handler sees (nothing else can end a
 * handler in a single-threaded process), so mpmserve leaves soon after. */
static void graceful_bound_cuts_long_request_short_one_process(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *const args[] = {"--mpm",         fx->strategy, "--listen", "127.0.0.1:0",
                                "--one-process", "--set",      "GracefulShutdownTimeout=1",
                                NULL};
    th_process_t *p = th_start_mpmserve(fx, args);
    tc_conn_t *c = th_connect(fx, p->port);
    th_send(c, "GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_false(tc_readable(c, 300)); /* it is sleeping, not answered */
    int64_t t0 = tc_now_ms();
    if (th_process_stop(p, SIGWINCH, EXIT_BOUND_MS) != 0)
        fail_msg("mpmserve did not exit within %d ms of SIGWINCH", EXIT_BOUND_MS);
    int64_t took = tc_now_ms() - t0;
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    if (took < 700 || took >= 4000)
        fail_msg("mpmserve stopped %lld ms after SIGWINCH; the bound is 1 s", (long long)took);
}

static int has_ok(void *arg)
{
    return atomic_load(&((tpool_load_t *)arg)->ok) >= 20;
}

/* Graceful stop under a steady stream of keep-alive requests: every request
 * sent is answered (the last ones with Connection: close). */
static void graceful_stop_under_load_loses_nothing(void **state)
{
    th_fixture_t *fx = *state;
    /* Kept-alive clients only: a client that opens a new connection just as
     * the server stops can always lose that race (refused or reset). */
    static const char *const extra[] = {"--set", "MaxKeepAliveRequests=0", NULL};
    th_process_t *p = tpool_start(fx, extra);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    tpool_load_t l;
    tpool_load_start(&l, p->port, "/", 4, 1, 1);
    assert_true(th_wait_for(has_ok, &l, 20000));
    assert_int_equal(kill(p->pid, SIGWINCH), 0);
    assert_int_equal(th_process_stop(p, 0, 30000), 0);
    tpool_load_stop(&l);
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    assert_int_equal(atomic_load(&l.failed), 0);
}

/* One newcomer during a graceful stop: refused (1), or answered / closed
 * promptly (0); fails the case if it hangs. */
static int newcomer(int port)
{
    tc_conn_t c;
    int rc = tc_connect(&c, port, 2000);
    if (rc == TC_RESET)
        return 1; /* ECONNREFUSED */
    if (rc != TC_OK)
        fail_msg("connect during a graceful stop: %s", tc_result_name(rc));
    tc_response_t r;
    memset(&r, 0, sizeof(r));
    rc = tc_send_str(&c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if (rc == TC_OK)
        rc = tc_read_response(&c, &r, 0, 2000);
    tc_response_free(&r);
    tc_close(&c);
    if (rc == TC_TIMEOUT)
        fail_msg("a new client was accepted into a backlog nobody serves (no answer in 2 s)");
    return 0;
}

/* While one child still finishes a long request, the drain window passes:
 * from then on new clients are refused, not queued. */
static void graceful_stop_refuses_new_clients(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    tc_conn_t *c = th_connect(fx, p->port);
    th_send(c, "GET /sleep?ms=8000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(sleep_in_handler, &p->port, 20000));
    assert_int_equal(kill(p->pid, SIGWINCH), 0);
    int64_t deadline = tc_now_ms() + 6000; /* DrainWindow is 1 s */
    int refused = 0;
    while (!refused && tc_now_ms() < deadline) {
        refused = newcomer(p->port);
        struct timespec pace = {0, 50 * 1000000L};
        nanosleep(&pace, NULL);
    }
    if (!refused)
        fail_msg("new clients were still not refused 6 s after a graceful stop began");
    assert_false(tp_gone(p->pid)); /* the long request still runs */
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    assert_int_equal(th_process_stop(p, 0, 20000), 0);
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
}

/* A child that does not stop on SIGTERM (here: stopped with SIGSTOP, so the
 * TERM stays pending) is killed 3 s later, and the master then exits. */
static void stuck_child_is_killed_after_grace(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int n = tpool_children(p->pid, kids, MAX_KIDS);
    assert_true(n >= 2);
    keep_stray(kids[0]);
    assert_int_equal(kill(kids[0], SIGSTOP), 0);
    int64_t t0 = tc_now_ms();
    assert_int_equal(kill(p->pid, SIGTERM), 0);
    if (th_process_stop(p, 0, EXIT_BOUND_MS) != 0)
        fail_msg("the master did not exit within %d ms: the stuck child was not killed",
                 EXIT_BOUND_MS);
    int64_t took = tc_now_ms() - t0;
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    if (took < 2500)
        fail_msg("the stuck child was killed after %lld ms; the grace period is 3 s",
                 (long long)took);
    assert_true(tp_wait_all_gone(kids, n, 5000));
    forget_strays();
}

/* ---- the death signal, with a harness server in a helper process ---- */

static int nap_started(void *arg)
{
    return atomic_load(&((th_server_t *)arg)->shared->naps_started) >= 1;
}

/* Forks a helper that runs s as a master (OneProcess Off) and reports its
 * port; returns the helper's pid. */
static pid_t start_helper_master(th_server_t *s, int *port)
{
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t helper = fork();
    assert_true(helper >= 0);
    if (helper == 0) {
        close(pfd[0]);
        if (th_server_start(s) != 0)
            _exit(1);
        (void)!write(pfd[1], &s->port, sizeof(s->port));
        for (;;)
            pause();
    }
    close(pfd[1]);
    keep_stray(helper);
    struct pollfd pw = {.fd = pfd[0], .events = POLLIN};
    int ok = poll(&pw, 1, 20000) == 1 && read(pfd[0], port, sizeof(*port)) == sizeof(*port);
    close(pfd[0]);
    if (!ok)
        fail_msg("the helper master did not start");
    return helper;
}

/* A child busy in a handler cannot watch its control channel; when the
 * master is SIGKILLed, PR_SET_PDEATHSIG tells it at once (the handler here
 * sees the stop and ends its 30 s nap), and it exits promptly. */
static void busy_child_dies_with_killed_master(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    char name[32];
    snprintf(name, sizeof(name), "%s-mp", fx->strategy);
    th_server_t *s = th_server_create(name); /* its shared page is made before the fork */
    assert_non_null(s);
    fx->servers[fx->nservers++] = s; /* freed by teardown; never started here */
    int port = 0;
    pid_t helper = start_helper_master(s, &port);
    tc_conn_t *c = th_connect(fx, port);
    pid_t child = tpool_conn_pid(c);
    pid_t kids[MAX_KIDS];
    int n = tp_children_of(helper, kids, MAX_KIDS);
    for (int i = 0; i < n; i++)
        keep_stray(kids[i]);
    th_send(c, "GET /nap?ms=30000&hard=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(nap_started, s, 10000));
    assert_int_equal(kill(helper, SIGKILL), 0);
    assert_int_equal(waitpid(helper, NULL, 0), helper);
    int64_t t0 = tc_now_ms();
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0 && tc_now_ms() - t0 < 5000) {
        struct timespec nap = {0, 10 * 1000000L};
        nanosleep(&nap, NULL);
    }
    if (!reaped(child))
        fail_msg("the busy child outlived its killed master by 5 s");
    assert_int_equal(atomic_load(&s->shared->naps_cut), 1);
    for (int i = 0; i < n; i++)
        if (kids[i] != child)
            (void)waitpid(kids[i], NULL, 0);
    forget_strays();
}

#define STOP_CASE(f, strategy)                                                                     \
    {#f "[" strategy "]", f, th_setup, stop_teardown, (void *)strategy}
#define POOL_CASE(f) STOP_CASE(f, "prefork"), STOP_CASE(f, "worker")

int main(void)
{
    th_require_mpmserve();
    /* A killed master's children are re-parented to us, so we can reap them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        POOL_CASE(sigterm_stops_master_and_children),
        POOL_CASE(sigint_stops_master_and_children),
        POOL_CASE(sigwinch_stops_master_and_children),
        POOL_CASE(killed_master_leaves_no_child),
        POOL_CASE(graceful_stop_finishes_in_flight_request),
        POOL_CASE(hard_stop_cuts_long_request_short),
        POOL_CASE(hard_stop_cuts_long_request_short_one_process),
        POOL_CASE(graceful_bound_cuts_long_request_short_one_process),
        POOL_CASE(graceful_stop_under_load_loses_nothing),
        POOL_CASE(graceful_stop_refuses_new_clients),
        POOL_CASE(stuck_child_is_killed_after_grace),
        POOL_CASE(busy_child_dies_with_killed_master),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
