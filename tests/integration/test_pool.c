/* The master and its process pool, under every multi-process strategy: the
 * real mpmserve binary with its master, children, signals and scoreboard.
 * Children are found through /proc (the processes whose parent is the
 * master), which is what an operator would look at too. */
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
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "proc.h"

#define MAX_KIDS 256

/* ---- processes ---- */

/* The parent of a live process; -1 for one that is gone or a zombie. */
static pid_t parent_of(pid_t pid)
{
    tp_stat_t st;
    return tp_stat(pid, &st) == 0 && st.state != 'Z' ? st.ppid : -1;
}

/* Live (non-zombie) children of master; returns how many. */
static int children_of(pid_t master, pid_t *kids, int max)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid > 0 && parent_of(pid) == master && n < max)
            kids[n++] = pid;
    }
    if (d)
        closedir(d);
    return n;
}

static int count_children(pid_t master)
{
    pid_t kids[MAX_KIDS];
    return children_of(master, kids, MAX_KIDS);
}

/* Whether pid is gone (or a zombie nobody has reaped yet). */
static int process_gone(pid_t pid)
{
    return kill(pid, 0) != 0 || parent_of(pid) < 0;
}

typedef struct kids_cond {
    pid_t master;
    int at_least, at_most;
} kids_cond_t;

static int kids_within(void *arg)
{
    kids_cond_t *k = arg;
    int n = count_children(k->master);
    return n >= k->at_least && n <= k->at_most;
}

static int wait_children(pid_t master, int at_least, int at_most, int timeout_ms)
{
    kids_cond_t k = {master, at_least, at_most};
    return th_wait_for(kids_within, &k, timeout_ms);
}

static int pid_gone_cond(void *arg)
{
    return process_gone(*(pid_t *)arg);
}

/* ---- starting mpmserve per strategy ---- */

/* Small pools so that growth and shrinking show within seconds. */
static th_process_t *start_pool(th_fixture_t *fx, const char *const *extra)
{
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[48] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", "--test-routes"};
    size_t n = 5;
    int threaded = strcmp(fx->strategy, "prefork") != 0;
    static const char *const prefork[] = {"--set", "StartServers=2", "--set", "MinSpareServers=2",
                                          "--set", "MaxSpareServers=4", "--set",
                                          "MaxRequestWorkers=40", NULL};
    static const char *const threads[] = {
        "--set", "StartServers=2",        "--set", "ThreadsPerChild=4", "--set",
        "MinSpareThreads=8", "--set",     "MaxSpareThreads=12", "--set", "ServerLimit=12",
        "--set", "MaxRequestWorkers=48",  NULL};
    for (const char *const *a = threaded ? threads : prefork; *a; a++)
        args[n++] = *a;
    for (size_t i = 0; extra && extra[i] && n < 47; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return th_start_mpmserve(fx, args);
}

static int get_ok(int port, const char *target)
{
    char raw[256];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    tc_response_t r;
    int rc = tc_exchange(port, raw, &r, 20000);
    int ok = rc == TC_OK && r.status == 200;
    tc_response_free(&r);
    return ok;
}

/* The body of GET target (caller frees), or NULL. */
static char *get_body(int port, const char *target)
{
    char raw[256];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    tc_response_t r;
    int rc = tc_exchange(port, raw, &r, 20000);
    char *body = rc == TC_OK && r.status == 200 ? strdup(r.body) : NULL;
    tc_response_free(&r);
    return body;
}

static long status_number(int port, const char *key)
{
    char *body = get_body(port, "/status");
    long v = -1;
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    char *p = body ? strstr(body, pat) : NULL;
    if (p)
        v = strtol(p + strlen(pat), NULL, 10);
    free(body);
    return v;
}

/* ---- load ---- */

typedef struct load {
    int port;
    const char *target;
    int keepalive;
    int until_close; /* stop at the server's Connection: close or refusal */
    atomic_int stop;
    atomic_int ok, failed;
    pthread_t threads[32];
    int nthreads;
} load_t;

/* One keep-alive client: requests back to back, a new connection whenever
 * the server says Connection: close. A request that was sent and got no
 * complete 200 is a failure. */
static void *load_client(void *arg)
{
    load_t *l = arg;
    char raw[256];
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", l->target,
             l->keepalive ? "" : "Connection: close\r\n");
    tc_conn_t c = {.fd = -1};
    while (!atomic_load(&l->stop)) {
        if (c.fd < 0 && tc_connect(&c, l->port, 20000) != TC_OK) {
            if (!l->until_close) /* a stopping server may refuse */
                atomic_fetch_add(&l->failed, 1);
            break;
        }
        tc_response_t r;
        int rc = tc_send_str(&c, raw);
        if (rc == TC_OK)
            rc = tc_read_response(&c, &r, 0, 30000);
        int good = rc == TC_OK && r.status == 200;
        atomic_fetch_add(good ? &l->ok : &l->failed, 1);
        if (!good)
            fprintf(stderr, "load: request failed: %s, status %d, after %d ok\n",
                    tc_result_name(rc), rc == TC_OK ? r.status : 0, atomic_load(&l->ok));
        int closing = rc == TC_OK && tc_header_has_token(&r, "Connection", "close");
        if (rc != TC_OK || !l->keepalive || closing)
            tc_close(&c);
        tc_response_free(&r);
        if (closing && l->until_close)
            break;
    }
    tc_close(&c);
    return NULL;
}

static void load_start(load_t *l, int port, const char *target, int nthreads, int keepalive,
                       int until_close)
{
    memset(l, 0, sizeof(*l));
    l->port = port;
    l->target = target;
    l->keepalive = keepalive;
    l->until_close = until_close;
    for (l->nthreads = 0; l->nthreads < nthreads; l->nthreads++)
        assert_int_equal(pthread_create(&l->threads[l->nthreads], NULL, load_client, l), 0);
}

static void load_stop(load_t *l)
{
    atomic_store(&l->stop, 1);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
}

/* ---- cases ---- */

static int has_ok(void *arg)
{
    return atomic_load(&((load_t *)arg)->ok) >= 20;
}

static void pool_grows_under_load_and_shrinks_after(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = start_pool(fx, NULL);
    assert_true(wait_children(p->pid, 2, 2, 20000));
    load_t l;
    load_start(&l, p->port, "/sleep?ms=1000", 20, 0, 0);
    /* 20 clients each holding a unit for a second: the master must add
     * children, faster each pass (1, 2, 4 ...), up to what 20 need. */
    int grew = wait_children(p->pid, 6, MAX_KIDS, 30000);
    load_stop(&l);
    assert_true(grew);
    assert_int_equal(atomic_load(&l.failed), 0);
    /* Idle again: one child retired per pass until the idle units are within
     * the MaxSpare bound (4 processes, or 12 threads = 3 children). */
    assert_true(wait_children(p->pid, 1, strcmp(fx->strategy, "prefork") ? 3 : 4, 60000));
    assert_true(get_ok(p->port, "/"));
}

static void killed_child_is_replaced(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = start_pool(fx, NULL);
    assert_true(wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    assert_true(children_of(p->pid, kids, MAX_KIDS) >= 1);
    assert_int_equal(kill(kids[0], SIGKILL), 0);
    assert_true(get_ok(p->port, "/")); /* served by the other child meanwhile */
    assert_true(th_wait_for(pid_gone_cond, &kids[0], 20000));
    assert_true(wait_children(p->pid, 2, MAX_KIDS, 20000));
    assert_true(get_ok(p->port, "/"));
}

static void crash_loses_only_its_child(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = start_pool(fx, NULL);
    assert_true(wait_children(p->pid, 2, 2, 20000));
    int prefork = strcmp(fx->strategy, "prefork") == 0;
    /* A kept-alive connection: under prefork its child is busy holding it,
     * so the crash happens in another child and must not touch it. */
    tc_conn_t *keep = th_hold_connection(fx, p->port);
    tc_response_t r;

    tc_response_t cr;
    int rc = tc_exchange(p->port, "GET /crash HTTP/1.1\r\nHost: t\r\n\r\n", &cr, 20000);
    tc_response_free(&cr);
    assert_true(rc == TC_CLOSED || rc == TC_RESET);
    if (prefork) {
        th_send(keep, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        th_read(keep, &r, 0);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
    }
    th_disconnect(keep);
    assert_true(get_ok(p->port, "/"));
    assert_true(wait_children(p->pid, 2, MAX_KIDS, 20000));
}

static void graceful_restart_under_load_loses_nothing(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = start_pool(fx, NULL);
    assert_true(wait_children(p->pid, 2, 2, 20000));
    load_t l;
    load_start(&l, p->port, "/", 4, 1, 0);
    assert_true(th_wait_for(has_ok, &l, 20000));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kill(p->pid, SIGUSR1), 0);
        int before = atomic_load(&l.ok);
        /* Let traffic flow across the switch before the next one. */
        while (atomic_load(&l.ok) < before + 200 && !atomic_load(&l.failed))
            usleep(10000);
    }
    load_stop(&l);
    assert_int_equal(atomic_load(&l.failed), 0);
    assert_true(atomic_load(&l.ok) > 400);
    assert_true(status_number(p->port, "generation") >= 2);
}

/* The /status request itself is one busy unit; the sleeping one is another. */
static int sleep_in_handler(void *arg)
{
    return status_number(*(int *)arg, "busy_workers") >= 2;
}

static void graceful_stop_finishes_in_flight_request(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = start_pool(fx, NULL);
    assert_true(wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int nkids = children_of(p->pid, kids, MAX_KIDS);
    tc_conn_t *c = th_connect(fx, p->port);
    th_send(c, "GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(th_wait_for(sleep_in_handler, &p->port, 20000));
    assert_int_equal(kill(p->pid, SIGWINCH), 0);
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    /* The idle connection is closed after the drain window; then the master
     * exits by itself. */
    th_expect_closed(c);
    assert_int_equal(th_process_stop(p, 0, 20000), 0);
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    for (int i = 0; i < nkids; i++)
        assert_true(th_wait_for(pid_gone_cond, &kids[i], 10000));
}

/* Graceful stop under a steady stream of keep-alive requests: every request
 * sent is answered (the last ones with Connection: close); new connections
 * are refused, not accepted into a backlog nobody serves. */
static void graceful_stop_under_load_loses_nothing(void **state)
{
    th_fixture_t *fx = *state;
    /* Kept-alive clients only: a client that opens a new connection just as
     * the server stops can always lose that race (refused or reset). */
    static const char *const extra[] = {"--set", "MaxKeepAliveRequests=0", NULL};
    th_process_t *p = start_pool(fx, extra);
    assert_true(wait_children(p->pid, 2, 2, 20000));
    load_t l;
    load_start(&l, p->port, "/", 4, 1, 1);
    assert_true(th_wait_for(has_ok, &l, 20000));
    assert_int_equal(kill(p->pid, SIGWINCH), 0);
    assert_int_equal(th_process_stop(p, 0, 30000), 0);
    load_stop(&l);
    assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
    assert_int_equal(atomic_load(&l.failed), 0);
}

static void max_connections_per_child_rotates_pids(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const extra[] = {"--set", "MaxConnectionsPerChild=10", NULL};
    th_process_t *p = start_pool(fx, extra);
    pid_t seen[64];
    int nseen = 0, counts[64] = {0};
    for (int i = 0; i < 45; i++) {
        char *body = get_body(p->port, "/pid");
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

/* Starts a pool, records its children, stops the master with sig and checks
 * that no child outlives it. */
static void stop_leaves_no_child(th_fixture_t *fx, int sig)
{
    th_process_t *p = start_pool(fx, NULL);
    assert_true(wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int n = children_of(p->pid, kids, MAX_KIDS);
    assert_true(n >= 2);
    assert_true(get_ok(p->port, "/"));
    th_process_stop(p, sig, 20000);
    for (int i = 0; i < n; i++) {
        /* Orphans of a killed master come to us (we are a subreaper). */
        if (sig == SIGKILL)
            waitpid(kids[i], NULL, 0);
        assert_true(th_wait_for(pid_gone_cond, &kids[i], 20000));
    }
}

static void sigterm_leaves_no_child(void **state)
{
    stop_leaves_no_child(*state, SIGTERM);
}

static void sigint_leaves_no_child(void **state)
{
    stop_leaves_no_child(*state, SIGINT);
}

static void sigwinch_leaves_no_child(void **state)
{
    stop_leaves_no_child(*state, SIGWINCH);
}

static void killed_master_leaves_no_child(void **state)
{
    stop_leaves_no_child(*state, SIGKILL);
}

static void hard_restart_replaces_every_child(void **state)
{
    th_fixture_t *fx = *state;
    th_process_t *p = start_pool(fx, NULL);
    assert_true(wait_children(p->pid, 2, 2, 20000));
    pid_t kids[MAX_KIDS];
    int n = children_of(p->pid, kids, MAX_KIDS);
    assert_int_equal(kill(p->pid, SIGHUP), 0);
    for (int i = 0; i < n; i++)
        assert_true(th_wait_for(pid_gone_cond, &kids[i], 20000));
    assert_true(wait_children(p->pid, 2, MAX_KIDS, 20000));
    assert_true(get_ok(p->port, "/"));
    assert_true(status_number(p->port, "generation") >= 1);
}

#define POOL_CASE(f) TH_CASE(f, "prefork"), TH_CASE(f, "worker")

int main(void)
{
    /* A killed master's children are re-parented to us, so we can reap them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        POOL_CASE(pool_grows_under_load_and_shrinks_after),
        POOL_CASE(killed_child_is_replaced),
        POOL_CASE(crash_loses_only_its_child),
        POOL_CASE(graceful_restart_under_load_loses_nothing),
        POOL_CASE(graceful_stop_finishes_in_flight_request),
        POOL_CASE(graceful_stop_under_load_loses_nothing),
        POOL_CASE(max_connections_per_child_rotates_pids),
        POOL_CASE(sigterm_leaves_no_child),
        POOL_CASE(sigint_leaves_no_child),
        POOL_CASE(sigwinch_leaves_no_child),
        POOL_CASE(killed_master_leaves_no_child),
        POOL_CASE(hard_restart_replaces_every_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
