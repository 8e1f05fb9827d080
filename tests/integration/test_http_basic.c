/* HTTP/1.1 basics over real sockets, for every built strategy: responses,
 * HEAD, keep-alive rules, pipelining, bodiless statuses, the 500 fallback,
 * what the handler sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define GET_ROOT "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
#define GET_ROOT_CLOSE "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

static void assert_hello(const tc_response_t *r)
{
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "Hello, World!");
}

/* A response that leaves the connection open: no "Connection: close". */
static void assert_kept_alive(const tc_response_t *r)
{
    assert_false(tc_header_has_token(r, "Connection", "close"));
}

static void get_root(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_response_t r;
    th_request(s->port, GET_ROOT_CLOSE, &r);
    assert_int_equal(r.version, 11);
    assert_hello(&r);
    assert_non_null(tc_header(&r, "Date"));
    assert_non_null(tc_header(&r, "Content-Length"));
    assert_string_equal(tc_header(&r, "Content-Length"), "13");
    assert_string_equal(tc_header(&r, "Content-Type"), "text/plain");
    tc_response_free(&r);
}

static void head_has_length_but_no_body(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(tc_header(&r, "Content-Length"), "13");
    assert_int_equal(r.body_len, 0);
    tc_response_free(&r);
    /* Had a body been sent, the next response would not parse. */
    th_send(c, GET_ROOT_CLOSE);
    th_read(c, &r, 0);
    assert_hello(&r);
    tc_response_free(&r);
    th_expect_closed(c);
}

static void unknown_route_is_404(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_response_t r;
    th_request(s->port, "GET /no/such/thing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "not found\n");
    tc_response_free(&r);
}

static void keepalive_serves_several_requests(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    for (int i = 0; i < 5; i++) {
        tc_response_t r;
        th_send(c, GET_ROOT);
        th_read(c, &r, 0);
        assert_hello(&r);
        assert_kept_alive(&r);
        tc_response_free(&r);
    }
    tc_close(c);
    th_expect_serving(s->port);
}

static void http10_without_keepalive_closes(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "GET / HTTP/1.0\r\n\r\n");
    th_read(c, &r, 0);
    assert_hello(&r);
    tc_response_free(&r);
    th_expect_closed(c);
}

static void http10_with_keepalive_stays_open(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    th_read(c, &r, 0);
    assert_hello(&r);
    /* An HTTP/1.0 client only knows the connection persists if told so. */
    assert_true(tc_header_has_token(&r, "Connection", "keep-alive"));
    tc_response_free(&r);
    th_send(c, "GET / HTTP/1.0\r\n\r\n");
    th_read(c, &r, 0);
    assert_hello(&r);
    tc_response_free(&r);
    th_expect_closed(c);
}

static void http11_connection_close_closes(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, GET_ROOT_CLOSE);
    th_read(c, &r, 0);
    assert_hello(&r);
    assert_true(tc_header_has_token(&r, "Connection", "close"));
    tc_response_free(&r);
    th_expect_closed(c);
}

static void max_keepalive_requests_closes_after_limit(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"MaxKeepAliveRequests", "3", NULL};
    th_server_t *s = th_start_server(fx, dirs);
    tc_conn_t *c = th_connect(fx, s->port);
    for (int i = 1; i <= 3; i++) {
        tc_response_t r;
        th_send(c, GET_ROOT);
        th_read(c, &r, 0);
        assert_hello(&r);
        if (i < 3)
            assert_kept_alive(&r);
        else
            assert_true(tc_header_has_token(&r, "Connection", "close"));
        tc_response_free(&r);
    }
    th_expect_closed(c);
}

static void keepalive_off_closes_each_connection(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"KeepAlive", "Off", NULL};
    th_server_t *s = th_start_server(fx, dirs);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, GET_ROOT);
    th_read(c, &r, 0);
    assert_hello(&r);
    assert_true(tc_header_has_token(&r, "Connection", "close"));
    tc_response_free(&r);
    th_expect_closed(c);
}

static void pipelined_requests_answered_in_order(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "GET /info?i=1 HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /info?i=2 HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /info?i=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    for (int i = 1; i <= 3; i++) {
        tc_response_t r;
        char want[32];
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        snprintf(want, sizeof(want), "query=i=%d\n", i);
        assert_non_null(strstr(r.body, want));
        tc_response_free(&r);
    }
    th_expect_closed(c);
}

#define BURST 80 /* about 3.5 KiB of heads: more than the first input buffer */

/* BURST pipelined requests in one write, every fifth with a body, and the
 * last one cut in two around the buffer's end: each is answered, in order,
 * with its own body; then the rest of the last arrives and is answered. */
static void pipelined_burst_over_the_input_buffer(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    static char burst[BURST * 80];
    size_t len = 0;
    for (int i = 1; i < BURST; i++) {
        if (i % 5 == 0)
            len += (size_t)snprintf(burst + len, sizeof burst - len,
                                    "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n%04d", i);
        else
            len += (size_t)snprintf(burst + len, sizeof burst - len,
                                    "GET /info?i=%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
    }
    len += (size_t)snprintf(burst + len, sizeof burst - len, "GET /info?i=%d HTTP/1.1\r\nHo", BURST);
    assert_int_equal(tc_send(c, burst, len, TC_DEFAULT_TIMEOUT_MS), TC_OK);
    char want[32];
    for (int i = 1; i <= BURST; i++) {
        if (i == BURST)
            th_send(c, "st: t\r\nConnection: close\r\n\r\n");
        tc_response_t r;
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        if (i % 5 == 0 && i != BURST) {
            snprintf(want, sizeof want, "%04d", i);
            assert_string_equal(r.body, want);
        } else {
            snprintf(want, sizeof want, "query=i=%d\n", i);
            if (!strstr(r.body, want))
                fail_msg("response %d is not its request's: %s", i, r.body);
        }
        tc_response_free(&r);
    }
    th_expect_closed(c);
}

static void pipelined_with_body_answered_in_order(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst"
               "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
               "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nConnection: close\r\n\r\n"
               "second");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "first");
    tc_response_free(&r);
    th_read(c, &r, 0);
    assert_hello(&r);
    tc_response_free(&r);
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "second");
    tc_response_free(&r);
    th_expect_closed(c);
}

/* The handler sends a body for 204 and 304; the library must drop it. */
static void status_204_and_304_have_no_body(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "GET /status/204 HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 204);
    assert_null(tc_header(&r, "Content-Length"));
    assert_null(tc_header(&r, "Transfer-Encoding"));
    tc_response_free(&r);
    th_send(c, "GET /status/304 HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 304);
    assert_null(tc_header(&r, "Transfer-Encoding"));
    tc_response_free(&r);
    /* Stray body bytes would be read here instead of the next response. */
    th_send(c, GET_ROOT_CLOSE);
    th_read(c, &r, 0);
    assert_hello(&r);
    tc_response_free(&r);
    th_expect_closed(c);
}

static void other_statuses_carry_their_body(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_response_t r;
    th_request(s->port, "GET /status/418 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 418);
    assert_string_equal(r.body, "status 418\n");
    tc_response_free(&r);
    th_request(s->port, "GET /status/503 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "status 503\n");
    tc_response_free(&r);
}

static void handler_without_response_gives_500(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "GET /noresponse HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 500);
    tc_response_free(&r);
    tc_close(c);
    th_expect_serving(s->port);
}

static void handler_sees_request_headers(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_response_t r;
    th_request(s->port,
               "GET /headers HTTP/1.1\r\nHost: example.test\r\nX-Test:   hello world  \r\n"
               "x-lower: v1\r\nX-Empty:\r\nConnection: close\r\n\r\n",
               &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Host: example.test\n"));
    assert_non_null(strstr(r.body, "X-Test: hello world\n")); /* OWS trimmed */
    assert_non_null(strstr(r.body, "x-lower: v1\n"));
    assert_non_null(strstr(r.body, "X-Empty: \n"));
    /* Arrival order. */
    assert_true(strstr(r.body, "Host:") < strstr(r.body, "X-Test:"));
    assert_true(strstr(r.body, "X-Test:") < strstr(r.body, "x-lower:"));
    tc_response_free(&r);
}

static void handler_sees_request_line_and_peer(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_response_t r;
    th_request(s->port, "GET /info?a=1&b=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "method=GET\n"));
    assert_non_null(strstr(r.body, "target=/info?a=1&b=2\n"));
    assert_non_null(strstr(r.body, "path=/info\n"));
    assert_non_null(strstr(r.body, "query=a=1&b=2\n"));
    assert_non_null(strstr(r.body, "version=11\n"));
    assert_non_null(strstr(r.body, "remote=127.0.0.1\n"));
    assert_non_null(strstr(r.body, "local=127.0.0.1\n"));
    assert_non_null(strstr(r.body, "content-length=0\n"));
    tc_response_free(&r);
}

static void request_sent_in_small_pieces(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    const char *req = "GET /info?x=y HTTP/1.1\r\nHost: t\r\nX-A: b\r\nConnection: close\r\n\r\n";
    assert_int_equal(tc_send_pieces(c, req, strlen(req), 3, 5), TC_OK);
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "query=x=y\n"));
    tc_response_free(&r);
    th_expect_closed(c);
}

/* A kept-alive connection that stays silent past the park delay gives its
 * buffers back; it must then serve its next requests as before: a large
 * head, a body sent in pieces, a pipelined request behind it. */
static void parked_connection_serves_again(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    static char big[3000];
    memset(big, 'v', sizeof big - 1);
    char head[4096];
    snprintf(head, sizeof head, "GET /headers HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n", big);
    for (int round = 0; round < 2; round++) {
        tc_response_t r;
        th_send(c, head);
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, big));
        assert_kept_alive(&r);
        tc_response_free(&r);
        /* Idle well past MPM__CONN_PARK_AFTER_MS: nothing may come. */
        assert_false(tc_readable(c, 300));
        const char *req = "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n"
                          "0123456789"
                          "GET /info?n=2 HTTP/1.1\r\nHost: t\r\n\r\n";
        assert_int_equal(tc_send_pieces(c, req, strlen(req), 7, 2), TC_OK);
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "0123456789");
        tc_response_free(&r);
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "query=n=2\n"));
        tc_response_free(&r);
        assert_false(tc_readable(c, 300));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX_MP(get_root),
        TH_MATRIX_MP(head_has_length_but_no_body),
        TH_MATRIX_MP(unknown_route_is_404),
        TH_MATRIX_MP(keepalive_serves_several_requests),
        TH_MATRIX_MP(http10_without_keepalive_closes),
        TH_MATRIX_MP(http10_with_keepalive_stays_open),
        TH_MATRIX_MP(http11_connection_close_closes),
        TH_MATRIX_MP(max_keepalive_requests_closes_after_limit),
        TH_MATRIX_MP(keepalive_off_closes_each_connection),
        TH_MATRIX_MP(pipelined_requests_answered_in_order),
        TH_MATRIX_MP(pipelined_with_body_answered_in_order),
        TH_MATRIX_MP(pipelined_burst_over_the_input_buffer),
        TH_MATRIX_MP(status_204_and_304_have_no_body),
        TH_MATRIX_MP(other_statuses_carry_their_body),
        TH_MATRIX_MP(handler_without_response_gives_500),
        TH_MATRIX_MP(handler_sees_request_headers),
        TH_MATRIX_MP(handler_sees_request_line_and_peer),
        TH_MATRIX_MP(request_sent_in_small_pieces),
        TH_MATRIX_MP(parked_connection_serves_again),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
