/* RFC 9110 / 9112 conformance over real sockets (issue 8), for every built
 * strategy and in three modes: one process (in-process server), multiple
 * processes with this test process as the master (OneProcess Off), and the
 * mpmserve binary with its own master and children; and the same rows over
 * TLS to mpmserve (event: pinned and parked), where a bad request must get
 * the same answer and the same clean close as in plaintext.
 *
 * Each row is sent whole on a fresh connection. A bad request must get its
 * status line and then a clean close, with nothing after that response (a
 * pipelined request behind a bad one is never served). A good one must get
 * 200 and the expected body. The engine's own table test
 * (tests/unit/test_http1.c) has the same rows fed in every split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "certs.h"
#include "harness.h"
#include "tls_client.h"

typedef enum mode { ONE_PROCESS, MASTER_IN_TEST, MPMSERVE, MPMSERVE_TLS } serve_mode_t;

typedef struct row {
    const char *name;
    const char *raw; /* "/echo-whole" becomes "/echo" for mpmserve */
    size_t len;
    int status;
    const char *body; /* for 200: the body wanted (NULL: any) */
    int whole_body;   /* the error follows body data: needs a handler that
                         reads the whole body before answering */
} row_t;

#define RAW(s) s, sizeof(s) - 1
#define POST_CHUNKED "POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
#define X64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define X1K X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64
#define X4K X1K X1K X1K X1K

static const row_t rows[] = {
    /* request-target forms (RFC 9112 §3.2) */
    {"absolute-form", RAW("GET http://example.test:8080/ HTTP/1.1\r\nHost: other\r\n\r\n"), 200,
     NULL, 0},
    {"absolute-form post",
     RAW("POST http://example.test/echo-whole?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: "
         "3\r\n\r\nabc"),
     200, "abc", 0},
    {"absolute-form userinfo", RAW("GET http://u@example.test/ HTTP/1.1\r\nHost: t\r\n\r\n"), 400,
     NULL, 0},
    {"absolute-form empty host", RAW("GET http:/// HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"authority-form for GET", RAW("GET example.test:80 HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL,
     0},
    {"asterisk-form for GET", RAW("GET * HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"CONNECT authority-form", RAW("CONNECT example.test:443 HTTP/1.1\r\nHost: t\r\n\r\n"), 501,
     NULL, 0},
    {"CONNECT origin-form", RAW("CONNECT / HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    /* versions */
    {"HTTP/1.2 as 1.1", RAW("GET / HTTP/1.2\r\nHost: t\r\n\r\n"), 200, NULL, 0},
    {"HTTP/2.0", RAW("GET / HTTP/2.0\r\nHost: t\r\n\r\n"), 505, NULL, 0},
    {"HTTP/0.9 line", RAW("GET /\r\n\r\n"), 400, NULL, 0},
    {"HTTP/1.10", RAW("GET / HTTP/1.10\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    /* request line shape */
    {"two spaces", RAW("GET  / HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"method not a token", RAW("GE(T / HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"unknown method", RAW("FROB / HTTP/1.1\r\nHost: t\r\n\r\n"), 501, NULL, 0},
    {"bare LF line ends", RAW("GET / HTTP/1.1\nHost: t\n\n"), 400, NULL, 0},
    /* request-target whitespace and control characters */
    {"tab in target", RAW("GET /a\tb HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"bare CR in target", RAW("GET /a\rb HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"bare CR in field value", RAW("GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rX-B: b\r\n\r\n"), 400, NULL, 0},
    {"bare CR before the request line", RAW("\rGET / HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"empty lines before the request line", RAW("\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"), 200,
     NULL, 0},
    {"DEL in target", RAW("GET /a\x7f HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"NUL in target", RAW("GET /a\0 HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"space in target, pipelined GET behind",
     RAW("GET /nope HTTP/1.1 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"), 400,
     NULL, 0},
    {"space in target, then a path that exists",
     RAW("GET /x / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"visible ASCII browsers send raw", RAW("GET /?q={\"a\":[1]}|^` HTTP/1.1\r\nHost: t\r\n\r\n"),
     200, NULL, 0},
    {"raw UTF-8 in target", RAW("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    {"fragment in target", RAW("GET /#top HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL, 0},
    /* Host */
    {"no Host", RAW("GET / HTTP/1.1\r\n\r\n"), 400, NULL, 0},
    {"two Hosts", RAW("GET / HTTP/1.1\r\nHost: t\r\nhost: t\r\n\r\n"), 400, NULL, 0},
    {"Host with space", RAW("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400, NULL, 0},
    {"Host bad port", RAW("GET / HTTP/1.1\r\nHost: t:99999\r\n\r\n"), 400, NULL, 0},
    {"Host with path", RAW("GET / HTTP/1.1\r\nHost: t/x\r\n\r\n"), 400, NULL, 0},
    {"Host IPv6 literal", RAW("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), 200, NULL, 0},
    /* field lines */
    {"empty field name", RAW("GET / HTTP/1.1\r\nHost: t\r\n: x\r\n\r\n"), 400, NULL, 0},
    {"leading colon", RAW("GET / HTTP/1.1\r\nHost: t\r\n:authority: t\r\n\r\n"), 400, NULL, 0},
    {"space before colon", RAW("GET / HTTP/1.1\r\nHost: t\r\nX-A : v\r\n\r\n"), 400, NULL, 0},
    {"obs-fold", RAW("GET / HTTP/1.1\r\nHost: t\r\nX-A: v\r\n w\r\n\r\n"), 400, NULL, 0},
    {"whitespace before first field", RAW("GET / HTTP/1.1\r\n Host: t\r\n\r\n"), 400, NULL, 0},
    /* framing headers */
    {"Content-Length with plus",
     RAW("POST /echo-whole HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc"), 400, NULL, 0},
    {"chunked not last",
     RAW("POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400,
     NULL, 0},
    {"gzip alone (chunked not last)",
     RAW("POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nabc"), 400, NULL,
     0},
    {"gzip then chunked",
     RAW("POST /echo-whole HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n"
         "\r\n"),
     501, NULL, 0},
    {"Transfer-Encoding in HTTP/1.0",
     RAW("POST /echo-whole HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, NULL, 0},
    /* chunk extensions (RFC 9112 §7.1.1) and chunk framing */
    {"chunk extensions",
     RAW(POST_CHUNKED "3;a\r\nabc\r\n3 ; b = c ; d=\"e;f=g\\\"\"\r\ndef\r\n2;x;y;z=1\r\ngh\r\n"
                      "0;end\r\n\r\n"),
     200, "abcdefgh", 0},
    {"trailers", RAW(POST_CHUNKED "2\r\nhi\r\n0\r\nX-Sum: 1\r\nX-More: two\r\n\r\n"), 200, "hi", 0},
    {"chunk-size line over 4 KiB", RAW(POST_CHUNKED "2;" X4K "\r\nhi\r\n0\r\n\r\n"), 400, NULL, 0},
    {"chunk size 0x", RAW(POST_CHUNKED "0x2\r\nhi\r\n0\r\n\r\n"), 400, NULL, 0},
    {"chunk size negative", RAW(POST_CHUNKED "-2\r\nhi\r\n0\r\n\r\n"), 400, NULL, 0},
    {"chunk size empty", RAW(POST_CHUNKED "\r\nhi\r\n0\r\n\r\n"), 400, NULL, 0},
    {"chunk size overflow", RAW(POST_CHUNKED "1ffffffffffffffff\r\nhi\r\n0\r\n\r\n"), 400, NULL, 0},
    {"chunk ext unterminated quote", RAW(POST_CHUNKED "2;a=\"b\r\nhi\r\n0\r\n\r\n"), 400, NULL, 0},
    {"more chunk data than declared",
     RAW(POST_CHUNKED "2\r\nhiXX2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n"), 400, NULL,
     1},
    {"missing CRLF after chunk data", RAW(POST_CHUNKED "2\r\nhi0\r\n\r\n"), 400, NULL, 1},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* The row's bytes for this mode (mpmserve's echo route is /echo). */
static char *row_bytes(const row_t *r, serve_mode_t mode, size_t *len)
{
    char *out = malloc(r->len + 1);
    assert_non_null(out);
    memcpy(out, r->raw, r->len);
    *len = r->len;
    char *at = mode >= MPMSERVE ? memmem(out, *len, "/echo-whole", 11) : NULL;
    if (at) {
        memmove(at + 5, at + 11, *len - (size_t)(at + 11 - out));
        *len -= 6;
    }
    return out;
}

/* A row's connection: plain, or TLS (tls.ssl set). */
typedef struct row_conn {
    tc_conn_t tcp;
    ttls_conn_t tls;
} row_conn_t;

static SSL_CTX *g_tls_ctx;           /* trusts g_cert: made by the group setup */
static char g_cert_dir[TCERT_PATH_MAX / 2];
static tcert_t g_cert;

static int rc_connect(row_conn_t *c, int port, serve_mode_t mode)
{
    memset(c, 0, sizeof *c);
    c->tcp.fd = c->tls.fd = -1;
    if (mode == MPMSERVE_TLS) {
        int rc = ttls_connect(&c->tls, g_tls_ctx, port, "a.test", NULL, TC_DEFAULT_TIMEOUT_MS);
        /* A clean close over TLS is a close_notify: a bare EOF reads as
         * an error (TC_RESET from rc_wait_close), not as TC_CLOSED. */
        if (rc == TC_OK)
            SSL_clear_options(c->tls.ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
        return rc;
    }
    return tc_connect(&c->tcp, port, TC_DEFAULT_TIMEOUT_MS);
}

static int rc_send(row_conn_t *c, const char *raw, size_t len)
{
    if (c->tls.ssl)
        return ttls_send(&c->tls, raw, len, TC_DEFAULT_TIMEOUT_MS);
    return tc_send(&c->tcp, raw, len, TC_DEFAULT_TIMEOUT_MS);
}

static int rc_read(row_conn_t *c, tc_response_t *r)
{
    if (c->tls.ssl)
        return ttls_read_response(&c->tls, r, TC_DEFAULT_TIMEOUT_MS);
    return tc_read_response(&c->tcp, r, 0, TC_DEFAULT_TIMEOUT_MS);
}

static int rc_wait_close(row_conn_t *c, size_t *extra)
{
    if (c->tls.ssl)
        return ttls_wait_close(&c->tls, TC_DEFAULT_TIMEOUT_MS, extra);
    return tc_wait_close(&c->tcp, TC_DEFAULT_TIMEOUT_MS, extra);
}

static void rc_close(row_conn_t *c)
{
    if (c->tls.ssl)
        ttls_close(&c->tls);
    else
        tc_close(&c->tcp);
}

/* Sends the row and checks the answer on c; returns 1 if it was as wanted. */
static int check_row(row_conn_t *c, const row_t *r, serve_mode_t mode)
{
    size_t len;
    char *raw = row_bytes(r, mode, &len);
    int rc = rc_send(c, raw, len);
    free(raw);
    tc_response_t resp;
    if (rc == TC_OK)
        rc = rc_read(c, &resp);
    else
        memset(&resp, 0, sizeof(resp));
    int ok = rc == TC_OK && resp.status == r->status && resp.version == 11;
    if (ok && r->body)
        ok = resp.body_len == strlen(r->body) && !memcmp(resp.body, r->body, resp.body_len);
    if (!ok)
        print_error("row \"%s\": %s, status %d (want %d), body \"%.40s\"\n", r->name,
                    tc_result_name(rc), resp.status, r->status, resp.body ? resp.body : "");
    if (ok && r->status != 200) { /* then a clean close, and nothing more */
        size_t extra = 0;
        int closed = rc_wait_close(c, &extra);
        ok = closed == TC_CLOSED && extra == 0 && tc_header_has_token(&resp, "Connection", "close");
        if (!ok)
            print_error("row \"%s\": after %d: %s with %zu more bytes\n", r->name, r->status,
                        ttls_result_name(closed), extra);
    }
    tc_response_free(&resp);
    return ok;
}

static int run_row(int port, const row_t *r, serve_mode_t mode)
{
    row_conn_t c;
    int rc = rc_connect(&c, port, mode);
    if (rc != TC_OK) {
        print_error("row \"%s\": cannot connect: %s\n", r->name, ttls_result_name(rc));
        return 0;
    }
    int ok = check_row(&c, r, mode);
    rc_close(&c);
    return ok;
}

static void run_rows(int port, serve_mode_t mode)
{
    int bad = 0;
    for (size_t i = 0; i < NROWS; i++)
        if (!(mode >= MPMSERVE && rows[i].whole_body))
            bad += !run_row(port, &rows[i], mode);
    assert_int_equal(bad, 0);
    if (mode != MPMSERVE_TLS) {
        th_expect_serving(port);
        return;
    }
    static const row_t hello = {"still serving", RAW("GET / HTTP/1.1\r\nHost: t\r\n\r\n"), 200,
                                "Hello, World!", 0};
    assert_true(run_row(port, &hello, mode));
}

/* ---- the three modes ---- */

static int start_in_process(th_fixture_t *fx, int one_process)
{
    th_server_t *s = th_new_server(fx);
    if (!one_process) {
        static const char *const dirs[] = {"OneProcess",
                                           "Off",
                                           "StartServers",
                                           "2",
                                           "MinSpareServers",
                                           "1",
                                           "MaxSpareServers",
                                           "4",
                                           "MinSpareThreads",
                                           "1",
                                           "MaxSpareThreads",
                                           "60",
                                           NULL};
        for (size_t i = 0; dirs[i]; i += 2)
            assert_int_equal(th_server_set(s, dirs[i], dirs[i + 1]), 0);
    }
    if (th_server_start(s) != 0)
        fail_msg("start: %s", s->errmsg);
    return s->port;
}

static int start_mpmserve(th_fixture_t *fx)
{
    if (!th_strategy_built(fx->strategy))
        skip();
    const char *const args[] = {"--mpm", fx->strategy,     "--listen", "127.0.0.1:0",
                                "--set", "StartServers=2", "--set",    "MinSpareThreads=1",
                                NULL};
    return th_start_mpmserve(fx, args)->port;
}

/* mpmserve with a TLS listener only; `more`: NULL or one --set value. */
static int start_mpmserve_tls(th_fixture_t *fx, const char *more)
{
    if (!th_strategy_built(fx->strategy))
        skip();
    if (!g_tls_ctx)
        skip(); /* no openssl tool to make the certificate */
    const char *const args[] = {"--mpm",  fx->strategy, "--tls-listen", "127.0.0.1:0",
                                "--cert", g_cert.cert,  "--key",        g_cert.key,
                                "--set",  "StartServers=2", "--set",   "MinSpareThreads=1",
                                more ? "--set" : NULL,  more,          NULL};
    return th_start_mpmserve(fx, args)->port;
}

static void rows_one_process(void **state)
{
    th_fixture_t *fx = *state;
    run_rows(start_in_process(fx, 1), ONE_PROCESS);
}

static void rows_master_in_test(void **state)
{
    th_fixture_t *fx = *state;
    run_rows(start_in_process(fx, 0), MASTER_IN_TEST);
}

static void rows_mpmserve(void **state)
{
    th_fixture_t *fx = *state;
    run_rows(start_mpmserve(fx), MPMSERVE);
}

static void rows_mpmserve_tls(void **state)
{
    th_fixture_t *fx = *state;
    run_rows(start_mpmserve_tls(fx, NULL), MPMSERVE_TLS);
}

/* event's TLSPinning Off: the rows' connections are stepped on the loop. */
static void rows_mpmserve_tls_parked(void **state)
{
    th_fixture_t *fx = *state;
    run_rows(start_mpmserve_tls(fx, "TLSPinning=Off"), MPMSERVE_TLS);
}

/* ---- what the handler sees ---- */

static char *get_body(int port, const char *raw, int status)
{
    tc_response_t r;
    th_request(port, raw, &r);
    assert_int_equal(r.status, status);
    char *body = strdup(r.body);
    tc_response_free(&r);
    return body;
}

/* RFC 9112 §3.2.2: the handler sees the path and query of an absolute-form
 * target, and its authority as the host (the Host field is replaced). */
static void absolute_form_reaches_handler(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_in_process(fx, 1);
    char *info = get_body(
        port, "GET http://Example.test:8080/info?a=1&b HTTP/1.1\r\nHost: other\r\n\r\n", 200);
    assert_non_null(strstr(info, "\npath=/info\n"));
    assert_non_null(strstr(info, "\nquery=a=1&b\n"));
    assert_non_null(strstr(info, "target=http://Example.test:8080/info?a=1&b\n"));
    free(info);
    char *hdrs =
        get_body(port, "GET http://example.test:81/headers HTTP/1.1\r\nHost: other\r\n\r\n", 200);
    assert_non_null(strstr(hdrs, "Host: example.test:81\n"));
    assert_null(strstr(hdrs, "other"));
    free(hdrs);
    hdrs = get_body(port, "GET http://h10.test/headers HTTP/1.0\r\n\r\n", 200);
    assert_non_null(strstr(hdrs, "Host: h10.test\n"));
    free(hdrs);
    info = get_body(port, "GET / HTTP/1.3\r\nHost: t\r\n\r\n", 200);
    free(info);
    info = get_body(port, "GET /info HTTP/1.7\r\nHost: t\r\n\r\n", 200);
    assert_non_null(strstr(info, "\nversion=11\n"));
    free(info);
}

/* The same through mpmserve: /stream?n=2 only answers two lines if both
 * the path and the query of the absolute-form target arrived. */
static void absolute_form_reaches_mpmserve(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_mpmserve(fx);
    char *body = get_body(port, "GET http://x.test:1/stream?n=2 HTTP/1.1\r\nHost: y\r\n\r\n", 200);
    assert_string_equal(body, "chunk 1 of 2\nchunk 2 of 2\n");
    free(body);
}

/* No body after HEAD, 204 or 304: a pipelined request behind each is read
 * as the next response, which fails if any body byte was sent. */
static void no_body_statuses(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_in_process(fx, 1);
    tc_conn_t *c = th_connect(fx, port);
    th_send(c, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /status/304 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    static const int want[] = {200, 204, 304, 200};
    for (int i = 0; i < 4; i++) {
        tc_response_t r;
        th_read(c, &r, i == 0);
        assert_int_equal(r.status, want[i]);
        if (i == 1 || i == 2) {
            assert_null(tc_header(&r, "Content-Length"));
            assert_null(tc_header(&r, "Transfer-Encoding"));
        }
        if (i == 3)
            assert_string_equal(r.body, "Hello, World!");
        tc_response_free(&r);
    }
}

/* A chunk extension trickled a byte at a time is cut off at 4 KiB with a
 * 400 (issue 8, defect 3), it does not hold the connection. */
static void trickled_chunk_extension_is_cut_off(void **state)
{
    th_fixture_t *fx = *state;
    int port = start_in_process(fx, 1);
    tc_conn_t *c = th_connect(fx, port);
    th_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    static char ext[4200];
    memset(ext, 'e', sizeof(ext));
    int rc = tc_send_pieces(c, ext, sizeof(ext), 512, 1);
    assert_true(rc == TC_OK || rc == TC_RESET);
    tc_response_t r;
    assert_int_equal(tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS), TC_OK);
    assert_int_equal(r.status, 400);
    tc_response_free(&r);
    th_expect_closed(c);
}

/* The certificate for the TLS rows; without the openssl tool those cases
 * skip (g_tls_ctx stays NULL). */
static int group_setup(void **state)
{
    (void)state;
    if (!tcert_tool_available())
        return 0;
    if (tcert_dir_make(g_cert_dir, sizeof g_cert_dir) != 0 ||
        tcert_make(g_cert_dir, "a", "a.test", NULL, &g_cert) != 0)
        return -1;
    g_tls_ctx = ttls_ctx_new(g_cert.cert, 0);
    return g_tls_ctx ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    SSL_CTX_free(g_tls_ctx);
    tcert_dir_remove(g_cert_dir);
    return 0;
}

#define EVENT_CASE(f) TH_CASE(f, "event")

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX(rows_one_process),
        TH_MATRIX(rows_master_in_test),
        TH_MATRIX(rows_mpmserve),
        TH_MATRIX(rows_mpmserve_tls),
        EVENT_CASE(rows_mpmserve_tls_parked),
        TH_MATRIX(absolute_form_reaches_handler),
        TH_MATRIX(absolute_form_reaches_mpmserve),
        TH_MATRIX(no_body_statuses),
        TH_MATRIX(trickled_chunk_extension_is_cut_off),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
