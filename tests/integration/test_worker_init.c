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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(slow_failing_thread_init_fails_run, th_setup,
                                                 th_teardown, (void *)"worker-mp"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
