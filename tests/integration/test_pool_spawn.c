/* How the master sizes its pool: the spawn rate that doubles while short of
 * spares, the pause after a child exits sick, and the MaxRequestWorkers and
 * ServerLimit ceilings, each on its own. The master runs in this process (a
 * harness "-mp" server, HandleSignals Off); a child init hook records, in a
 * page shared with the children, when each child started, and can make the
 * later ones fail. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_STARTS 256
/* Children started less than this apart belong to one maintenance pass
 * (passes are 1 s apart; the forks of one pass are back to back). */
#define SAME_PASS_MS 400

typedef struct starts {
    atomic_int n;              /* child init hook calls so far */
    atomic_int fail_from;      /* calls with this index or later fail (0: none) */
    atomic_llong at_ms[MAX_STARTS];
    th_server_t *server;
} starts_t;

static starts_t *starts;

/* Runs in each new child, before it serves. */
static int record_start(void *data)
{
    th_server_t *s = data;
    pthread_mutex_init(&s->lock, NULL); /* see the harness's multi-process notes */
    int i = atomic_fetch_add(&starts->n, 1);
    if (i < MAX_STARTS)
        atomic_store(&starts->at_ms[i], (long long)tc_now_ms());
    int from = atomic_load(&starts->fail_from);
    return from > 0 && i >= from ? -1 : 0;
}

static int spawn_setup(void **state)
{
    starts = mmap(NULL, sizeof(*starts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (starts == MAP_FAILED)
        return -1;
    return th_setup(state);
}

static int spawn_teardown(void **state)
{
    int rc = th_teardown(state);
    munmap(starts, sizeof(*starts));
    starts = NULL;
    return rc;
}

static int prefork(const th_fixture_t *fx)
{
    return strncmp(fx->strategy, "prefork", 7) == 0;
}

/* A master with the given directives and the recording hook, started. */
static th_server_t *start_master(th_fixture_t *fx, const char *const *dirs)
{
    th_server_t *s = th_new_server(fx);
    for (; *dirs; dirs += 2)
        if (th_server_set(s, dirs[0], dirs[1]) != 0)
            fail_msg("%s", s->errmsg);
    assert_int_equal(mpm_config_set_child_hooks(th_server_config(s), record_start, NULL, s), 0);
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

typedef struct at_least {
    atomic_int *counter;
    int n;
} at_least_t;

static int reached(void *arg)
{
    at_least_t *a = arg;
    return atomic_load(a->counter) >= a->n;
}

/* Sizes of the passes among starts [from, to): runs of starts less than
 * SAME_PASS_MS apart. Returns the number of passes. */
static int passes(int from, int to, int *sizes, int64_t *first_ms, int max)
{
    int n = 0;
    long long prev = 0;
    for (int i = from; i < to && i < MAX_STARTS; i++) {
        long long t = atomic_load(&starts->at_ms[i]);
        if (n == 0 || t - prev >= SAME_PASS_MS) {
            if (n == max)
                break;
            first_ms[n] = t;
            sizes[n++] = 0;
        }
        sizes[n - 1]++;
        prev = t;
    }
    return n;
}

/* Short of spare units, the master forks 1, 2, 4 ... children per pass (one
 * pass a second): the start-up child, then passes of 1, 2 and 4. */
static void spawn_rate_doubles_each_pass(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const pre[] = {"StartServers", "1", "MinSpareServers", "30",
                                      "MaxSpareServers", "60", NULL};
    static const char *const thr[] = {"StartServers", "1", "ThreadsPerChild", "2",
                                      "MinSpareThreads", "60", "MaxSpareThreads", "120",
                                      "ServerLimit", "64", NULL};
    start_master(fx, prefork(fx) ? pre : thr);
    at_least_t eight = {&starts->n, 8};
    assert_true(th_wait_for(reached, &eight, 10000));
    int sizes[4];
    int64_t first[4];
    int n = passes(0, 8, sizes, first, 4);
    fprintf(stderr, "children per pass: %d %d %d %d\n", sizes[0], n > 1 ? sizes[1] : 0,
            n > 2 ? sizes[2] : 0, n > 3 ? sizes[3] : 0);
    assert_int_equal(n, 4);
    assert_int_equal(sizes[0], 1);
    assert_int_equal(sizes[1], 1);
    assert_int_equal(sizes[2], 2);
    assert_int_equal(sizes[3], 4);
}

static int idle_at_least_two(void *arg)
{
    return stats(arg).idle_workers >= 2;
}

/* A child that exits sick (here: its init hook fails after the generation
 * has started) pauses spawning for a second: the pass right after is
 * skipped, so the next failing children come about 2 s later, not 1 s. */
static void sick_exit_pauses_spawning(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const pre[] = {"StartServers", "2", "MinSpareServers", "4",
                                      "MaxSpareServers", "8", NULL};
    static const char *const thr[] = {"StartServers", "2", "ThreadsPerChild", "1",
                                      "MinSpareThreads", "4", "MaxSpareThreads", "8", NULL};
    th_server_t *s = start_master(fx, prefork(fx) ? pre : thr);
    /* The first children are up (and seen by the next pass) before any fails. */
    assert_true(th_wait_for(idle_at_least_two, s, 10000));
    int healthy = atomic_load(&starts->n);
    atomic_store(&starts->fail_from, healthy);
    /* Two passes' worth of failing children. */
    int sizes[2];
    int64_t first[2];
    int64_t deadline = tc_now_ms() + 10000;
    int n = 0;
    while (tc_now_ms() < deadline) {
        n = passes(healthy, atomic_load(&starts->n), sizes, first, 2);
        if (n == 2)
            break;
        struct timespec nap = {0, 20 * 1000000L};
        nanosleep(&nap, NULL);
    }
    assert_int_equal(n, 2);
    int64_t gap = first[1] - first[0];
    fprintf(stderr, "failing children: %d at %lld, then %d after %lld ms\n", sizes[0], (long long)first[0], sizes[1],
            (long long)gap);
    if (gap < 1500)
        fail_msg("spawning went on %lld ms after a sick exit; it should pause for 1 s",
                 (long long)gap);
    assert_false(th_server_wait_run(s, 0)); /* the server still runs */
    th_expect_serving(s->port);
}

static int limit_logged(void *arg)
{
    return th_server_log_contains(arg, "reached MaxRequestWorkers");
}

/* Under constant pressure (MinSpare above what the ceiling allows) the pool
 * reaches two children, says so once, and never goes beyond. */
static void ceiling_holds(th_fixture_t *fx, const char *key)
{
    static const char *const pre[] = {"StartServers", "1", "MinSpareServers", "4",
                                      "MaxSpareServers", "8", NULL, NULL, NULL};
    static const char *const thr[] = {"StartServers", "1", "ThreadsPerChild", "2",
                                      "MinSpareThreads", "8", "MaxSpareThreads", "16",
                                      NULL, NULL, NULL};
    const char *dirs[16];
    size_t n = 0;
    for (const char *const *d = prefork(fx) ? pre : thr; *d; d++)
        dirs[n++] = *d;
    dirs[n++] = key;
    /* Two children: 2 processes, or 2 x 2 threads. */
    dirs[n++] = strcmp(key, "ServerLimit") == 0 || prefork(fx) ? "2" : "4";
    dirs[n] = NULL;
    th_server_t *s = start_master(fx, dirs);
    int64_t deadline = tc_now_ms() + 8000;
    int logged_at = 0;
    while (tc_now_ms() < deadline) {
        unsigned procs = stats(s).processes;
        if (procs > 2)
            fail_msg("%u children with %s allowing 2", procs, key);
        if (!logged_at && limit_logged(s))
            deadline = tc_now_ms() + 2200; /* two more passes at the ceiling */
        logged_at |= limit_logged(s);
        struct timespec nap = {0, 20 * 1000000L};
        nanosleep(&nap, NULL);
    }
    if (!logged_at)
        fail_msg("the ceiling set by %s was never reached", key);
    assert_int_equal(stats(s).processes, 2);
    assert_true(atomic_load(&starts->n) <= 2 + 1); /* a replacement at most */
    th_expect_serving(s->port);
}

static void max_request_workers_alone_is_a_ceiling(void **state)
{
    ceiling_holds(*state, "MaxRequestWorkers");
}

static void server_limit_alone_is_a_ceiling(void **state)
{
    ceiling_holds(*state, "ServerLimit");
}

#define SPAWN_CASE(f, strategy)                                                                    \
    {#f "[" strategy "]", f, spawn_setup, spawn_teardown, (void *)strategy}
#define MASTER_CASE(f) SPAWN_CASE(f, "prefork-mp"), SPAWN_CASE(f, "worker-mp")

int main(void)
{
    const struct CMUnitTest tests[] = {
        MASTER_CASE(spawn_rate_doubles_each_pass),
        MASTER_CASE(sick_exit_pauses_spawning),
        MASTER_CASE(max_request_workers_alone_is_a_ceiling),
        MASTER_CASE(server_limit_alone_is_a_ceiling),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
