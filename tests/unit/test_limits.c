/* Limits at the edges of their ranges: products and sums of the pool
 * directives (ServerLimit x ThreadsPerChild can pass 2^32), the scoreboard's
 * size, the master's file descriptor needs against RLIMIT_NOFILE, and the
 * strategy names only strategy.c knows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "core/config.h"
#include "core/internal.h"
#include "core/master.h"

static void noop_handler(mpm_request_t *req, void *data)
{
    (void)req;
    (void)data;
}

static mpm_config_t *config(const char *mpm, const char *const *kv)
{
    mpm_config_t *cfg = NULL;
    assert_int_equal(mpm_config_new(&cfg), 0);
    assert_int_equal(mpm_config_set(cfg, "Listen", "127.0.0.1:0"), 0);
    assert_int_equal(mpm_config_set(cfg, "MPM", mpm), 0);
    for (size_t i = 0; kv && kv[i]; i += 2)
        if (mpm_config_set(cfg, kv[i], kv[i + 1]) != 0)
            fail_msg("%s=%s: %s", kv[i], kv[i + 1], mpm_config_errmsg(cfg));
    mpm_config_set_handler(cfg, noop_handler, NULL);
    return cfg;
}

/* Runs the generic and the strategy's checks; returns the strategy's
 * verdict (0 or MPM_ECONFIG), the reason in err. */
static int check(const mpm_config_t *cfg, const mpm__strategy_t **st, char *err, size_t len)
{
    err[0] = '\0';
    int rc = mpm__settings_check(&cfg->s, err, len);
    if (rc < 0)
        return rc;
    *st = mpm__strategy_find(cfg->s.mpm, err, len);
    assert_non_null(*st);
    return (*st)->check(&cfg->s, err, len);
}

/* 65536 x 65536 is 2^32: in 32 bits it is 0, and a valid MaxRequestWorkers
 * was rejected as exceeding it. */
static void thread_capacity_past_32_bits_is_valid(void **state)
{
    (void)state;
    static const char *const kv[] = {"ServerLimit",     "65536",      "ThreadLimit", "65536",
                                     "ThreadsPerChild", "65536",      "StartServers", "1",
                                     "MaxRequestWorkers", "2000000000", NULL};
    mpm_config_t *cfg = config("worker", kv);
    const mpm__strategy_t *st;
    char err[256];
    if (check(cfg, &st, err, sizeof(err)) != 0)
        fail_msg("rejected: %s", err);
    mpm__pool_limits_t lim;
    st->pool_limits(&cfg->s, &lim);
    assert_int_equal(lim.units_per_child, 65536);
    assert_int_equal(lim.server_limit, 65536);
    assert_int_equal(lim.max_children, 2000000000u / 65536u);
    assert_int_equal(lim.start_children, 1);
    mpm_config_free(cfg);
}

/* The largest values every directive accepts: nothing wraps. */
static void largest_values_do_not_wrap(void **state)
{
    (void)state;
    static const char *const kv[] = {"ServerLimit",       "200000",     "ThreadLimit",     "100000",
                                     "ThreadsPerChild",   "100000",     "MinSpareThreads", "2147483647",
                                     "MaxSpareThreads",   "2147483647", "MaxRequestWorkers",
                                     "2147483647",        NULL};
    mpm_config_t *cfg = config("worker", kv);
    const mpm__strategy_t *st;
    char err[256];
    if (check(cfg, &st, err, sizeof(err)) != 0)
        fail_msg("rejected: %s", err);
    mpm__pool_limits_t lim;
    st->pool_limits(&cfg->s, &lim);
    assert_int_equal(lim.max_children, 2147483647u / 100000u);
    /* MaxSpareThreads is raised to MinSpareThreads + ThreadsPerChild. */
    assert_true(lim.max_spare_units == 2147483647u + 100000u);
    assert_true(lim.max_spare_units >= lim.min_spare_units);
    mpm_config_free(cfg);
}

/* The check that the product guards still holds. */
static void max_request_workers_above_capacity_is_rejected(void **state)
{
    (void)state;
    static const char *const kv[] = {"ServerLimit", "2", "ThreadsPerChild", "2", "StartServers",
                                     "1", "MaxRequestWorkers", "5", NULL};
    mpm_config_t *cfg = config("worker", kv);
    const mpm__strategy_t *st;
    char err[256];
    assert_int_equal(check(cfg, &st, err, sizeof(err)), MPM_ECONFIG);
    assert_non_null(strstr(err, "MaxRequestWorkers 5 exceeds ServerLimit 2 x ThreadsPerChild 2"));
    mpm_config_free(cfg);
}

/* slots x units x entry size overflows even 64 bits here: the scoreboard
 * must refuse, not map a wrapped (tiny) size and write past it. */
static void scoreboard_size_overflow_is_refused(void **state)
{
    (void)state;
    errno = 0;
    assert_null(mpm__sb_create(UINT_MAX, UINT_MAX));
    assert_int_equal(errno, ENOMEM);
    mpm__scoreboard_t *sb = mpm__sb_create(3, 5);
    assert_non_null(sb);
    mpm__sb_slot_init(sb, 2, 7);
    assert_int_equal(atomic_load(&mpm__sb_worker(sb, 2, 4)->state), MPM__SB_DEAD);
    mpm__sb_destroy(sb);
}

/* Lowers this process's soft RLIMIT_NOFILE for the duration of a check. */
static rlim_t lower_nofile(rlim_t to)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < to)
        skip();
    rl.rlim_cur = to;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return was;
}

static void restore_nofile(rlim_t was)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = was;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void master_fd_needs_are_checked_against_rlimit(void **state)
{
    (void)state;
    static const char *const big[] = {"ServerLimit", "2000", "OneProcess", "Off", NULL};
    static const char *const small[] = {"ServerLimit", "400", "OneProcess", "Off", NULL};
    mpm_config_t *cfg = config("prefork", big);
    mpm_server_t *srv = NULL;
    assert_int_equal(mpm_server_new(cfg, &srv), 0);
    mpm_config_free(cfg);
    rlim_t was = lower_nofile(1024);
    int rc = mpm__master_check_fd_limit(srv);
    restore_nofile(was);
    assert_int_equal(rc, MPM_ECONFIG);
    const char *msg = mpm_server_errmsg(srv);
    if (!strstr(msg, "ServerLimit 2000 needs about 4012 file descriptors; RLIMIT_NOFILE is 1024"))
        fail_msg("message: %s", msg);
    mpm_server_free(srv);

    cfg = config("prefork", small);
    assert_int_equal(mpm_server_new(cfg, &srv), 0);
    mpm_config_free(cfg);
    was = lower_nofile(1024);
    rc = mpm__master_check_fd_limit(srv);
    restore_nofile(was);
    assert_int_equal(rc, 0);
    mpm_server_free(srv);
}

static void strategy_names_come_from_the_table(void **state)
{
    (void)state;
    char list[128];
    mpm__strategy_list(list, sizeof(list));
    assert_string_equal(list, "prefork|worker|event");
    assert_string_equal(mpm__strategy_canonical("Worker"), "worker");
    assert_string_equal(mpm__strategy_canonical("PREFORK"), "prefork");
    assert_string_equal(mpm__strategy_canonical("event"), "event");
    assert_null(mpm__strategy_canonical("threaded"));
    mpm__strategy_list(list, 8); /* truncated, still terminated */
    assert_true(strlen(list) < 8);
    mpm_config_t *cfg = NULL;
    assert_int_equal(mpm_config_new(&cfg), 0);
    assert_int_equal(mpm_config_set(cfg, "MPM", "WORKER"), 0);
    assert_string_equal(cfg->s.mpm, "worker");
    assert_int_equal(mpm_config_set(cfg, "MPM", "threaded"), MPM_ECONFIG);
    assert_non_null(strstr(mpm_config_errmsg(cfg), "prefork|worker|event"));
    mpm_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thread_capacity_past_32_bits_is_valid),
        cmocka_unit_test(largest_values_do_not_wrap),
        cmocka_unit_test(max_request_workers_above_capacity_is_rejected),
        cmocka_unit_test(scoreboard_size_overflow_is_refused),
        cmocka_unit_test(master_fd_needs_are_checked_against_rlimit),
        cmocka_unit_test(strategy_names_come_from_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
