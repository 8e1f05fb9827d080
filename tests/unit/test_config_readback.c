/* Reading a configuration back as a host does: the error message describes
 * the last call only, a value's size can be asked for before reading it,
 * MPM reads back the strategy a server will use, and the hook setters with
 * context check their arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <mpmlib/mpmlib.h>

static int setup(void **state)
{
    mpm_config_t *cfg;
    if (mpm_config_new(&cfg) != 0)
        return -1;
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    mpm_config_free(*state);
    return 0;
}

static void errmsg_cleared_by_a_successful_set(void **state)
{
    mpm_config_t *cfg = *state;
    assert_string_equal(mpm_config_errmsg(cfg), "");
    assert_int_equal(mpm_config_set(cfg, "KeepAliveTimeout", "soon"), MPM_ECONFIG);
    assert_true(strstr(mpm_config_errmsg(cfg), "KeepAliveTimeout") != NULL);
    assert_int_equal(mpm_config_set(cfg, "KeepAliveTimeout", "7"), 0);
    assert_string_equal(mpm_config_errmsg(cfg), "");

    assert_int_equal(mpm_config_set(cfg, "NoSuchDirective", "1"), MPM_ECONFIG);
    assert_true(mpm_config_errmsg(cfg)[0] != '\0');
    assert_int_equal(mpm_config_set_int(cfg, "ThreadsPerChild", 4), 0);
    assert_string_equal(mpm_config_errmsg(cfg), "");

    assert_int_equal(mpm_config_add_listen_fd(cfg, -1), MPM_EINVAL);
    assert_true(mpm_config_errmsg(cfg)[0] != '\0');
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(mpm_config_add_listen_fd(cfg, fd), 0);
    assert_string_equal(mpm_config_errmsg(cfg), "");
    close(fd);
}

static void get_tells_the_size_needed(void **state)
{
    mpm_config_t *cfg = *state;
    assert_int_equal(mpm_config_set(cfg, "Listen", "127.0.0.1:8080"), 0);
    assert_int_equal(mpm_config_set(cfg, "Listen", "[::1]:8081"), 0);
    const char *want = "127.0.0.1:8080 [::1]:8081";
    int n = mpm_config_get(cfg, "Listen", NULL, 0);
    assert_int_equal(n, (int)strlen(want));
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    /* One byte short (no room for the NUL) is too small; length + 1 fits. */
    assert_int_equal(mpm_config_get(cfg, "Listen", buf, (size_t)n), MPM_ERANGE);
    assert_int_equal(mpm_config_get(cfg, "Listen", buf, (size_t)n + 1), n);
    assert_string_equal(buf, want);
    free(buf);
    /* The sizing call still checks the key. */
    assert_int_equal(mpm_config_get(cfg, "NoSuchDirective", NULL, 0), MPM_ECONFIG);
    assert_int_equal(mpm_config_get(cfg, "KeepAlive", NULL, 0), (int)strlen("On"));
}

static void on_request(mpm_request_t *req, void *data)
{
    (void)data;
    mpm_response_send(req, "", 0);
}

/* Unset, MPM reads back the strategy a server built from this configuration
 * runs (the best one built), never "". */
static void mpm_reads_back_the_resolved_strategy(void **state)
{
    mpm_config_t *cfg = *state;
    char name[32];
    int n = mpm_config_get(cfg, "MPM", name, sizeof(name));
    assert_true(n > 0);
    assert_int_equal(mpm_config_set(cfg, "Listen", "127.0.0.1:0"), 0);
    assert_int_equal(mpm_config_set_handler(cfg, on_request, NULL), 0);
    mpm_server_t *srv;
    assert_int_equal(mpm_server_new(cfg, &srv), 0);
    mpm_stats_t st = {.size = sizeof(st)};
    assert_int_equal(mpm_server_stats(srv, &st), 0);
    assert_string_equal(name, st.strategy);
    mpm_server_free(srv);

    assert_int_equal(mpm_config_set(cfg, "MPM", "Prefork"), 0);
    assert_int_equal(mpm_config_get(cfg, "MPM", name, sizeof(name)), (int)strlen("prefork"));
    assert_string_equal(name, "prefork");
}

static int init_ex(mpm_hook_ctx_t *ctx, void *data)
{
    (void)ctx;
    (void)data;
    return 0;
}

static void hook_setters_with_context(void **state)
{
    mpm_config_t *cfg = *state;
    assert_int_equal(mpm_config_set_child_hooks_ex(NULL, init_ex, NULL, NULL), MPM_EINVAL);
    assert_int_equal(mpm_config_set_thread_hooks_ex(NULL, init_ex, NULL, NULL), MPM_EINVAL);
    assert_int_equal(mpm_config_set_child_hooks_ex(cfg, init_ex, NULL, NULL), 0);
    assert_int_equal(mpm_config_set_thread_hooks_ex(cfg, NULL, NULL, NULL), 0);
    assert_null(mpm_request_thread_data(NULL));
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(errmsg_cleared_by_a_successful_set),
        CASE(get_tells_the_size_needed),
        CASE(mpm_reads_back_the_resolved_strategy),
        CASE(hook_setters_with_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
