/* Serving one connection: read a request head, run the handler, keep alive
 * or close. Strategy-neutral: prefork children, worker threads and event
 * pool threads all end up here for the blocking part of a connection. */
#include "conn.h"
#include "fdreg.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Lingering close: after an error answer with unread input, keep reading
 * (and discarding) this long so the client reads our response instead of a
 * reset caused by data arriving on a closed socket. */
#define MPM__LINGER_MS 2000

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

void mpm__conn_start_draining(mpm__conn_t *c)
{
    c->draining = 1;
    c->drain_deadline = mpm__now_ms() + mpm__drain_window_ms(c->srv);
}

static void linger_close(mpm__conn_t *c)
{
    mpm__sb_set_worker_state(c->unit, MPM__SB_CLOSING);
    c->tp->shutdown_write(c);
    int64_t deadline = mpm__now_ms() + MPM__LINGER_MS;
    for (;;) {
        c->in_start = c->in_end = 0;
        c->pending_len = 0;
        ssize_t n = mpm__conn_fill(c, deadline);
        if (n <= 0 && n != MPM_EAGAIN)
            return;
    }
}

/* Big enough for the host's largest page (4096 bytes) and its head. */
#define MPM__ERROR_RESPONSE_MAX 6144

uint64_t mpm__conn_send_error(mpm__conn_t *c, int status, const mpm_request_t *req, uint64_t id)
{
    char buf[MPM__ERROR_RESPONSE_MAX];
    size_t body_len = 0;
    int len = mpm__error_response(c, status, req, id, buf, sizeof(buf), &body_len);
    if (len > 0) {
        struct iovec iov = {.iov_base = buf, .iov_len = (size_t)len};
        if (mpm__conn_sendv_all(c, &iov, 1) < 0)
            return 0;
    }
    linger_close(c);
    return len > 0 ? body_len : 0;
}

/* The library answers before any head was complete (a rejected or cut
 * short head, a head timeout): the answer is logged like a request, with
 * an id of its own and no method or target. */
static void answer_unparsed(mpm__conn_t *c, int status)
{
    uint64_t id = mpm__request_id_next(c->srv);
    int64_t wall = mpm__wall_us();
    if (!c->head_start_us)
        c->head_start_us = mpm__now_us();
    uint64_t sent = mpm__conn_send_error(c, status, NULL, id);
    mpm__access_log_unparsed(c, status, id, wall, sent);
}

/* Deadline of the wait for the next request: a kept-alive connection waits
 * KeepAliveTimeout for its first byte; a new connection's first request is
 * timed as a head from the accept, as mod_reqtimeout does. */
static int64_t idle_deadline(const mpm__conn_t *c, int64_t now)
{
    const mpm__settings_t *s = &c->srv->cfg.s;
    int64_t d = c->nrequests ? now + s->keepalive_timeout_ms
                             : mpm__read_deadline(c, &s->header_timeout, c->accepted_ms, 0);
    return c->draining ? min64(d, c->drain_deadline) : d;
}

/* Handles the end of the input before a complete head. Returns 0 (close). */
static int head_cut_short(mpm__conn_t *c, ssize_t n, int idle)
{
    if (n == MPM_ETIMEDOUT && !idle) {
        mpm__log(c->srv, MPM_LOG_INFO, "request head timed out");
        answer_unparsed(c, 408);
    } else if (n == 0 && !idle && mpm__h1_eof(&c->h1)) {
        answer_unparsed(c, 400);
    }
    return 0;
}

/* Reads until the engine reports a request head (1) or an error it must
 * answer (1, ev->type == ERROR); returns 0 when the connection is done.
 * The head's deadline (RequestReadTimeout header=) runs from its first byte
 * (from the accept for a connection's first request) and grows with the
 * bytes received, per MinRate, up to its maximum. */
static int read_head(mpm__conn_t *c, mpm__h1_event_t *ev)
{
    const mpm__read_timeout_t *t = &c->srv->cfg.s.header_timeout;
    int64_t started = mpm__now_ms();
    int64_t head_start = c->nrequests ? 0 : c->accepted_ms;
    uint64_t head_bytes = 0;
    int reading = 0;
    c->head_start_us = 0;
    if (!c->draining && mpm__server_stopping(c->srv) == MPM__STOP_GRACEFUL)
        mpm__conn_start_draining(c);
    if (c->nrequests)
        mpm__sb_set_worker_state(c->unit, MPM__SB_KEEPALIVE);
    for (;;) {
        mpm__conn_next_event(c, ev);
        if (ev->type != MPM__H1_NEED_MORE)
            return 1;
        int idle = mpm__h1_idle(&c->h1);
        if (!idle && !reading) {
            reading = 1;
            head_start = head_start ? head_start : mpm__now_ms();
            c->head_start_us = c->nrequests ? mpm__now_us() : c->accepted_us;
            mpm__sb_set_worker_state(c->unit, MPM__SB_READING);
        }
        int64_t deadline =
            idle ? idle_deadline(c, started) : mpm__read_deadline(c, t, head_start, head_bytes);
        /* A kept-alive connection holding buffers waits a moment first; if
         * still silent, it parks and waits the rest without them. */
        int may_park = idle && c->nrequests && c->in && c->in_start == c->in_end;
        int64_t until = may_park ? min64(deadline, mpm__now_ms() + MPM__CONN_PARK_AFTER_MS) : deadline;
        ssize_t n = mpm__conn_fill(c, until);
        if (n == MPM_ETIMEDOUT && until < deadline) {
            mpm__conn_park(c);
            continue;
        }
        if (n == MPM_EAGAIN)
            continue; /* draining began: deadline re-planned above */
        if (n <= 0)
            return head_cut_short(c, n, idle);
        head_bytes += (uint64_t)n;
    }
}

static int server_wants_keepalive(const mpm__conn_t *c)
{
    const mpm__settings_t *s = &c->srv->cfg.s;
    if (!s->keepalive || c->draining || mpm__server_stopping(c->srv))
        return 0;
    return s->max_keepalive_requests == 0 || c->nrequests < s->max_keepalive_requests;
}

/* Runs the handler for one request. Returns 1 to keep the connection. */
static int serve_request(mpm__conn_t *c)
{
    mpm_request_t req;
    c->nrequests++;
    mpm__request_start(&req, c);
    req.keepalive = server_wants_keepalive(c);
    mpm__sb_set_worker_state(c->unit, MPM__SB_WRITING);
    c->srv->cfg.handler(&req, c->srv->cfg.handler_data);
    mpm__response_complete(&req);
    mpm__request_finish(&req);
    mpm__conn_out_release(c); /* drained: an idle connection keeps no copy */
    int keep = req.keepalive && !c->broken && !req.body_failed;
    /* Unread input (the rest of a body, pipelined requests) would make our
     * close a reset that can destroy the answer in flight: linger instead. */
    if (!keep && !c->broken && (mpm__request_body_pending(&req) || c->in_start < c->in_end))
        linger_close(c);
    mpm__h1_next(&c->h1);
    c->poll_first = c->in_start == c->in_end;
    return keep;
}

static void conn_init(mpm__conn_t *c, mpm_server_t *srv, const mpm__accepted_t *a,
                      mpm__sb_worker_t *unit)
{
    c->srv = srv;
    c->unit = unit;
    c->fd = a->fd;
    c->tp = srv->listeners[a->listener].tp;
    c->tp_state = NULL;
    c->handshake_deadline = 0;
    c->in = NULL;
    c->in_start = c->in_end = 0;
    c->pending_body = NULL;
    c->pending_len = 0;
    c->nrequests = 0;
    c->accepted_ms = mpm__now_ms();
    c->accepted_us = mpm__now_us();
    c->head_start_us = 0;
    c->reset_on_close = 0;
    c->out = NULL;
    c->out_start = c->out_end = c->out_cap = 0;
    c->write_stall_deadline = 0;
    c->draining = 0;
    c->drain_deadline = 0;
    c->broken = 0;
    c->poll_first = 0;
    memset(&c->resp_headers, 0, sizeof(c->resp_headers));
    c->remote[0] = c->local[0] = '\0';
    c->remote_port = c->local_port = -1;
    c->peer_len = a->peer_len;
    memcpy(&c->peer, &a->peer, sizeof(c->peer));
}

/* The transport's handshake, a step at a time, until done or its deadline
 * (the first head's: RequestReadTimeout header= from the accept, as
 * mod_reqtimeout times a TLS handshake). Returns 0 or a negative code. */
static int conn_handshake(mpm__conn_t *c)
{
    for (;;) {
        int rc = c->tp->handshake(c);
        if (!mpm__would_block(rc))
            return rc;
        if (!c->handshake_deadline)
            c->handshake_deadline =
                mpm__read_deadline(c, &c->srv->cfg.s.header_timeout, c->accepted_ms, 0);
        int w = mpm__conn_wait(c, mpm__want_events(rc), c->handshake_deadline);
        if (w == MPM__WAIT_TIMEOUT)
            return MPM_ETIMEDOUT;
        if (w == MPM__WAIT_STOP)
            return MPM_ECLOSED;
    }
}

static int conn_open(mpm__conn_t *c)
{
    int rc = c->tp->open(c);
    return rc < 0 ? rc : conn_handshake(c);
}

static int engine_init(mpm__conn_t *c)
{
    const mpm__settings_t *s = &c->srv->cfg.s;
    mpm__h1_limits_t lim = {
        .request_line = s->limit_request_line,
        .field_size = s->limit_request_field_size,
        .fields = s->limit_request_fields,
        .body = s->limit_request_body,
    };
    return mpm__h1_init(&c->h1, &lim);
}

/* Small responses go out in one segment each; without NODELAY the second
 * write of a streamed response would wait for the client's delayed ACK. */
static void set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The caller's close() then sends a reset, not a FIN: the only way to tell
 * a close-delimited body was cut (mpm_response_abort). */
static void reset_on_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

void mpm__conn_serve(mpm_server_t *srv, const mpm__accepted_t *a, mpm__sb_worker_t *unit)
{
    int fd = a->fd;
    mpm__conn_t *c = malloc(sizeof(*c));
    if (!c) {
        mpm__log(srv, MPM_LOG_ERROR, "out of memory for a connection");
        return;
    }
    conn_init(c, srv, a, unit);
    set_nodelay(fd);
    atomic_fetch_add_explicit(&unit->connections, 1, memory_order_relaxed);
    if (conn_open(c) == 0 && engine_init(c) == 0) {
        mpm__h1_event_t ev;
        while (read_head(c, &ev)) {
            if (ev.type == MPM__H1_ERROR) {
                mpm__log(srv, MPM_LOG_INFO, "bad request (%d): %s", ev.status,
                         ev.why ? ev.why : "");
                answer_unparsed(c, ev.status);
                break;
            }
            if (!serve_request(c))
                break;
        }
        mpm__h1_free(&c->h1);
    }
    c->tp->close(c);
    if (c->reset_on_close)
        reset_on_close(fd);
    mpm__resp_headers_free(&c->resp_headers);
    free(c->out);
    free(c->in);
    free(c);
}
