/* Bad input gets a clear answer (DESIGN.md section 4), over real sockets,
 * for every built strategy: the exact status, then the server closes the
 * connection, and it keeps serving fresh connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "harness.h"

/* Sends raw on a fresh connection, expects `status`, then the close, then
 * that the server still answers a new connection. */
static void expect_error_then_close(th_fixture_t *fx, int port, const char *raw, int status)
{
    tc_conn_t *c = th_connect(fx, port);
    tc_response_t r;
    th_send(c, raw);
    int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    int got = r.status, version = r.version;
    tc_response_free(&r);
    if (rc != TC_OK)
        fail_msg("expected %d, got %s for %.60s", status, tc_result_name(rc), raw);
    if (got != status)
        fail_msg("expected %d, got %d for %.60s", status, got, raw);
    assert_true(version == 11 || version == 10);
    th_expect_closed(c);
    tc_close(c);
    th_expect_serving(port);
}

static th_server_t *start_default(th_fixture_t *fx)
{
    return th_start_server(fx, NULL);
}

static void malformed_request_line_is_400(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port, "G@T / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    expect_error_then_close(fx, port, "GET / HTTP/1.1 junk\r\nHost: t\r\n\r\n", 400);
    expect_error_then_close(fx, port, "GET / HTTQ/1.1\r\nHost: t\r\n\r\n", 400);
}

static void bad_header_is_400(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port, "GET / HTTP/1.1\r\nHost: t\r\nBad Name: v\r\n\r\n", 400);
    expect_error_then_close(fx, port, "GET / HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n", 400);
    expect_error_then_close(fx, port, "GET / HTTP/1.1\r\nHost: t\r\nX-A : v\r\n\r\n", 400);
}

static void bad_chunk_framing_is_400(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port,
                            "POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "zz\r\nhello\r\n0\r\n\r\n",
                            400);
    expect_error_then_close(fx, port,
                            "POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n",
                            400);
}

static void content_length_with_transfer_encoding_is_400(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port,
                            "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                            400);
}

static void two_different_content_lengths_are_400(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port,
                            "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                            "Content-Length: 6\r\n\r\nhello!",
                            400);
}

static void long_request_line_is_414(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestLine", "100", NULL};
    int port = th_start_server(fx, dirs)->port;
    char raw[512];
    char target[201];
    memset(target, 'a', 200);
    target[0] = '/';
    target[200] = '\0';
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    expect_error_then_close(fx, port, raw, 414);
}

static void long_header_is_431(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestFieldSize", "100", NULL};
    int port = th_start_server(fx, dirs)->port;
    char raw[512];
    char value[201];
    memset(value, 'v', 200);
    value[200] = '\0';
    snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: t\r\nX-Long: %s\r\n\r\n", value);
    expect_error_then_close(fx, port, raw, 431);
}

static void too_many_headers_is_431(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestFields", "5", NULL};
    int port = th_start_server(fx, dirs)->port;
    char raw[1024] = "GET / HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; i < 10; i++) {
        char line[32];
        snprintf(line, sizeof(line), "X-H%d: v\r\n", i);
        strcat(raw, line);
    }
    strcat(raw, "\r\n");
    expect_error_then_close(fx, port, raw, 431);
}

static void body_over_limit_is_413(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestBody", "100", NULL};
    int port = th_start_server(fx, dirs)->port;
    char raw[1024], body[201];
    memset(body, 'b', 200);
    body[200] = '\0';
    snprintf(raw, sizeof(raw), "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n\r\n%s",
             body);
    expect_error_then_close(fx, port, raw, 413);
    snprintf(raw, sizeof(raw),
             "POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "64\r\n%.100s\r\n64\r\n%.100s\r\n0\r\n\r\n",
             body, body);
    expect_error_then_close(fx, port, raw, 413);
    /* Within the limit still works. */
    tc_response_t r;
    th_request(port, "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nsmall",
               &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "small");
    tc_response_free(&r);
}

static void streamed_read_over_limit_is_413(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestBody", "100", NULL};
    int port = th_start_server(fx, dirs)->port;
    char raw[1024], body[201];
    memset(body, 'b', 200);
    body[200] = '\0';
    snprintf(raw, sizeof(raw),
             "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "64\r\n%.100s\r\n64\r\n%.100s\r\n0\r\n\r\n",
             body, body);
    expect_error_then_close(fx, port, raw, 413);
}

static void unsupported_transfer_encoding_is_501(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port,
                            "POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, "
                            "chunked\r\n\r\n4\r\nxxxx\r\n0\r\n\r\n",
                            501);
}

static void http2_request_line_is_505(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port, "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
    expect_error_then_close(fx, port, "GET / HTTP/3.1\r\nHost: t\r\n\r\n", 505);
}

static void http2_preface_is_505_or_close(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    tc_conn_t *c = th_connect(fx, port);
    th_send(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    if (rc == TC_OK) {
        assert_int_equal(r.status, 505);
        tc_response_free(&r);
        th_expect_closed(c);
    } else if (rc != TC_CLOSED) {
        fail_msg("h2 preface: expected 505 or close, got %s", tc_result_name(rc));
    }
    tc_close(c);
    th_expect_serving(port);
}

static void unknown_expectation_is_417(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port,
                            "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                            "Expect: something-else\r\n\r\nabc",
                            417);
}

static void http11_without_host_is_400(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    expect_error_then_close(fx, port, "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400);
    /* HTTP/1.0 needs no Host. */
    tc_response_t r;
    th_request(port, "GET / HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

/* Sends `partial`, then waits: a 408 must come after the timeout (not long
 * before, never after a generous bound), then the close. */
static void expect_408_after_stall(th_fixture_t *fx, int port, const char *partial)
{
    int64_t start = tc_now_ms(); /* before the accept that starts the clock */
    tc_conn_t *c = th_connect(fx, port);
    th_send(c, partial);
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, 15000);
    int64_t elapsed = tc_now_ms() - start;
    int status = r.status;
    tc_response_free(&r);
    if (rc != TC_OK)
        fail_msg("expected 408, got %s after %lld ms", tc_result_name(rc), (long long)elapsed);
    assert_int_equal(status, 408);
    if (elapsed < 500 || elapsed > 10000)
        fail_msg("408 came after %lld ms (timeout 1 s)", (long long)elapsed);
    th_expect_closed(c);
    tc_close(c);
    th_expect_serving(port);
}

/* Sends raw, then ends its side of the connection (shutdown SHUT_WR). */
static tc_conn_t *send_then_half_close(th_fixture_t *fx, int port, const char *raw)
{
    tc_conn_t *c = th_connect(fx, port);
    if (*raw)
        th_send(c, raw);
    assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
    return c;
}

/* A client that ends its side in the middle of a head gets 400 (its
 * request can never be complete), then the close; one that ends it between
 * requests just gets the close, with nothing sent, as does one that had
 * only sent blank lines. A complete request before the end is still
 * answered. */
static void head_cut_short_by_eof_is_400(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    const char *cut[] = {"GET / HT", "GET / HTTP/1.1\r\nHost: t\r\n", "GET / HTTP/1.1\r\nHost: t\r\nX-A: b"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        tc_conn_t *c = send_then_half_close(fx, port, cut[i]);
        tc_response_t r;
        int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
        int got = r.status;
        tc_response_free(&r);
        if (rc != TC_OK || got != 400)
            fail_msg("%s then EOF: %s, status %d (expected 400)", cut[i], tc_result_name(rc), got);
        th_expect_closed(c);
    }
    const char *nothing[] = {"", "\r\n"};
    for (size_t i = 0; i < 2; i++) {
        tc_conn_t *c = send_then_half_close(fx, port, nothing[i]);
        size_t extra = 0;
        assert_int_equal(tc_wait_close(c, TC_DEFAULT_TIMEOUT_MS, &extra), TC_CLOSED);
        assert_int_equal(extra, 0);
    }
    tc_conn_t *c = send_then_half_close(fx, port, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    th_expect_closed(c);
}

/* The library's own error answers to HEAD carry the length of their page
 * but not the page (RFC 9112 §6.3): bytes after the head would be read as
 * the start of another response. Each is the status wanted, then the close. */
static void errors_to_head_have_no_body(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestBody", "10", "LimitRequestFields", "20", NULL};
    int port = th_start_server(fx, dirs)->port;
    static char long_line[10000];
    memcpy(long_line, "HEAD /", 6);
    memset(long_line + 6, 'a', 9000);
    strcpy(long_line + 9006, " HTTP/1.1\r\nHost: t\r\n\r\n");
    char many_fields[1000] = "HEAD / HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; i < 30; i++)
        strcat(many_fields, "X-F: v\r\n");
    strcat(many_fields, "\r\n");
    const struct {
        const char *raw;
        int status;
    } rows[] = {
        {"HEAD / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", 413},
        {"HEAD / HTTP/1.1\r\nHost: t\r\nX-A: a\x01\r\n\r\n", 400},
        {"HEAD / HTTP/1.1\r\nHost: t\r\nExpect: teapot\r\n\r\n", 417},
        {long_line, 414},
        {many_fields, 431},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tc_conn_t *c = th_connect(fx, port);
        th_send(c, rows[i].raw);
        tc_response_t r;
        th_read(c, &r, 1);
        int status = r.status;
        const char *len = tc_header(&r, "Content-Length");
        int declared = len ? atoi(len) : -1;
        tc_response_free(&r);
        if (status != rows[i].status || declared <= 0 || c->len != 0)
            fail_msg("HEAD row %zu: %d (expected %d), Content-Length %d, %zu bytes after the head",
                     i, status, rows[i].status, declared, c->len);
        size_t extra = 1;
        assert_int_equal(tc_wait_close(c, TC_DEFAULT_TIMEOUT_MS, &extra), TC_CLOSED);
        assert_int_equal(extra, 0);
    }
}

static void slow_headers_get_408(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"RequestReadTimeout", "header=1", NULL};
    int port = th_start_server(fx, dirs)->port;
    expect_408_after_stall(fx, port, "GET / HT");
    expect_408_after_stall(fx, port, "GET / HTTP/1.1\r\nHost: t\r\nX-Partial: ab");
}

static void slow_body_gets_408(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"RequestReadTimeout", "body=1", NULL};
    int port = th_start_server(fx, dirs)->port;
    expect_408_after_stall(fx, port,
                           "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
}

static void idle_keepalive_closed_after_timeout(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"KeepAliveTimeout", "1", NULL};
    int port = th_start_server(fx, dirs)->port;
    tc_conn_t *c = th_connect(fx, port);
    tc_response_t r;
    int64_t start = tc_now_ms(); /* the idle clock starts as the response leaves */
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    th_expect_closed(c);
    int64_t elapsed = tc_now_ms() - start;
    if (elapsed < 500)
        fail_msg("idle connection closed after %lld ms, KeepAliveTimeout is 1 s", (long long)elapsed);
    tc_close(c);
    th_expect_serving(port);
}

/* A 413 decided from the headers while the client is still sending a large
 * body: the client must read the 413, not meet a reset. The client sends the
 * whole body before reading, as a simple client does, and its send must not
 * fail either (a client library would give up on a broken pipe). */
static void lingering_close_lets_client_read_413(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestBody", "1000", NULL};
    int port = th_start_server(fx, dirs)->port;
    const size_t n = 4u * 1024u * 1024u;
    char *body = malloc(n);
    assert_non_null(body);
    memset(body, 'x', n);
    tc_conn_t *c = th_connect(fx, port);
    char head[256];
    snprintf(head, sizeof(head), "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    th_send(c, head);
    int send_rc = tc_send(c, body, n, 20000);
    free(body);
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    int status = r.status;
    tc_response_free(&r);
    if (rc != TC_OK)
        fail_msg("expected 413, got %s (sending the body: %s)", tc_result_name(rc), tc_result_name(send_rc));
    assert_int_equal(status, 413);
    /* The server reads and discards the rest of the body while the client
     * sends it: a close with unread data would reset the upload instead. */
    if (send_rc != TC_OK)
        fail_msg("sending the body after the 413: %s (no lingering close)", tc_result_name(send_rc));
    tc_close(c);
    th_expect_serving(port);
}

/* Seeded random bytes, each string on a fresh connection, terminated by an
 * empty line so that the server has a complete (bad) request head. */
static void random_garbage_gets_400(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_default(fx)->port;
    uint32_t seed = 20240601u;
    for (int i = 0; i < 300; i++) {
        char raw[256];
        seed = seed * 1664525u + 1013904223u;
        size_t len = 8 + (seed >> 24) % 150;
        for (size_t j = 0; j < len; j++) {
            seed = seed * 1664525u + 1013904223u;
            raw[j] = (char)(seed >> 24);
            if (raw[j] == '\0' || raw[j] == '\r' || raw[j] == '\n')
                raw[j] = '#'; /* keep one bad line, not many short ones */
        }
        memcpy(raw + len, "\r\n\r\n", 5);
        tc_conn_t c;
        assert_int_equal(tc_connect(&c, port, TC_DEFAULT_TIMEOUT_MS), TC_OK);
        int rc = tc_send(&c, raw, len + 4, TC_DEFAULT_TIMEOUT_MS);
        tc_response_t r;
        memset(&r, 0, sizeof(r));
        if (rc == TC_OK)
            rc = tc_read_response(&c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
        tc_close(&c);
        int status = r.status;
        tc_response_free(&r);
        if (rc != TC_OK)
            fail_msg("garbage #%d: %s", i, tc_result_name(rc));
        if (status != 400)
            fail_msg("garbage #%d: status %d, expected 400", i, status);
    }
    th_expect_serving(port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX_MP(malformed_request_line_is_400),
        TH_MATRIX_MP(bad_header_is_400),
        TH_MATRIX_MP(bad_chunk_framing_is_400),
        TH_MATRIX_MP(content_length_with_transfer_encoding_is_400),
        TH_MATRIX_MP(two_different_content_lengths_are_400),
        TH_MATRIX_MP(long_request_line_is_414),
        TH_MATRIX_MP(long_header_is_431),
        TH_MATRIX_MP(too_many_headers_is_431),
        TH_MATRIX_MP(body_over_limit_is_413),
        TH_MATRIX_MP(streamed_read_over_limit_is_413),
        TH_MATRIX_MP(unsupported_transfer_encoding_is_501),
        TH_MATRIX_MP(http2_request_line_is_505),
        TH_MATRIX_MP(http2_preface_is_505_or_close),
        TH_MATRIX_MP(unknown_expectation_is_417),
        TH_MATRIX_MP(http11_without_host_is_400),
        TH_MATRIX_MP(head_cut_short_by_eof_is_400),
        TH_MATRIX_MP(errors_to_head_have_no_body),
        TH_MATRIX_MP(slow_headers_get_408),
        TH_MATRIX_MP(slow_body_gets_408),
        TH_MATRIX_MP(idle_keepalive_closed_after_timeout),
        TH_MATRIX_MP(lingering_close_lets_client_read_413),
        TH_MATRIX_MP(random_garbage_gets_400),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
