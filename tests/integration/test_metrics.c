/* Metrics: mpm_server_metrics() renders the scoreboard as Prometheus text,
 * with the numbers mpm_server_stats() gives, and mpmserve's GET /metrics
 * passes `promtool check metrics` (skipped, visibly, without promtool). The
 * event loop's connection counts reach stats, child rows, metrics and
 * mpmserve's GET /status. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"

#include "core/internal.h"

static const char *const loop_states[] = {"parked", "reading", "writing", "lingering"};
#define NLOOP_STATES (sizeof loop_states / sizeof loop_states[0])

/* The value of the sample line that starts with `series ` in text; fails the
 * case when the series is missing. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    }
    fail_msg("series %s missing from:\n%s", series, text);
    return -1;
}

static void get_ok(int port, const char *target)
{
    char raw[256];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target);
    tc_response_t r;
    th_request(port, raw, &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

/* A request is counted once its response is complete, which can be just
 * after the client has read it. */
static int three_requests_counted(void *arg)
{
    mpm_stats_t st = {.size = sizeof st};
    return mpm_server_stats(arg, &st) == 0 && st.requests_served >= 3;
}

static void metrics_match_stats(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    for (int i = 0; i < 3; i++)
        get_ok(s->port, "/");
    assert_true(th_wait_for(three_requests_counted, s->srv, 10000));
    char buf[4096];
    int n = mpm_server_metrics(s->srv, buf, sizeof buf, NULL);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    mpm_stats_t st = {.size = sizeof st};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    assert_true(sample(buf, "mpm_requests_total") >= 3);
    assert_true(sample(buf, "mpm_requests_total") <= (double)st.requests_served);
    assert_true(sample(buf, "mpm_connections_total") >= 3);
    assert_int_equal(sample(buf, "mpm_processes"), 1);
    assert_int_equal(sample(buf, "mpm_generation"), st.generation);
    double busy = sample(buf, "mpm_workers{state=\"busy\"}");
    double idle = sample(buf, "mpm_workers{state=\"idle\"}");
    assert_true(busy + idle >= 1);
    /* No listener loop holds a connection outside event; the requests were
     * answered and closed. */
    for (size_t i = 0; i < NLOOP_STATES; i++) {
        char series[64];
        snprintf(series, sizeof series, "mpm_connections{state=\"%s\"}", loop_states[i]);
        double v = sample(buf, series);
        if (strcmp(fx->strategy, "event") != 0)
            assert_int_equal(v, 0);
    }
    assert_non_null(strstr(buf, "# TYPE mpm_connections gauge\n"));
    assert_int_equal(sample(buf, "mpm_parked_connections"),
                     sample(buf, "mpm_connections{state=\"parked\"}"));
    char info[96];
    snprintf(info, sizeof info, "mpm_info{strategy=\"%s\",version=\"%s\"}", fx->strategy,
             mpm_version_string());
    assert_int_equal(sample(buf, info), 1);
    assert_non_null(strstr(buf, "# TYPE mpm_requests_total counter\n"));
}

static void metrics_too_small_says_size(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    char small[16];
    size_t need = 0;
    assert_int_equal(mpm_server_metrics(s->srv, small, sizeof small, &need), MPM_ERANGE);
    assert_true(need > sizeof small);
    assert_int_equal(mpm_server_metrics(s->srv, NULL, 0, &need), MPM_ERANGE);
    char *buf = malloc(need + 64); /* room for a counter that grew meanwhile */
    assert_non_null(buf);
    int n = mpm_server_metrics(s->srv, buf, need + 64, NULL);
    assert_true(n > 0 && (size_t)n < need + 64);
    free(buf);
    assert_int_equal(mpm_server_metrics(NULL, small, sizeof small, NULL), MPM_EINVAL);
    assert_int_equal(mpm_server_metrics(s->srv, NULL, 8, NULL), MPM_EINVAL);
}

/* The first slot that holds a live process. */
static unsigned live_slot(mpm_server_t *srv)
{
    mpm_stats_t st = {.size = sizeof st};
    assert_int_equal(mpm_server_stats(srv, &st), 0);
    for (unsigned i = 0; i < st.slots; i++) {
        mpm_child_stats_t c = {.size = sizeof c};
        if (mpm_server_child_stats(srv, i, &c) == 0)
            return i;
    }
    fail_msg("no live child");
    return 0;
}

static void set_loop_counts(mpm__sb_slot_t *sl, const unsigned v[NLOOP_STATES])
{
    atomic_store(&sl->parked, v[0]);
    atomic_store(&sl->reading, v[1]);
    atomic_store(&sl->writing, v[2]);
    atomic_store(&sl->lingering, v[3]);
}

/* The event loop keeps its counts in its child's scoreboard slot. Under
 * prefork and worker, which never write them, the test writes them itself
 * (the scoreboard is shared memory, the same in the master and in every
 * child) and reads them back every way a host can. */
static void loop_counts_reach_stats_and_metrics(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    get_ok(s->port, "/");
    unsigned slot = live_slot(s->srv);
    mpm__sb_slot_t *sl = &s->srv->sb->slot[slot];
    static const unsigned want[NLOOP_STATES] = {2, 3, 5, 7};
    set_loop_counts(sl, want);

    mpm_stats_t st = {.size = sizeof st};
    assert_int_equal(mpm_server_stats(s->srv, &st), 0);
    assert_int_equal(st.parked_connections, 2);
    assert_int_equal(st.reading_connections, 3);
    assert_int_equal(st.writing_connections, 5);
    assert_int_equal(st.lingering_connections, 7);
    mpm_child_stats_t c = {.size = sizeof c};
    assert_int_equal(mpm_server_child_stats(s->srv, slot, &c), 0);
    assert_int_equal(c.parked_connections, 2);
    assert_int_equal(c.reading_connections, 3);
    assert_int_equal(c.writing_connections, 5);
    assert_int_equal(c.lingering_connections, 7);

    char buf[4096];
    assert_true(mpm_server_metrics(s->srv, buf, sizeof buf, NULL) > 0);
    for (size_t i = 0; i < NLOOP_STATES; i++) {
        char series[64];
        snprintf(series, sizeof series, "mpm_connections{state=\"%s\"}", loop_states[i]);
        assert_int_equal(sample(buf, series), want[i]);
    }
    assert_int_equal(sample(buf, "mpm_parked_connections"), 2);
    static const unsigned zero[NLOOP_STATES] = {0, 0, 0, 0};
    set_loop_counts(sl, zero);
}

/* Every occurrence of "key": N in a /status body, at the top level and in
 * each child's row: how many there are, and whether all are 0. */
static int count_json_key(const char *body, const char *key, int *all_zero)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    int n = 0;
    *all_zero = 1;
    for (const char *p = strstr(body, pat); p; p = strstr(p + 1, pat)) {
        char *end;
        long v = strtol(p + strlen(pat), &end, 10);
        if (end == p + strlen(pat))
            fail_msg("%s has no number in:\n%s", key, body);
        *all_zero = *all_zero && v == 0;
        n++;
    }
    return n;
}

static void mpmserve_status_has_loop_counts(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", NULL};
    th_process_t *p = th_start_mpmserve(fx, args);
    tc_response_t r;
    th_request(p->port, "GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    int rows, zero;
    rows = count_json_key(r.body, "slot", &zero);
    assert_true(rows >= 1);
    for (size_t i = 0; i < NLOOP_STATES; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s_connections", loop_states[i]);
        /* Once in the summary, once per child row. */
        assert_int_equal(count_json_key(r.body, key, &zero), rows + 1);
        if (strcmp(fx->strategy, "event") != 0 && !zero)
            fail_msg("%s not 0 under %s:\n%s", key, fx->strategy, r.body);
    }
    tc_response_free(&r);
}

/* Runs promtool check metrics on text; 0 when it accepts it. */
static int promtool_check(const char *promtool, const char *text)
{
    char path[] = "/tmp/mpm-metrics.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s check metrics < %s", promtool, path);
    int rc = system(cmd);
    unlink(path);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void mpmserve_metrics_pass_promtool(void **state)
{
    th_fixture_t *fx = *state;
    const char *promtool = "/usr/bin/promtool";
    if (access(promtool, X_OK) != 0) {
        print_message("promtool not installed (apt-get install prometheus): skipped\n");
        skip();
    }
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", NULL};
    th_process_t *p = th_start_mpmserve(fx, args);
    get_ok(p->port, "/");
    tc_response_t r = {0};
    int64_t deadline = tc_now_ms() + 10000;
    do { /* until the first request is counted (see above) */
        tc_response_free(&r);
        th_request(p->port, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
    } while (sample(r.body, "mpm_requests_total") < 1 && tc_now_ms() < deadline);
    assert_string_equal(tc_header(&r, "Content-Type"), "text/plain; version=0.0.4");
    assert_true(sample(r.body, "mpm_processes") >= 1);
    assert_true(sample(r.body, "mpm_requests_total") >= 1);
    assert_int_equal(promtool_check(promtool, r.body), 0);
    tc_response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX(metrics_match_stats),
        TH_MATRIX(metrics_too_small_says_size),
        TH_MATRIX(mpmserve_metrics_pass_promtool),
        /* Not event: its loop maintains the counts the case writes. */
        TH_CASE(loop_counts_reach_stats_and_metrics, "prefork"),
        TH_CASE(loop_counts_reach_stats_and_metrics, "worker"),
        TH_CASE(loop_counts_reach_stats_and_metrics, "prefork-mp"),
        TH_CASE(loop_counts_reach_stats_and_metrics, "worker-mp"),
        TH_MATRIX(mpmserve_status_has_loop_counts),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
