/* Failing and closing responses the way a host does, over real sockets:
 * send_file checks before sending, the body read once (kept for a second
 * read_body), mpm_response_abort/started, Connection: close from a handler,
 * and the error page hook for the library's own answers. */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "harness.h"

/* What the handler saw, for the test thread (in-process servers only). */
static atomic_int seen_started_before, seen_started_after, seen_abort_rc, seen_write_rc,
    seen_second_abort_rc, seen_late_header_rc, seen_late_status_rc, seen_late_send_rc,
    seen_late_end_rc;

static void reply(mpm_request_t *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(mpm_request_t *req, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    mpm_response_add_header(req, "Content-Type", "text/plain");
    mpm_response_send(req, body, strlen(body));
}

/* ---- routes ---- */

static void route_file_checks(th_server_t *s, mpm_request_t *req)
{
    int fd = open(s->file_path, O_RDONLY | O_CLOEXEC);
    int pipefd[2];
    if (fd < 0 || pipe(pipefd) != 0) {
        reply(req, "setup failed");
        return;
    }
    off_t flen = (off_t)s->file_len;
    int bad = mpm_response_send_file(req, 1 << 20, 0, 10); /* no such fd */
    int notreg = mpm_response_send_file(req, pipefd[0], 0, 1);
    int past = mpm_response_send_file(req, fd, 0, s->file_len + 1);
    int off = mpm_response_send_file(req, fd, flen + 1, 0);
    int tail = mpm_response_send_file(req, fd, flen - 5, 6);
    close(pipefd[0]);
    close(pipefd[1]);
    close(fd);
    reply(req, "%d %d %d %d %d started=%d", bad, notreg, past, off, tail,
          mpm_response_started(req));
}

static void route_file_tail(th_server_t *s, mpm_request_t *req)
{
    int fd = open(s->file_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        reply(req, "setup failed");
        return;
    }
    mpm_response_send_file(req, fd, (off_t)s->file_len - 10, 10); /* up to the very end */
    close(fd);
}

static void route_body_twice(mpm_request_t *req)
{
    const char *a, *b;
    size_t alen, blen;
    int rc1 = mpm_request_read_body(req, 0, &a, &alen);
    int rc2 = mpm_request_read_body(req, 0, &b, &blen);
    char tmp[8];
    ssize_t after = mpm_request_read(req, tmp, sizeof tmp);
    reply(req, "%d %d same=%d len=%zu/%zu read=%zd body=%s", rc1, rc2,
          rc1 == 0 && rc2 == 0 && a == b && alen == blen, alen, blen, after, rc1 == 0 ? a : "");
}

static void route_read_then_body(mpm_request_t *req)
{
    char tmp[3];
    ssize_t n = mpm_request_read(req, tmp, sizeof tmp);
    const char *body = NULL;
    size_t len = 0;
    int rc = mpm_request_read_body(req, 0, &body, &len);
    reply(req, "read=%zd body_rc=%d", n, rc);
}

static void route_abort_stream(mpm_request_t *req)
{
    atomic_store(&seen_started_before, mpm_response_started(req));
    mpm_response_write(req, "partial", 7);
    atomic_store(&seen_started_after, mpm_response_started(req));
    atomic_store(&seen_abort_rc, mpm_response_abort(req));
    atomic_store(&seen_write_rc, mpm_response_write(req, "more", 4));
    atomic_store(&seen_second_abort_rc, mpm_response_abort(req));
}

static void route_abort_early(mpm_request_t *req)
{
    mpm_response_add_header(req, "X-Dropped", "yes");
    atomic_store(&seen_abort_rc, mpm_response_abort(req));
    atomic_store(&seen_started_after, mpm_response_started(req));
    atomic_store(&seen_write_rc, mpm_response_send(req, "late", 4));
}

static void route_abort_late(mpm_request_t *req)
{
    reply(req, "whole");
    atomic_store(&seen_abort_rc, mpm_response_abort(req));
}

static void route_close(mpm_request_t *req)
{
    int other = mpm_response_add_header(req, "Connection", "keep-alive");
    int rc = mpm_response_add_header(req, "connection", "Close");
    reply(req, "close=%d other=%d", rc, other);
}

#define MANY_HEADERS 60 /* over 5 KiB of fields: past every first-size buffer */

/* Header MANY_HEADERS i's value: 80 characters that name i. */
static void many_value(int i, char *out, size_t cap)
{
    snprintf(out, cap, "%02d-%.*s", i, 77, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz");
}

/* The headers a handler may not set, refused one by one (the body lists
 * the return codes); then many good ones; after the response, every call
 * that would change it is refused (seen_late_*). */
static void route_many_headers(mpm_request_t *req)
{
    char body[256];
    snprintf(body, sizeof body, "%d %d %d %d %d %d %d %d %d",
             mpm_response_add_header(req, NULL, "v"), mpm_response_add_header(req, "", "v"),
             mpm_response_add_header(req, "Bad Name", "v"),
             mpm_response_add_header(req, "X-Split", "a\r\nInjected: 1"),
             mpm_response_add_header(req, "X-Null", NULL),
             mpm_response_add_header(req, "Content-Length", "5"),
             mpm_response_add_header(req, "Date", "yesterday"), mpm_response_set_status(req, 199),
             mpm_response_set_status(req, 600));
    char name[16], value[96];
    for (int i = 0; i < MANY_HEADERS; i++) {
        snprintf(name, sizeof name, "X-H-%02d", i);
        many_value(i, value, sizeof value);
        mpm_response_add_header(req, name, value);
    }
    mpm_response_set_status(req, 203);
    mpm_response_send(req, body, strlen(body));
    atomic_store(&seen_late_header_rc, mpm_response_add_header(req, "X-Late", "1"));
    atomic_store(&seen_late_status_rc, mpm_response_set_status(req, 500));
    atomic_store(&seen_late_send_rc, mpm_response_send(req, "again", 5));
    atomic_store(&seen_late_end_rc, mpm_response_end(req));
}

/* A streamed body (two writes, then end), whatever the method. */
static void route_streamed(mpm_request_t *req)
{
    mpm_response_write(req, "first,", 6);
    mpm_response_write(req, "second", 6);
    mpm_response_end(req);
}

/* read_body with a ceiling of 4 bytes: a longer declared body is the
 * library's 413, a short one comes back. */
static void route_body_max(mpm_request_t *req)
{
    const char *body;
    size_t len;
    if (mpm_request_read_body(req, 4, &body, &len) < 0)
        return; /* answered by the library */
    reply(req, "%.*s", (int)len, body);
}

/* The request calls a handler may get wrong, with their return codes. */
static void route_request_misuse(mpm_request_t *req)
{
    const char *name = "unset", *value = "unset";
    char buf[4];
    int at = mpm_request_header_at(req, mpm_request_header_count(req), &name, &value);
    ssize_t zero = mpm_request_read(req, buf, 0);
    size_t len;
    int nobody = mpm_request_read_body(req, 0, NULL, &len);
    reply(req, "%d %s %s %zd %d", at, name, value, zero, nobody);
}

static void test_handler(mpm_request_t *req, void *data)
{
    const char *p = mpm_request_path(req);
    if (strcmp(p, "/file-checks") == 0)
        route_file_checks(data, req);
    else if (strcmp(p, "/file-tail") == 0)
        route_file_tail(data, req);
    else if (strcmp(p, "/body-twice") == 0)
        route_body_twice(req);
    else if (strcmp(p, "/read-then-body") == 0)
        route_read_then_body(req);
    else if (strcmp(p, "/abort-stream") == 0)
        route_abort_stream(req);
    else if (strcmp(p, "/abort-early") == 0)
        route_abort_early(req);
    else if (strcmp(p, "/abort-late") == 0)
        route_abort_late(req);
    else if (strcmp(p, "/close") == 0)
        route_close(req);
    else if (strcmp(p, "/many-headers") == 0)
        route_many_headers(req);
    else if (strcmp(p, "/streamed") == 0)
        route_streamed(req);
    else if (strcmp(p, "/body-max") == 0)
        route_body_max(req);
    else if (strcmp(p, "/request-misuse") == 0)
        route_request_misuse(req);
    else
        th_handler(req, data);
}

static th_server_t *start(th_fixture_t *fx, const char *const *dirs, mpm_error_cb ecb)
{
    th_server_t *s = th_new_server(fx);
    for (size_t i = 0; dirs && dirs[i]; i += 2)
        assert_int_equal(th_server_set(s, dirs[i], dirs[i + 1]), 0);
    mpm_config_set_handler(th_server_config(s), test_handler, s);
    if (ecb)
        assert_int_equal(mpm_config_set_error_cb(th_server_config(s), ecb, NULL), 0);
    assert_int_equal(th_server_start(s), 0);
    return s;
}

static void get(tc_conn_t *c, const char *target, tc_response_t *r)
{
    char raw[256];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    th_send(c, raw);
    th_read(c, r, 0);
}

/* ---- send_file ---- */

static void send_file_fails_before_sending(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    get(c, "/file-checks", &r);
    assert_int_equal(r.status, 200);
    char expect[128];
    snprintf(expect, sizeof expect, "%d %d %d %d %d started=0", -EBADF, MPM_EINVAL, MPM_ERANGE,
             MPM_ERANGE, MPM_ERANGE);
    assert_string_equal(r.body, expect); /* the fallback answer, whole */
    tc_response_free(&r);
    /* Nothing stray went out before it: the connection carries on. */
    get(c, "/file-tail", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body, s->file_data + s->file_len - 10, 10);
    tc_response_free(&r);
}

/* ---- the request body, read twice ---- */

static void body_read_once_then_kept(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "POST /body-twice HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "0 0 same=1 len=5/5 read=0 body=hello");
    tc_response_free(&r);
    th_send(c, "POST /read-then-body HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    char expect[64];
    snprintf(expect, sizeof expect, "read=3 body_rc=%d", MPM_ESTATE);
    assert_string_equal(r.body, expect);
    tc_response_free(&r);
    /* The unread rest was discarded: the connection still works. */
    get(c, "/", &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
}

/* ---- abort, started, Connection: close ---- */

static void abort_stream_is_never_complete(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "GET /abort-stream HTTP/1.1\r\nHost: t\r\n\r\n");
    tc_response_t r;
    int rc = tc_read_response(c, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    tc_response_free(&r);
    /* The partial chunk came, the last chunk never: the client sees the
     * connection end short of a complete response. */
    assert_true(rc == TC_CLOSED || rc == TC_RESET);
    assert_non_null(memmem(c->buf, c->len, "partial", 7));
    assert_int_equal(atomic_load(&seen_started_before), 0);
    assert_int_equal(atomic_load(&seen_started_after), 1);
    assert_int_equal(atomic_load(&seen_abort_rc), 0);
    assert_int_equal(atomic_load(&seen_write_rc), MPM_ESTATE);
    assert_int_equal(atomic_load(&seen_second_abort_rc), MPM_ESTATE);

    /* HTTP/1.0: a close would look complete, so the abort resets. */
    tc_conn_t *c10 = th_connect(fx, s->port);
    th_send(c10, "GET /abort-stream HTTP/1.0\r\n\r\n");
    rc = tc_read_response(c10, &r, 0, TC_DEFAULT_TIMEOUT_MS);
    tc_response_free(&r);
    assert_int_equal(rc, TC_RESET);
    th_expect_serving(s->port);
}

static void abort_before_head_sends_500_and_closes(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    get(c, "/abort-early", &r);
    assert_int_equal(r.status, 500);
    assert_null(tc_header(&r, "X-Dropped"));
    assert_true(tc_header_has_token(&r, "Connection", "close"));
    tc_response_free(&r);
    th_expect_closed(c);
    assert_int_equal(atomic_load(&seen_abort_rc), 0);
    assert_int_equal(atomic_load(&seen_started_after), 1);
    assert_int_equal(atomic_load(&seen_write_rc), MPM_ESTATE);

    /* After a complete response, abort is refused and changes nothing. */
    tc_conn_t *c2 = th_connect(fx, s->port);
    get(c2, "/abort-late", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "whole");
    tc_response_free(&r);
    get(c2, "/", &r); /* still kept alive */
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    assert_int_equal(atomic_load(&seen_abort_rc), MPM_ESTATE); /* that handler is done */
}

static void handler_closes_the_connection(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    get(c, "/close", &r);
    assert_int_equal(r.status, 200);
    char expect[64];
    snprintf(expect, sizeof expect, "close=0 other=%d", MPM_EINVAL);
    assert_string_equal(r.body, expect);
    assert_true(tc_header_has_token(&r, "Connection", "close"));
    tc_response_free(&r);
    th_expect_closed(c);
}

/* ---- what a handler may set, and when ---- */

static void handler_headers_checked_and_kept(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    get(c, "/many-headers", &r);
    char expect[128];
    snprintf(expect, sizeof expect, "%d %d %d %d %d %d %d %d %d", MPM_EINVAL, MPM_EINVAL,
             MPM_EINVAL, MPM_EINVAL, MPM_EINVAL, MPM_EINVAL, MPM_EINVAL, MPM_EINVAL, MPM_EINVAL);
    assert_int_equal(r.status, 203);
    assert_string_equal(r.body, expect);
    assert_null(tc_header(&r, "X-Split"));
    assert_null(tc_header(&r, "Injected"));
    assert_null(tc_header(&r, "X-Late"));
    char name[16], value[96];
    for (int i = 0; i < MANY_HEADERS; i++) {
        snprintf(name, sizeof name, "X-H-%02d", i);
        many_value(i, value, sizeof value);
        const char *got = tc_header(&r, name);
        if (!got || strcmp(got, value) != 0)
            fail_msg("%s: \"%s\", expected \"%s\"", name, got ? got : "(none)", value);
    }
    tc_response_free(&r);
    /* Nothing the late calls tried went out: the connection carries on.
     * Its next request is served once that handler has returned. */
    get(c, "/", &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    if (!th_strategy_is_mp(fx->strategy)) { /* the handler ran in this process */
        assert_int_equal(atomic_load(&seen_late_header_rc), MPM_ESTATE);
        assert_int_equal(atomic_load(&seen_late_status_rc), MPM_ESTATE);
        assert_int_equal(atomic_load(&seen_late_send_rc), MPM_ESTATE);
        assert_int_equal(atomic_load(&seen_late_end_rc), MPM_ESTATE);
    }
}

/* A streamed response to HEAD sends its head only, and the connection
 * stays in step: the next response is the next request's. */
static void streamed_head_sends_no_body(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "HEAD /streamed HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 1);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    get(c, "/streamed", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "first,second");
    assert_true(r.chunked);
    tc_response_free(&r);
    th_send(c, "HEAD /streamed HTTP/1.1\r\nHost: t\r\n\r\n");
    th_read(c, &r, 1);
    tc_response_free(&r);
    get(c, "/", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "Hello, World!");
    tc_response_free(&r);
}

/* A client that sent Expect: 100-continue and got a final answer without
 * its body being asked for may or may not send that body now (RFC 9110
 * §10.1.1): the server cannot tell its next bytes apart, so it closes. */
static void unread_expect_continue_body_closes(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
               "Content-Length: 10\r\n\r\n");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200); /* the final answer, no 100 before it */
    assert_true(tc_header_has_token(&r, "Connection", "close"));
    tc_response_free(&r);
    th_expect_closed(c);
}

/* A handler's own ceiling on the body: over it (by Content-Length) the
 * library answers 413 before reading, under it the body is the handler's;
 * request calls made wrong return their errors and change nothing. */
static void read_body_ceiling_and_misuse(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, NULL);
    tc_conn_t *c = th_connect(fx, s->port);
    tc_response_t r;
    th_send(c, "POST /body-max HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "abc");
    tc_response_free(&r);
    th_send(c, "POST /request-misuse HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    th_read(c, &r, 0);
    char expect[64];
    snprintf(expect, sizeof expect, "%d unset unset 0 %d", MPM_EINVAL, MPM_EINVAL);
    assert_string_equal(r.body, expect);
    tc_response_free(&r);
    th_send(c, "POST /body-max HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789");
    th_read(c, &r, 0);
    assert_int_equal(r.status, 413);
    tc_response_free(&r);
    th_expect_serving(s->port);
}

/* ---- the error page hook ---- */

static int json_page(mpm_error_page_t *p, void *data)
{
    (void)data;
    if (p->size < sizeof(*p))
        return 1;
    int n = snprintf(p->body, p->body_cap, "{\"status\":%d,\"id\":%llu,\"method\":\"%s\"}",
                     p->status, (unsigned long long)p->request_id, p->method ? p->method : "");
    p->body_len = (size_t)n;
    p->content_type = "application/json";
    return 0;
}

static void expect_json(const tc_response_t *r, int status, const char *method)
{
    assert_int_equal(r->status, status);
    assert_string_equal(tc_header(r, "Content-Type"), "application/json");
    char prefix[64];
    snprintf(prefix, sizeof prefix, "{\"status\":%d,\"id\":", status);
    assert_true(strncmp(r->body, prefix, strlen(prefix)) == 0);
    char tail[64];
    snprintf(tail, sizeof tail, ",\"method\":\"%s\"}", method);
    size_t tl = strlen(tail);
    assert_true(r->body_len > tl && strcmp(r->body + r->body_len - tl, tail) == 0);
    assert_int_equal(atoll(tc_header(r, "Content-Length")), r->body_len);
}

static void error_pages_come_from_the_host(void **state)
{
    th_fixture_t *fx = *state;
    static const char *const dirs[] = {"LimitRequestBody", "10", "RequestReadTimeout", "header=1",
                                       NULL};
    th_server_t *s = start(fx, dirs, json_page);
    tc_response_t r;
    th_request(s->port, "GET / HTTP/1.1\r\nHost: t\r\nno colon\r\n\r\n", &r);
    expect_json(&r, 400, "");
    tc_response_free(&r);
    th_request(s->port, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", &r);
    expect_json(&r, 413, "");
    tc_response_free(&r);
    th_request(s->port, "GET /noresponse HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    expect_json(&r, 500, "GET");
    tc_response_free(&r);
    /* The handler's own 404 is the handler's: untouched. */
    th_request(s->port, "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "not found\n");
    tc_response_free(&r);
    tc_conn_t *c = th_connect(fx, s->port);
    th_send(c, "GET / HTTP/1.1\r\n"); /* the head never completes */
    th_read(c, &r, 0);
    expect_json(&r, 408, "");
    tc_response_free(&r);
    /* To HEAD, the host's page is announced (its length) but not sent:
     * from the handler's side (500) and from the library's (413). */
    const char *heads[] = {"HEAD /noresponse HTTP/1.1\r\nHost: t\r\n\r\n",
                           "HEAD / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"};
    const int head_status[] = {500, 413};
    for (int i = 0; i < 2; i++) {
        tc_conn_t *h = th_connect(fx, s->port);
        th_send(h, heads[i]);
        th_read(h, &r, 1);
        assert_int_equal(r.status, head_status[i]);
        assert_string_equal(tc_header(&r, "Content-Type"), "application/json");
        assert_true(atoi(tc_header(&r, "Content-Length")) > 0);
        tc_response_free(&r);
        assert_int_equal(h->len, 0); /* nothing after the head, read with it */
        size_t extra = 1;
        assert_int_equal(tc_wait_close(h, TC_DEFAULT_TIMEOUT_MS, &extra), TC_CLOSED);
        assert_int_equal(extra, 0);
    }
}

/* A page for /noresponse?decline is declined (non-zero), one for
 * /noresponse?bad-type names a type with a line break in it: the canned
 * page goes out for both, never the host's bytes. */
static int picky_page(mpm_error_page_t *p, void *data)
{
    (void)data;
    if (p->target && strstr(p->target, "decline"))
        return 1;
    p->body_len = (size_t)snprintf(p->body, p->body_cap, "host page");
    p->content_type = p->target && strstr(p->target, "bad-type") ? "text/html\r\nX-Evil: 1" : "";
    return 0;
}

static void declined_or_bad_page_gives_the_canned_one(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, picky_page);
    const char *targets[] = {"/noresponse?decline", "/noresponse?bad-type", "/noresponse?no-type"};
    for (size_t i = 0; i < 3; i++) {
        char raw[128];
        snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", targets[i]);
        tc_response_t r;
        th_request(s->port, raw, &r);
        assert_int_equal(r.status, 500);
        assert_null(tc_header(&r, "X-Evil"));
        assert_string_equal(r.body, "500 Internal Server Error\n");
        tc_response_free(&r);
    }
}

static int refusing_page(mpm_error_page_t *p, void *data)
{
    (void)data;
    p->body_len = p->body_cap + 1; /* unusable: the canned page goes out */
    return 0;
}

static void unusable_page_gives_the_canned_one(void **state)
{
    th_fixture_t *fx = *state;
    th_server_t *s = start(fx, NULL, refusing_page);
    tc_response_t r;
    th_request(s->port, "GET / HTTP/1.1\r\nHost: t\r\nno colon\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(tc_header(&r, "Content-Type"), "text/plain");
    assert_string_equal(r.body, "400 Bad Request\n");
    tc_response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_MATRIX(send_file_fails_before_sending),
        TH_MATRIX(body_read_once_then_kept),
        TH_MATRIX(abort_stream_is_never_complete),
        TH_MATRIX(abort_before_head_sends_500_and_closes),
        TH_MATRIX(handler_closes_the_connection),
        TH_MATRIX_MP(handler_headers_checked_and_kept),
        TH_MATRIX(streamed_head_sends_no_body),
        TH_MATRIX(unread_expect_continue_body_closes),
        TH_MATRIX(read_body_ceiling_and_misuse),
        TH_MATRIX(error_pages_come_from_the_host),
        TH_MATRIX(unusable_page_gives_the_canned_one),
        TH_MATRIX(declined_or_bad_page_gives_the_canned_one),
    };
    th_apply_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
