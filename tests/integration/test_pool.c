/* The master and its process pool, under every multi-process strategy: the
 * real mpmserve binary with its master, children and scoreboard. Children
 * are found through /proc (the processes whose parent is the master), which
 * is what an operator would look at too. Stopping is in test_pool_stop.c. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "pool.h"
#include "proc.h"

#define MAX_KIDS TPOOL_MAX_KIDS

static int pid_gone_cond(void *arg)
{
    return tp_gone(*(pid_t *)arg);
}

/* Gone and reaped (by its parent): no zombie left either. */
static int reaped_cond(void *arg)
{
    return kill(*(pid_t *)arg, 0) != 0 && errno == ESRCH;
}

static int has_ok(void *arg)
{
    return atomic_load(&((tpool_load_t *)arg)->ok) >= 20;
}

static void pool_grows_under_load_and_shrinks_after(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    tpool_load_t l;
    tpool_load_start(&l, p->port, "/sleep?ms=1000", 20, 0, 0);
    /* 20 clients each holding a unit for a second: the master must add
     * children, faster each pass (1, 2, 4 ...), up to what 20 need. */
    int grew = tpool_wait_children(p->pid, 6, MAX_KIDS, 30000);
    tpool_load_stop(&l);
    assert_true(grew);
    assert_int_equal(atomic_load(&l.failed), 0);
    /* Idle again: one child retired per pass until the idle units are within
     * the MaxSpare bound (4 processes, or 12 threads = 3 children). */
    assert_true(tpool_wait_children(p->pid, 1, strcmp(fx->strategy, "prefork") ? 3 : 4, 60000));
    assert_true(tpool_get_ok(p->port, "/"));
}

static void killed_child_is_replaced(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    assert_true(tpool_children(p->pid, kids, MAX_KIDS) >= 1);
    assert_int_equal(kill(kids[0], SIGKILL), 0);
    assert_true(tpool_get_ok(p->port, "/")); /* served by the other child meanwhile */
    assert_true(th_wait_for(pid_gone_cond, &kids[0], 20000));
    assert_true(tpool_wait_children(p->pid, 2, MAX_KIDS, 20000));
    assert_true(tpool_get_ok(p->port, "/"));
}

/* A kept-alive connection served by one child, and a second connection
 * served by another child, which then crashes: the first connection and its
 * child must not notice. Which child serves a new connection is up to the
 * kernel (a worker child with idle threads takes more), so connections are
 * opened until one lands elsewhere; those that land on the keeper's child
 * stay open, holding its threads, until it has none idle and stops
 * accepting (ThreadsPerChild is 4 here). */
static void crash_loses_only_its_child(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    tc_conn_t *keep = th_hold_connection(fx, p->port);
    pid_t keeper = tpool_conn_pid(keep);
    tc_conn_t *other = NULL;
    pid_t crasher = 0;
    while (!other && fx->nconns < TH_MAX_CONNS) {
        tc_conn_t *c = th_connect(fx, p->port);
        crasher = tpool_conn_pid(c);
        if (crasher != keeper)
            other = c;
    }
    assert_non_null(other);
    th_send(other, "GET /crash HTTP/1.1\r\nHost: t\r\n\r\n");
    tc_response_t r;
    int rc = tc_read_response(other, &r, 0, 20000);
    tc_response_free(&r);
    assert_true(rc == TC_CLOSED || rc == TC_RESET);
    /* Once the master has reaped the crashed child (and done whatever it
     * does about it) and refilled the pool, the kept-alive connection still
     * works, served by the same child. */
    assert_true(th_wait_for(reaped_cond, &crasher, 20000));
    assert_true(tpool_wait_children(p->pid, 2, MAX_KIDS, 20000));
    assert_int_equal(tpool_conn_pid(keep), keeper);
    th_send(keep, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(keep, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    assert_false(tp_gone(keeper));
    assert_true(tpool_get_ok(p->port, "/"));
    assert_true(tpool_wait_children(p->pid, 2, MAX_KIDS, 20000));
}

static int pid_in(pid_t pid, const pid_t *list, int n)
{
    for (int i = 0; i < n; i++)
        if (list[i] == pid)
            return 1;
    return 0;
}

typedef struct pids {
    const pid_t *list;
    int n;
} pids_t;

static int all_gone(void *arg)
{
    pids_t *p = arg;
    for (int i = 0; i < p->n; i++)
        if (!tp_gone(p->list[i]))
            return 0;
    return 1;
}

typedef struct load_for {
    tpool_load_t *l;
    int64_t until_ms;
} load_for_t;

static int load_ran(void *arg)
{
    load_for_t *lf = arg;
    return atomic_load(&lf->l->failed) > 0 || tc_now_ms() >= lf->until_ms;
}

/* Graceful restart under steady keep-alive load: the load runs across the
 * whole drain window and until every process of the old generation has
 * exited; no request fails, and the new generation's processes serve. */
static void graceful_restart_under_load_loses_nothing(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    tpool_load_t l;
    tpool_load_start(&l, p->port, "/", 4, 1, 0);
    assert_true(th_wait_for(has_ok, &l, 20000));
    pid_t old[MAX_KIDS];
    int nold = tpool_children(p->pid, old, MAX_KIDS);
    assert_true(nold >= 2);
    assert_int_equal(kill(p->pid, SIGUSR1), 0);
    int before = atomic_load(&l.ok);
    /* Twice the drain window (DrainWindow 1 s) of load, at least. */
    load_for_t lf = {&l, tc_now_ms() + 2000};
    th_wait_for(load_ran, &lf, 5000);
    pids_t old_set = {old, nold};
    int old_exited = th_wait_for(all_gone, &old_set, 20000);
    int during = atomic_load(&l.ok) - before;
    tpool_load_stop(&l);
    assert_int_equal(atomic_load(&l.failed), 0);
    if (!old_exited)
        fail_msg("an old-generation child is still alive after the graceful restart");
    assert_true(during > 100);
    assert_true(tpool_status_number(p->port, "generation") >= 1);
    /* Whoever serves now is a new child of the same master. */
    for (int i = 0; i < 6; i++) {
        char *body = tpool_get_body(p->port, "/pid");
        assert_non_null(body);
        pid_t pid = (pid_t)atoi(body);
        free(body);
        assert_false(pid_in(pid, old, nold));
        assert_int_equal(tp_parent_of(pid), p->pid);
    }
}

static void max_connections_per_child_rotates_pids(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {"--set", "MaxConnectionsPerChild=10", NULL};
    th_process_t *p = tpool_start(fx, extra);
    pid_t seen[64];
    int nseen = 0, counts[64] = {0};
    for (int i = 0; i < 45; i++) {
        char *body = tpool_get_body(p->port, "/pid");
        assert_non_null(body);
        pid_t pid = (pid_t)atoi(body);
        free(body);
        int j = 0;
        while (j < nseen && seen[j] != pid)
            j++;
        if (j == nseen && nseen < 64)
            seen[nseen++] = pid;
        counts[j]++;
        assert_true(counts[j] <= 10);
    }
    assert_true(nseen >= 3);
}

static void hard_restart_replaces_every_child(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = tpool_start(fx, NULL);
    assert_true(tpool_wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int n = tpool_children(p->pid, kids, MAX_KIDS);
    assert_int_equal(kill(p->pid, SIGHUP), 0);
    for (int i = 0; i < n; i++)
        assert_true(th_wait_for(pid_gone_cond, &kids[i], 20000));
    assert_true(tpool_wait_children(p->pid, 2, MAX_KIDS, 20000));
    assert_true(tpool_get_ok(p->port, "/"));
    assert_true(tpool_status_number(p->port, "generation") >= 1);
}

#define POOL_CASE(f) TH_CASE(f, "prefork"), TH_CASE(f, "worker")

int main(void)
{
    th_require_mpmserve();
    /* A killed master's children are re-parented to us, so we can reap them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        POOL_CASE(pool_grows_under_load_and_shrinks_after),
        POOL_CASE(killed_child_is_replaced),
        POOL_CASE(crash_loses_only_its_child),
        POOL_CASE(graceful_restart_under_load_loses_nothing),
        POOL_CASE(max_connections_per_child_rotates_pids),
        POOL_CASE(hard_restart_replaces_every_child),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
