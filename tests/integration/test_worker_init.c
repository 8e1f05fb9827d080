/* A multi-process worker child whose thread init hooks fail must count as a
 * child that could not start, however long the hooks take: the child is
 * READY (the master's proof that the generation can start) only once every
 * thread's hook returned 0, so run() returns MPM_ECHILD instead of the
 * master replacing failing children for ever. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* Longer than the master's 1 s census, so a child wrongly READY while its
 * hooks still run is seen so; short enough to keep the case quick. */
#define HOOK_DELAY_MS 1500
/* Start-up, the delay, the failure and the stop, on a loaded box. */
#define RUN_BOUND_MS 15000

static int slow_failing_thread_init(void *data)
{
    (void)data;
    struct timespec ts = {.tv_sec = HOOK_DELAY_MS / 1000,
                          .tv_nsec = (HOOK_DELAY_MS % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return -1;
}

static void slow_failing_thread_init_fails_run(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_new_server(fx);
    assert_true(s->multi_process);
    mpm_config_set_thread_hooks(th_server_config(s), slow_failing_thread_init, NULL, NULL);
    if (th_server_start(s) != 0) /* bound first: only the hooks can fail run */
        fail_msg("%s", s->errmsg);
    int64_t t0 = tc_now_ms();
    if (!th_server_wait_run(s, RUN_BOUND_MS))
        fail_msg("run() still runs %d ms after every thread init hook failed", RUN_BOUND_MS);
    assert_int_equal(s->run_rc, MPM_ECHILD);
    assert_true(tc_now_ms() - t0 >= HOOK_DELAY_MS / 2); /* the hooks did run, slowly */
    assert_true(th_server_log_contains(s, "child init failed"));
}

/* Thread init hooks of every thread but the first wait for this pipe to
 * close (bounded, so a failing case cannot hang). */
static int hold_pipe[2] = {-1, -1};

static int held_thread_init(mpm_hook_ctx_t *ctx, void *data)
{
    (void)data;
    if (ctx->thread_index != 0) {
        struct pollfd p = {.fd = hold_pipe[0], .events = POLLIN};
        (void)poll(&p, 1, RUN_BOUND_MS);
    }
    return 0;
}

static mpm_stats_t stats_of(th_server_t *s)
{
    mpm_stats_t st = {.size = sizeof st};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    return st;
}

static int one_idle(void *arg)
{
    return stats_of(arg).idle_workers >= 1;
}

static int all_idle(void *arg)
{
    return stats_of(arg).idle_workers == 4;
}

/* Threads still in their init hooks serve nothing: the scoreboard shows
 * them as neither busy nor idle (a status page read during a slow start
 * once showed 3 busy threads that had never served). */
static void starting_threads_are_not_busy(void **state)
{
    th_fixture_t *fx = *state;
    assert_int_equal(pipe2(hold_pipe, O_CLOEXEC), 0);
    th_server_t *s = th_new_server(fx);
    assert_int_equal(th_server_set(s, "ThreadsPerChild", "4"), 0);
    mpm_config_set_thread_hooks_ex(th_server_config(s), held_thread_init, NULL, NULL);
    if (th_server_start(s) != 0)
        fail_msg("%s", s->errmsg);
    int up = th_wait_for(one_idle, s, RUN_BOUND_MS);
    mpm_stats_t held = stats_of(s);
    close(hold_pipe[1]);
    int all = th_wait_for(all_idle, s, RUN_BOUND_MS);
    mpm_stats_t after = stats_of(s);
    close(hold_pipe[0]);
    if (!up)
        fail_msg("the thread without a held hook never showed idle");
    if (held.busy_workers != 0 || held.idle_workers != 1)
        fail_msg("while 3 threads start: busy_workers %u, idle_workers %u (expected 0 and 1)",
                 held.busy_workers, held.idle_workers);
    if (!all || after.busy_workers != 0)
        fail_msg("after the start: busy_workers %u, idle_workers %u (expected 0 and 4)",
                 after.busy_workers, after.idle_workers);
    th_expect_serving(s->port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(slow_failing_thread_init_fails_run, th_setup,
                                                 th_teardown, (void *)"worker-mp"),
        TH_CASE(starting_threads_are_not_busy, "worker"),
        TH_CASE(starting_threads_are_not_busy, "event"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
