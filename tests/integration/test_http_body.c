/* Request and response bodies over real sockets, for every built strategy:
 * Content-Length and chunked uploads, large streamed uploads,
 * 100-continue, chunked and close-delimited responses, sendfile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define BIG_UPLOAD (8u * 1024u * 1024u)

static unsigned char *pattern(size_t n, uint32_t seed)
{
    unsigned char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (unsigned char)(seed >> 24);
    }
    return p;
}

static void post_with_length_is_echoed(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello body!");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "hello body!", 11);
    tc_response_free(&r);
    /* The connection is reusable after a streamed echo. */
    th_send(c, "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "abc");
    assert_string_equal(tc_header(&r, "Content-Length"), "3");
    tc_response_free(&r);
    th_expect_closed(c);
}

/* The handler answers without reading the body: the library reads and
 * drops it (up to 256 KiB), so the connection carries the next request. A
 * small body, one larger than event's prefetch, and a chunked one. */
static void unread_body_is_discarded_and_connection_kept(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    const size_t sizes[] = {5000, 100000};
    for (size_t i = 0; i < 2; i++) {
        char head[128];
        snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                 sizes[i]);
        th_send(c, head);
        unsigned char *body = pattern(sizes[i], 7u + (uint32_t)i);
        int rc = tc_send(c, body, sizes[i], TC_DEFAULT_TIMEOUT_MS);
        free(body);
        assert_int_equal(rc, TC_OK);
        tc_response_t r;
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        tc_response_free(&r);
    }
    th_send(c, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n0\r\n\r\n");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    th_expect_closed(c);
}

static void empty_post_is_echoed_empty(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_response_t r;
    th_request(s->port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
               &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    tc_response_free(&r);
}

#define CHUNKED_UPLOAD                                                                             \
    "Transfer-Encoding: chunked\r\n\r\n"                                                          \
    "5;name=value\r\nhello\r\n"                                                                    \
    "1\r\n \r\n"                                                                                   \
    "6;ext\r\nworld!\r\n"                                                                          \
    "0\r\nX-Trailer: t1\r\nX-Other: t2\r\n\r\n"

static void chunked_upload_is_echoed(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_response_t r;
    th_request(s->port, "POST /echo HTTP/1.1\r\nHost: t\r\n" CHUNKED_UPLOAD, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world!");
    tc_response_free(&r);
}

static void chunked_upload_trailer_is_consumed(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    for (int i = 0; i < 2; i++) { /* the next request on the connection parses */
        th_send(c, "POST /echo-whole HTTP/1.1\r\nHost: t\r\n" CHUNKED_UPLOAD);
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "hello world!");
        assert_false(tc_header_has_token(&r, "Connection", "close"));
        tc_response_free(&r);
    }
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    th_read(c, &r, 0);
    assert_string_equal(r.body, "Hello, World!");
    tc_response_free(&r);
    th_expect_closed(c);
}

static void chunked_upload_in_pieces(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    const char *req = "POST /echo-whole HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" CHUNKED_UPLOAD;
    assert_int_equal(tc_send_pieces(c, req, strlen(req), 4, 2), TC_OK);
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world!");
    tc_response_free(&r);
    th_expect_closed(c);
}

static void read_body_whole(void **state)
{
    th_fixture_t *fx = *state;
    /* Allocated before the server starts: with a master in this process,
     * a malloc racing its fork can leave the child stuck on an allocator
     * lock (seen under ASan, whose allocator has no fork handler). */
    size_t n = 200000;
    unsigned char *data = pattern(n, 7);
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    char head[256];
    snprintf(head, sizeof(head), "POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    th_send(c, head);
    assert_int_equal(tc_send_while_reading(c, data, n, 30000), TC_OK);
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, data, n);
    tc_response_free(&r);
    free(data);
}

/* mpm_request_read_body() with the limit (LimitRequestBody) as its bound:
 * a chunked body of exactly the limit is whole, one byte more is a 413. */
static void read_body_at_exact_limit(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestBody", "6", NULL};
    th_server_t *s = th_start_server(fx, dirs);
    tc_response_t r;
    th_request(s->port,
               "POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "6\r\nabc123\r\n0\r\n\r\n",
               &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "abc123");
    tc_response_free(&r);
    th_request(s->port,
               "POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "7\r\nabc1234\r\n0\r\n\r\n",
               &r);
    assert_int_equal(r.status, 413);
    tc_response_free(&r);
}

static void large_upload_is_echoed_streaming(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    unsigned char *data = pattern(BIG_UPLOAD, 42);
    tc_conn_t *c = th_connect(fx, s->port);
    char head[256];
    snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n\r\n", BIG_UPLOAD);
    th_send(c, head);
    /* The echo streams back while we upload: both directions move at once. */
    int rc = tc_send_while_reading(c, data, BIG_UPLOAD, 60000);
    if (rc != TC_OK)
        fail_msg("uploading: %s", tc_result_name(rc));
    tc_response_t r;
    assert_int_equal(tc_read_response(c, &r, 0, 60000), TC_OK);
    assert_int_equal(r.status, 200);
    assert_true(r.chunked);
    assert_int_equal(r.body_len, BIG_UPLOAD);
    assert_memory_equal(r.body, data, BIG_UPLOAD);
    tc_response_free(&r);
    free(data);
}

static void large_chunked_upload_is_counted(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    const size_t chunk = 65536;
    unsigned char *data = pattern(chunk, 3);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    char size_line[32];
    snprintf(size_line, sizeof(size_line), "%zx\r\n", chunk);
    for (size_t sent = 0; sent < BIG_UPLOAD; sent += chunk) {
        th_send(c, size_line);
        assert_int_equal(tc_send(c, data, chunk, 30000), TC_OK);
        th_send(c, "\r\n");
    }
    th_send(c, "0\r\n\r\n");
    tc_response_t r;
    assert_int_equal(tc_read_response(c, &r, 0, 60000), TC_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(strtoul(r.body, NULL, 10), BIG_UPLOAD);
    tc_response_free(&r);
    free(data);
}

/* The client waits for "100 Continue" before sending the body; the 100 must
 * come only once the handler reads (after its delay), then the 200. */
static void expect_100_continue_after_handler_reads(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "POST /echo?delay_ms=300 HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n"
               "Expect: 100-continue\r\n\r\n");
    tc_response_t r;
    th_read(c, &r, 0);
    int64_t got_100_ms = tc_now_ms();
    assert_int_equal(r.status, 100);
    assert_int_equal(r.version, 11);
    tc_response_free(&r);
    long long read_start = atomic_load(&s->shared->echo_read_start_ms);
    assert_true(read_start > 0);
    assert_true(got_100_ms >= read_start);
    th_send(c, "123456789");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "123456789");
    tc_response_free(&r);
}

static void expect_100_continue_over_limit_gets_413(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"LimitRequestBody", "1000", NULL};
    th_server_t *s = th_start_server(fx, dirs);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n"
               "Expect: 100-continue\r\n\r\n");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 413);
    tc_response_free(&r);
    th_expect_closed(c);
    th_expect_serving(s->port);
}

static void stream_response_is_chunked(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_response_t r;
    th_request(s->port, "GET /stream?n=50 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_true(r.chunked);
    assert_null(tc_header(&r, "Content-Length"));
    char want[1024] = "";
    for (int i = 0; i < 50; i++) {
        char line[32];
        snprintf(line, sizeof(line), "chunk %d\n", i);
        strcat(want, line);
    }
    assert_string_equal(r.body, want);
    tc_response_free(&r);
}

static void stream_response_to_http10_is_close_delimited(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "GET /stream?n=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_false(r.chunked);
    assert_true(r.close_delimited);
    assert_string_equal(r.body, "chunk 0\nchunk 1\nchunk 2\n");
    tc_response_free(&r);
}

static void file_is_sent_exactly(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    char want_len[32];
    snprintf(want_len, sizeof(want_len), "%zu", s->file_len);
    for (int i = 0; i < 2; i++) { /* twice on one connection */
        th_send(c, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n");
        th_read(c, &r, 0);
        assert_int_equal(r.status, 200);
        assert_non_null(tc_header(&r, "Content-Length"));
        assert_string_equal(tc_header(&r, "Content-Length"), want_len);
        assert_int_equal(r.body_len, s->file_len);
        assert_memory_equal(r.body, s->file_data, s->file_len);
        tc_response_free(&r);
    }
}

static void head_of_file_has_length_only(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = th_start_server(fx, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    char want_len[32];
    snprintf(want_len, sizeof(want_len), "%zu", s->file_len);
    th_send(c, "HEAD /file HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 1);
    assert_int_equal(r.status, 200);
    assert_non_null(tc_header(&r, "Content-Length"));
    assert_string_equal(tc_header(&r, "Content-Length"), want_len);
    tc_response_free(&r);
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    th_read(c, &r, 0);
    assert_string_equal(r.body, "Hello, World!");
    tc_response_free(&r);
    th_expect_closed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX_MP(post_with_length_is_echoed),
        TH_MATRIX_MP(empty_post_is_echoed_empty),
        TH_MATRIX_MP(unread_body_is_discarded_and_connection_kept),
        TH_MATRIX_MP(chunked_upload_is_echoed),
        TH_MATRIX_MP(chunked_upload_trailer_is_consumed),
        TH_MATRIX_MP(chunked_upload_in_pieces),
        TH_MATRIX_MP(read_body_whole),
        TH_MATRIX_MP(read_body_at_exact_limit),
        TH_MATRIX_MP(large_upload_is_echoed_streaming),
        TH_MATRIX_MP(large_chunked_upload_is_counted),
        TH_MATRIX_MP(expect_100_continue_after_handler_reads),
        TH_MATRIX_MP(expect_100_continue_over_limit_gets_413),
        TH_MATRIX_MP(stream_response_is_chunked),
        TH_MATRIX_MP(stream_response_to_http10_is_close_delimited),
        TH_MATRIX_MP(file_is_sent_exactly),
        TH_MATRIX_MP(head_of_file_has_length_only),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
