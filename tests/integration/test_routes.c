/* mpmserve's route table as DESIGN §6 gives it, and the method handling
 * around it (RFC 9110 §9.3.7, §15.5.6): each route answers the methods it
 * lists, anything else gets 405 with that list in Allow, OPTIONS gets 200 with
 * the list and no content, "OPTIONS *" speaks for the whole server, an
 * unknown path is 404 whatever the method, and the --test-routes paths do
 * not exist without that flag. Over real sockets, one mpmserve per strategy
 * (the dispatch is the program's, not a strategy's, so one pass each). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define READ_ONLY "GET, HEAD, OPTIONS"

typedef struct route_row {
    const char *request; /* request line and body; Host and close are added */
    int status;
    const char *allow;   /* the Allow field wanted, or NULL: none */
    const char *body;    /* the body wanted, or NULL: any */
} route_row_t;

static const route_row_t rows[] = {
    {"GET / HTTP/1.1\r\n", 200, NULL, "Hello, World!"},
    {"GET /hello.txt HTTP/1.1\r\n", 200, NULL, "Hello, World!"},
    {"HEAD / HTTP/1.1\r\n", 200, NULL, ""},
    {"POST / HTTP/1.1\r\nContent-Length: 2\r\n", 405, READ_ONLY, NULL},
    {"OPTIONS / HTTP/1.1\r\n", 200, READ_ONLY, ""},
    {"OPTIONS * HTTP/1.1\r\n", 200, "GET, HEAD, POST, OPTIONS", ""},
    {"DELETE /status HTTP/1.1\r\n", 405, READ_ONLY, NULL},
    {"PUT /stream HTTP/1.1\r\nContent-Length: 0\r\n", 405, READ_ONLY, NULL},
    {"OPTIONS /metrics HTTP/1.1\r\n", 200, READ_ONLY, ""},
    {"OPTIONS /files/a.txt HTTP/1.1\r\n", 200, READ_ONLY, ""},
    {"POST /files HTTP/1.1\r\nContent-Length: 0\r\n", 405, READ_ONLY, NULL},
    {"GET /filesx HTTP/1.1\r\n", 404, NULL, NULL},
    {"GET /nope HTTP/1.1\r\n", 404, NULL, "Not Found\n"},
    {"OPTIONS /nope HTTP/1.1\r\n", 404, NULL, NULL},
    {"PUT /echo HTTP/1.1\r\nContent-Length: 3\r\n", 200, NULL, "abc"},
    {"GET /stream?n=3 HTTP/1.1\r\n", 200, NULL, "chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n"},
    {"GET /stream?n=x HTTP/1.1\r\n", 400, NULL, NULL},
    {"GET /stream?n=0 HTTP/1.1\r\n", 200, NULL, ""},
    {"HEAD /stream?n=3 HTTP/1.1\r\n", 200, NULL, ""},
    {"GET /sleep HTTP/1.1\r\n", 400, NULL, NULL},
    {"GET /sleep?ms=1 HTTP/1.1\r\n", 200, NULL, "slept 1 ms\n"},
    {"GET /crash HTTP/1.1\r\n", 404, NULL, NULL}, /* no --test-routes */
    {"GET /pid HTTP/1.1\r\n", 404, NULL, NULL},
};

/* Sends row (a PUT/POST with a Content-Length gets that many 'a'.. bytes)
 * on a fresh connection and checks the answer. */
static void check_row(int port, const route_row_t *row)
{
    const char *cl = strstr(row->request, "Content-Length: ");
    int body_len = cl ? atoi(cl + 16) : 0;
    char raw[512];
    snprintf(raw, sizeof raw, "%sHost: t\r\nConnection: close\r\n\r\n%.*s", row->request, body_len,
             "abcdefgh");
    tc_conn_t c;
    assert_int_equal(tc_connect(&c, port, TC_DEFAULT_TIMEOUT_MS), TC_OK);
    assert_int_equal(tc_send_str(&c, raw), TC_OK);
    tc_response_t r;
    int head = strncmp(row->request, "HEAD ", 5) == 0;
    int rc = tc_read_response(&c, &r, head, TC_DEFAULT_TIMEOUT_MS);
    tc_close(&c);
    if (rc != TC_OK)
        fail_msg("%s: %s", row->request, tc_result_name(rc));
    const char *allow = tc_header(&r, "Allow");
    const char *len = tc_header(&r, "Content-Length");
    if (r.status != row->status)
        fail_msg("%s: %d, expected %d", row->request, r.status, row->status);
    if (row->allow ? !allow || strcmp(allow, row->allow) != 0 : allow != NULL)
        fail_msg("%s: Allow %s, expected %s", row->request, allow ? allow : "(none)",
                 row->allow ? row->allow : "(none)");
    if (row->body && strcmp(r.body, row->body) != 0)
        fail_msg("%s: body \"%s\", expected \"%s\"", row->request, r.body, row->body);
    /* A 200 to OPTIONS without content still says so (RFC 9110 §9.3.7). */
    if (strncmp(row->request, "OPTIONS ", 8) == 0 && row->status == 200 && (!len || strcmp(len, "0")))
        fail_msg("%s: Content-Length %s, expected 0", row->request, len ? len : "(none)");
    tc_response_free(&r);
}

static void routes_answer_their_methods(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[] = {"--mpm", fx->strategy, "--listen", "127.0.0.1:0", NULL};
    int port = th_start_mpmserve(fx, args)->port;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_row(port, &rows[i]);
}

/* With --test-routes the test paths exist, and /crash takes GET only. */
static void test_routes_exist_with_the_flag(void **state)
{
    th_fixture_t *fx = *state;
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *args[] = {"--mpm",   fx->strategy, "--listen", "127.0.0.1:0", "--test-routes",
                          NULL};
    int port = th_start_mpmserve(fx, args)->port;
    static const route_row_t test_rows[] = {
        {"POST /crash HTTP/1.1\r\nContent-Length: 0\r\n", 405, "GET", NULL},
        {"OPTIONS /crash HTTP/1.1\r\n", 405, "GET", NULL},
        {"GET /hang?ms=1 HTTP/1.1\r\n", 200, NULL, "hung\n"},
    };
    for (size_t i = 0; i < sizeof test_rows / sizeof test_rows[0]; i++)
        check_row(port, &test_rows[i]);
    tc_response_t r;
    assert_int_equal(tc_exchange(port, "GET /pid HTTP/1.1\r\nHost: t\r\n\r\n", &r,
                                 TC_DEFAULT_TIMEOUT_MS),
                     TC_OK);
    assert_int_equal(r.status, 200);
    assert_true(atoi(r.body) > 0);
    tc_response_free(&r);
}

int main(void)
{
    th_require_mpmserve();
    const struct CMUnitTest tests[] = {
        TH_MATRIX(routes_answer_their_methods),
        TH_CASE(test_routes_exist_with_the_flag, "worker"),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
