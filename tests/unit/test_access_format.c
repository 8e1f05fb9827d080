/* mpm_access_log_format(): httpd's Common and Combined Log Formats, byte for
 * byte, with the escaping that keeps a client from forging a line. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <mpmlib/mpmlib.h>

/* 2026-12-01 22:25:52 UTC */
#define T_US (INT64_C(1796163952) * 1000000 + 123456)

static mpm_access_entry_t entry(void)
{
    return (mpm_access_entry_t){
        .size = sizeof(mpm_access_entry_t),
        .remote_addr = "127.0.0.1",
        .method = "GET",
        .target = "/a?b=c",
        .version = 11,
        .status = 200,
        .bytes_sent = 13,
        .remote_port = 40000,
        .time_us = T_US,
    };
}

static int utc(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static void common_line(void **state)
{
    (void)state;
    mpm_access_entry_t e = entry();
    char buf[512];
    int n = mpm_access_log_format(&e, MPM_ACCESS_COMMON, buf, sizeof buf);
    assert_string_equal(buf, "127.0.0.1 - - [01/Dec/2026:22:25:52 +0000] \"GET /a?b=c HTTP/1.1\" 200 13\n");
    assert_int_equal(n, (int)strlen(buf));
}

static void combined_line_and_dashes(void **state)
{
    (void)state;
    mpm_access_entry_t e = entry();
    e.version = 10;
    e.status = 304;
    e.bytes_sent = 0;
    e.user_agent = "curl/7.88";
    char buf[512];
    assert_true(mpm_access_log_format(&e, MPM_ACCESS_COMBINED, buf, sizeof buf) > 0);
    assert_string_equal(buf, "127.0.0.1 - - [01/Dec/2026:22:25:52 +0000] \"GET /a?b=c HTTP/1.0\" "
                             "304 - \"-\" \"curl/7.88\"\n");
}

static void rejected_request_has_no_line(void **state)
{
    (void)state;
    mpm_access_entry_t e = entry();
    e.method = NULL;
    e.target = NULL;
    e.status = 400;
    e.bytes_sent = 0;
    char buf[512];
    assert_true(mpm_access_log_format(&e, MPM_ACCESS_COMMON, buf, sizeof buf) > 0);
    assert_string_equal(buf, "127.0.0.1 - - [01/Dec/2026:22:25:52 +0000] \"-\" 400 -\n");
}

static void client_data_is_escaped(void **state)
{
    (void)state;
    mpm_access_entry_t e = entry();
    e.target = "/x\"y\\z";
    e.referer = "http://r/\n127.0.0.1 - - forged";
    e.user_agent = "ua\x01\xc3\xa9";
    char buf[512];
    assert_true(mpm_access_log_format(&e, MPM_ACCESS_COMBINED, buf, sizeof buf) > 0);
    assert_string_equal(buf, "127.0.0.1 - - [01/Dec/2026:22:25:52 +0000] \"GET /x\\\"y\\\\z HTTP/1.1\" "
                             "200 13 \"http://r/\\x0a127.0.0.1 - - forged\" \"ua\\x01\\xc3\\xa9\"\n");
    assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1); /* one line */
}

static void small_buffer_and_bad_arguments(void **state)
{
    (void)state;
    mpm_access_entry_t e = entry();
    char buf[512];
    int full = mpm_access_log_format(&e, MPM_ACCESS_COMBINED, buf, sizeof buf);
    assert_true(full > 0);
    assert_int_equal(mpm_access_log_format(&e, MPM_ACCESS_COMBINED, buf, (size_t)full), MPM_ERANGE);
    assert_int_equal(mpm_access_log_format(&e, MPM_ACCESS_COMBINED, buf, (size_t)full + 1), full);
    assert_int_equal(mpm_access_log_format(NULL, MPM_ACCESS_COMMON, buf, sizeof buf), MPM_EINVAL);
    assert_int_equal(mpm_access_log_format(&e, MPM_ACCESS_COMMON, NULL, 10), MPM_EINVAL);
    assert_int_equal(mpm_access_log_format(&e, MPM_ACCESS_COMMON, buf, 0), MPM_EINVAL);
    assert_int_equal(mpm_access_log_format(&e, (mpm_access_format_t)7, buf, sizeof buf), MPM_EINVAL);
}

/* An entry from an older library (no time, no Referer/User-Agent fields)
 * still formats: now as the time, "-" for the missing fields. */
static void older_entry_size(void **state)
{
    (void)state;
    mpm_access_entry_t e = entry();
    e.size = offsetof(mpm_access_entry_t, remote_port);
    e.referer = "must-not-be-read";
    char buf[512];
    assert_true(mpm_access_log_format(&e, MPM_ACCESS_COMBINED, buf, sizeof buf) > 0);
    assert_null(strstr(buf, "must-not-be-read"));
    assert_null(strstr(buf, "01/Dec/2026:22:25:52"));
    assert_non_null(strstr(buf, "\"-\" \"-\"\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(common_line),
        cmocka_unit_test(combined_line_and_dashes),
        cmocka_unit_test(rejected_request_has_no_line),
        cmocka_unit_test(client_data_is_escaped),
        cmocka_unit_test(small_buffer_and_bad_arguments),
        cmocka_unit_test(older_entry_size),
    };
    return cmocka_run_group_tests(tests, utc, NULL);
}
