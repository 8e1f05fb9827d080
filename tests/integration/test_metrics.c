/* Metrics: mpm_server_metrics() renders the scoreboard as Prometheus text,
 * with the numbers mpm_server_stats() gives, and mpmserve's GET /metrics
 * passes `promtool check metrics` (skipped, visibly, without promtool). */
#include <inttypes.h>
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
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
