/* Slow clients against RequestReadTimeout (httpd's mod_reqtimeout syntax):
 * the head must arrive within its time, extended per MinRate bytes up to a
 * maximum; the body must keep arriving at MinRate bytes/s after its first
 * timeout, while the handler reads it and while the library discards it.
 * A trickle that produces no parse event (a chunk extension) must be cut
 * too: the deadlines are driven by the clock.
 *
 * Timeouts are short (1-4 s) so that the cases run quickly; the bounds
 * checked leave room for a loaded machine but fail when the deadline is
 * gone (the connection then stays open past them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/* Long enough that a broken deadline (never firing) is caught, yet well
 * past any correct one. */
#define GIVE_UP_MS 12000

/* Sends data in pieces of `piece` bytes, one every interval_ms (paced by
 * waiting for the server's answer in between), until everything is sent or
 * the server answers or closes. Returns 1 if the server answered first. */
static int trickle(tc_conn_t *c, const char *data, size_t len, size_t piece, int interval_ms,
                   int64_t give_up_at)
{
    for (size_t off = 0; off < len && tc_now_ms() < give_up_at; off += piece) {
        if (off > 0 && tc_readable(c, interval_ms))
            return 1;
        size_t n = len - off < piece ? len - off : piece;
        if (tc_send(c, data + off, n, 2000) != TC_OK)
            return 1; /* closed or reset: the read tells which */
    }
    return 0;
}

/* Keeps trickling `fill` bytes forever (until the server answers or
 * give_up_at). Returns 1 if it answered. */
static int trickle_forever(tc_conn_t *c, char fill, size_t piece, int interval_ms,
                           int64_t give_up_at)
{
    char buf[256];
    memset(buf, fill, sizeof buf);
    while (tc_now_ms() < give_up_at) {
        if (tc_readable(c, interval_ms))
            return 1;
        if (tc_send(c, buf, piece < sizeof buf ? piece : sizeof buf, 2000) != TC_OK)
            return 1; /* closed or reset: the read tells which */
    }
    return 0;
}

/* Reads the answer: must be `status`, complete, then the server closes.
 * Returns the time it arrived. */
static int64_t expect_status_then_close(tc_conn_t *c, int status)
{
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    int got = r.status;
    tc_response_free(&r);
    int64_t at = tc_now_ms();
    if (rc != TC_OK)
        fail_msg("expected a %d response, got %s", status, tc_result_name(rc));
    assert_int_equal(got, status);
    size_t extra = 0;
    rc = tc_wait_close(c, TC_DEFAULT_TIMEOUT_MS, &extra);
    if (rc != TC_CLOSED && rc != TC_RESET)
        fail_msg("after the %d the connection stayed open (%s)", status, tc_result_name(rc));
    return at;
}

static void expect_within(int64_t start, int64_t at, int64_t lo_ms, int64_t hi_ms, const char *what)
{
    int64_t took = at - start;
    if (took < lo_ms || took > hi_ms)
        fail_msg("%s after %lld ms, expected %lld..%lld ms", what, (long long)took,
                 (long long)lo_ms, (long long)hi_ms);
}

static const char *const head_dirs[] = {"RequestReadTimeout", "header=1-2,MinRate=100", NULL};

/* 5 bytes/s is far below MinRate=100: the head gets 408 at about 1 s. */
static void slow_head_trickle_gets_408(void **state)
{
    th_fixture_t *fx = *state;
    int port = th_start_server(fx, head_dirs)->port;
    int64_t start = tc_now_ms(); /* before the accept that starts the head clock */
    tc_conn_t *c = th_connect(fx, port);
    static const char head[] = "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    if (!trickle(c, head, sizeof head - 1, 1, 200, start + GIVE_UP_MS))
        fail_msg("the whole head went out at 5 bytes/s: no header timeout");
    expect_within(start, expect_status_then_close(c, 408), 800, 3500, "408");
    th_expect_serving(port);
}

/* 1000 bytes/s earns more time than it spends: a head that takes longer
 * than the initial second but less than the maximum is served. */
static void head_fast_enough_earns_extension(void **state)
{
    th_fixture_t *fx = *state;
    const char *const dirs[] = {"RequestReadTimeout", "header=1-6,MinRate=100", NULL};
    int port = th_start_server(fx, dirs)->port;
    char head[2200];
    int len = snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: %01900d\r\n\r\n", 0);
    tc_conn_t *c = th_connect(fx, port);
    int64_t start = tc_now_ms();
    /* 50 bytes every 50 ms: about 2 s for the head. */
    if (trickle(c, head, (size_t)len, 50, 50, start + GIVE_UP_MS))
        fail_msg("the server answered after %lld ms, before the head was complete",
                 (long long)(tc_now_ms() - start));
    int64_t sent = tc_now_ms() - start;
    if (sent < 1200)
        fail_msg("the head went out in %lld ms: not slower than the initial timeout",
                 (long long)sent);
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

/* However fast the bytes come, a head that never ends is cut at the
 * maximum (2 s). */
static void endless_head_cut_at_maximum(void **state)
{
    th_fixture_t *fx = *state;
    int port = th_start_server(fx, head_dirs)->port;
    int64_t start = tc_now_ms(); /* before the accept that starts the head clock */
    tc_conn_t *c = th_connect(fx, port);
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\nX-Endless: ");
    /* 100 bytes every 50 ms = 2000 bytes/s: the 8190-byte field limit would
     * answer (431) only after about 4 s. */
    if (!trickle_forever(c, 'a', 100, 50, start + GIVE_UP_MS))
        fail_msg("no answer to an endless head within %d ms", GIVE_UP_MS);
    expect_within(start, expect_status_then_close(c, 408), 1800, 4500, "408");
}

static const char *const body_dirs[] = {"RequestReadTimeout", "body=1,MinRate=100", NULL};

/* A Content-Length body at 20 bytes/s while the handler reads it: after the
 * first second it falls behind MinRate=100 and gets 408. */
static void slow_body_gets_408_while_handler_reads(void **state)
{
    th_fixture_t *fx = *state;
    int port = th_start_server(fx, body_dirs)->port;
    tc_conn_t *c = th_connect(fx, port);
    int64_t start = tc_now_ms(); /* before the head that starts the body clock */
    th_send(c, "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    if (!trickle_forever(c, 'b', 1, 50, start + GIVE_UP_MS))
        fail_msg("a body at 20 bytes/s was still read after %d ms", GIVE_UP_MS);
    expect_within(start, expect_status_then_close(c, 408), 800, 4000, "408");
    th_expect_serving(port);
}

/* A body that keeps up with MinRate may take longer than the first timeout. */
static void body_at_min_rate_is_read(void **state)
{
    th_fixture_t *fx = *state;
    int port = th_start_server(fx, body_dirs)->port;
    tc_conn_t *c = th_connect(fx, port);
    static char body[1000];
    memset(body, 'c', sizeof body);
    th_send(c, "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    int64_t start = tc_now_ms();
    /* 25 bytes every 50 ms = 500 bytes/s: about 2 s in all. */
    if (trickle(c, body, sizeof body, 25, 50, start + GIVE_UP_MS))
        fail_msg("the server answered after %lld ms, before the body was complete",
                 (long long)(tc_now_ms() - start));
    if (tc_now_ms() - start < 1200)
        fail_msg("the body went out too fast to test the rate");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "1000");
    tc_response_free(&r);
}

/* The handler answers without reading; the library discards the rest of
 * the body to keep the connection alive. Trickled, that rest ends the
 * connection: a clean close and nothing more, since the client already has
 * its complete response (a second, unsolicited 408 would read as the answer
 * to its next request). */
static void slow_body_closed_while_discarded(void **state)
{
    th_fixture_t *fx = *state;
    /* event would read a body this small before running the handler
     * (RequestBodyPrefetch; the client then gets 408 from the loop); the
     * discard path is what this case is about. */
    const char *const dirs[] = {"RequestReadTimeout", "body=1,MinRate=100", "RequestBodyPrefetch",
                                "0", NULL};
    int port = th_start_server(fx, dirs)->port;
    tc_conn_t *c = th_connect(fx, port);
    /* The discard's clock starts as the response goes out, before the
     * client has read it. */
    int64_t start = tc_now_ms();
    th_send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    tc_response_t r;
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    if (!trickle_forever(c, 'd', 1, 50, start + GIVE_UP_MS))
        fail_msg("a discarded body at 20 bytes/s held the connection for %d ms", GIVE_UP_MS);
    expect_within(start, tc_now_ms(), 800, 4000, "the close");
    size_t extra = 0;
    int rc = tc_wait_close(c, TC_DEFAULT_TIMEOUT_MS, &extra);
    if (rc != TC_CLOSED && rc != TC_RESET)
        fail_msg("the connection stayed open (%s)", tc_result_name(rc));
    if (extra)
        fail_msg("%zu bytes after the complete response (an unsolicited answer)", extra);
    th_expect_serving(port);
}

/* A chunk extension trickled a byte at a time gives the handler no body
 * byte at all; the body's deadline must still end it (408, or 400 if the
 * engine's line limit comes first). */
static void chunk_extension_trickle_is_cut(void **state)
{
    th_fixture_t *fx = *state;
    int port = th_start_server(fx, body_dirs)->port;
    tc_conn_t *c = th_connect(fx, port);
    th_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=");
    int64_t start = tc_now_ms();
    if (!trickle_forever(c, 'e', 1, 100, start + GIVE_UP_MS))
        fail_msg("a trickled chunk extension held the connection for %d ms", GIVE_UP_MS);
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    int status = r.status;
    tc_response_free(&r);
    if (rc != TC_OK)
        fail_msg("expected 408 or 400, got %s", tc_result_name(rc));
    if (status != 408 && status != 400)
        fail_msg("expected 408 or 400, got %d", status);
    expect_within(start, tc_now_ms(), 800, 4000, "the answer");
}

/* ---- multi-process: the same deadlines in forked children ---- */

static void multi_process_slow_clients_get_408(void **state)
{
    th_fixture_t *fx = *state;
    if (strcmp(fx->strategy, "event") == 0 && !th_strategy_built("event"))
        skip();
    const char *const args[] = {
        "--mpm",       fx->strategy, "--listen",
        "127.0.0.1:0", "--set",      "RequestReadTimeout=header=1-2,MinRate=100 body=1,MinRate=100",
        NULL};
    int port = th_start_mpmserve(fx, args)->port;

    int64_t start = tc_now_ms();
    tc_conn_t *c = th_connect(fx, port);
    th_send(c, "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    if (!trickle_forever(c, 'h', 1, 200, start + GIVE_UP_MS))
        fail_msg("a head at 5 bytes/s was not cut");
    expect_within(start, expect_status_then_close(c, 408), 800, 3500, "head 408");

    c = th_connect(fx, port);
    start = tc_now_ms();
    th_send(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    if (!trickle_forever(c, 'b', 1, 50, start + GIVE_UP_MS))
        fail_msg("a body at 20 bytes/s was not cut");
    expect_within(start, expect_status_then_close(c, 408), 800, 4000, "body 408");
    th_expect_serving(port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX(slow_head_trickle_gets_408),
        TH_MATRIX(head_fast_enough_earns_extension),
        TH_MATRIX(endless_head_cut_at_maximum),
        TH_MATRIX(slow_body_gets_408_while_handler_reads),
        TH_MATRIX(body_at_min_rate_is_read),
        TH_MATRIX(slow_body_closed_while_discarded),
        TH_MATRIX(chunk_extension_trickle_is_cut),
        TH_MATRIX(multi_process_slow_clients_get_408),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
