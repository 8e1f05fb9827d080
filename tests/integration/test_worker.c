/* The worker strategy's own promises: a child's threads serve connections
 * at once, and a kept-alive connection holds its thread until it is done. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

#define SLEEPERS 50

typedef struct sleeper {
    int port;
    int status;
} sleeper_t;

static void *sleep_request(void *arg)
{
    sleeper_t *s = arg;
    tc_response_t r;
    int rc = tc_exchange(s->port, "GET /sleep?ms=500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                         &r, 60000);
    s->status = rc == TC_OK ? r.status : rc;
    tc_response_free(&r);
    return NULL;
}

static void fifty_sleeps_take_about_one(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"MPM", "worker", "ThreadsPerChild", "50", "ThreadLimit",
                                       "64", NULL};
    th_server_t *s = th_start_server(fx, dirs);
    pthread_t t[SLEEPERS];
    sleeper_t sl[SLEEPERS];
    int64_t start = tc_now_ms();
    for (int i = 0; i < SLEEPERS; i++) {
        sl[i] = (sleeper_t){.port = s->port};
        assert_int_equal(pthread_create(&t[i], NULL, sleep_request, &sl[i]), 0);
    }
    for (int i = 0; i < SLEEPERS; i++)
        pthread_join(t[i], NULL);
    int64_t took = tc_now_ms() - start;
    for (int i = 0; i < SLEEPERS; i++)
        assert_int_equal(sl[i].status, 200);
    /* One after another would take 25 s; at once, about 0.5 s. The bound is
     * loose for a loaded 2-core machine, and still far from serial. */
    assert_true(took < 8000);
}

static unsigned busy_workers(th_server_t *s)
{
    mpm_stats_t st = {.size = sizeof(st)};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    return st.busy_workers;
}

static int one_busy(void *arg)
{
    return busy_workers(arg) == 1;
}

static int none_busy(void *arg)
{
    return busy_workers(arg) == 0;
}

static void kept_alive_connection_holds_a_thread(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"MPM", "worker", "ThreadsPerChild", "4", "KeepAliveTimeout",
                                       "1", NULL};
    th_server_t *s = th_start_server(fx, dirs);
    assert_true(th_wait_for(none_busy, s, 10000));
    tc_conn_t *c = th_hold_connection(fx, s->port);
    /* Idle, but its thread waits on it: that is worker's trade-off. */
    assert_true(th_wait_for(one_busy, s, 10000));
    int64_t t0 = tc_now_ms();
    th_expect_closed(c);
    int64_t waited = tc_now_ms() - t0;
    assert_true(waited >= 500 && waited < 10000);
    assert_true(th_wait_for(none_busy, s, 10000));
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* An idle server sleeps: its listener and threads wait on events, they do
 * not poll. Over two seconds a spinning thread would burn about two. */
static void idle_server_burns_no_cpu(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    th_expect_serving(s->port);
    double before = cpu_seconds();
    struct timespec two = {.tv_sec = 2};
    nanosleep(&two, NULL);
    assert_true(cpu_seconds() - before < 0.3);
    th_expect_serving(s->port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_CASE(fifty_sleeps_take_about_one, "worker"),
        TH_CASE(kept_alive_connection_holds_a_thread, "worker"),
        TH_MATRIX(idle_server_burns_no_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
