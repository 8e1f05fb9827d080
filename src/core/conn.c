/* A connection as a resumable state machine: every step does what it can
 * without blocking on the socket and says what the connection waits for
 * next (conn.h: mpm__conn_state_t). prefork and worker drive it with poll()
 * (mpm__conn_serve, below); the event loop drives the same steps from its
 * callbacks and hands MPM__CONN_HANDLER to a pool thread. */
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

/* ---- the states every path ends in ---- */

static mpm__conn_state_t enter_linger(mpm__conn_t *c)
{
    c->tp->shutdown_write(c);
    c->in_start = c->in_end = 0;
    c->pending_len = 0;
    c->deadline = mpm__now_ms() + MPM__LINGER_MS;
    c->wait_events = POLLIN;
    return c->state = MPM__CONN_LINGER;
}

/* Reads and drops what the client still sends, until it closes. */
static mpm__conn_state_t linger_step(mpm__conn_t *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = c->tp->recv(c, sink, sizeof(sink));
        if (n > 0)
            continue;
        if (mpm__would_block(n)) {
            c->wait_events = mpm__want_events(n);
            return MPM__CONN_LINGER;
        }
        return c->state = MPM__CONN_CLOSE;
    }
}

static mpm__conn_state_t next_request(mpm__conn_t *c);

/* The output queue is empty: on to what the response decided. */
static mpm__conn_state_t after_output(mpm__conn_t *c)
{
    mpm__conn_out_release(c);
    switch ((mpm__conn_after_t)c->after_write) {
    case MPM__AFTER_NEXT:
        return next_request(c);
    case MPM__AFTER_LINGER:
        return enter_linger(c);
    default:
        return c->state = MPM__CONN_CLOSE;
    }
}

/* Output is queued, or was: wait for it to go out, then go on. */
static mpm__conn_state_t finish_output(mpm__conn_t *c, mpm__conn_after_t after)
{
    c->after_write = (unsigned char)after;
    if (!mpm__conn_out_pending(c))
        return after_output(c);
    if (!c->write_stall_deadline)
        c->write_stall_deadline = mpm__now_ms() + c->srv->cfg.s.timeout_ms;
    c->wait_events = POLLOUT; /* a TLS write may turn out to want input */
    return c->state = MPM__CONN_WRITE;
}

static mpm__conn_state_t write_step(mpm__conn_t *c)
{
    ssize_t n = mpm__conn_out_write(c);
    if (n == 0)
        return after_output(c);
    if (mpm__would_block(n)) {
        c->wait_events = mpm__want_events(n);
        if (!c->write_stall_deadline)
            c->write_stall_deadline = mpm__now_ms() + c->srv->cfg.s.timeout_ms;
        return MPM__CONN_WRITE;
    }
    c->broken = 1;
    return c->state = MPM__CONN_CLOSE;
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
        if (mpm__conn_queue(c, &iov, 1) < 0)
            return 0;
    }
    c->error_queued = 1;
    return len > 0 ? body_len : 0;
}

/* The library answers before any head was complete (a rejected or cut
 * short head, a head timeout): the answer is logged like a request, with
 * an id of its own and no method or target; then a lingering close. */
static mpm__conn_state_t answer_unparsed(mpm__conn_t *c, int status)
{
    uint64_t id = mpm__request_id_next(c->srv);
    int64_t wall = mpm__wall_us();
    if (!c->head_start_us)
        c->head_start_us = mpm__now_us();
    uint64_t sent = mpm__conn_send_error(c, status, NULL, id);
    mpm__access_log_unparsed(c, status, id, wall, sent);
    if (!c->error_queued || c->broken)
        return c->state = MPM__CONN_CLOSE;
    return finish_output(c, MPM__AFTER_LINGER);
}

/* ---- reading a head ---- */

/* The deadline of a wait for input: a kept-alive connection waits
 * KeepAliveTimeout for its first byte; a new connection's first request is
 * timed as a head from the accept, as mod_reqtimeout does; a head begun
 * has RequestReadTimeout header=, from its first byte, growing with the
 * bytes received. A drain window cuts idle waits short. */
static int64_t input_deadline(const mpm__conn_t *c)
{
    const mpm__settings_t *s = &c->srv->cfg.s;
    if (c->discarding)
        return mpm__read_deadline(c, &s->body_timeout, c->prefetch_started_ms, c->head_bytes);
    if (c->head_start_ms)
        return mpm__read_deadline(c, &s->header_timeout, c->head_start_ms, c->head_bytes);
    int64_t d = c->nrequests ? c->idle_since_ms + s->keepalive_timeout_ms
                             : mpm__read_deadline(c, &s->header_timeout, c->accepted_ms, 0);
    return c->draining ? min64(d, c->drain_deadline) : d;
}

/* The first byte of a head: its clock starts (from the accept for the
 * connection's first request). */
static void head_begins(mpm__conn_t *c)
{
    c->head_start_ms = c->nrequests ? mpm__now_ms() : c->accepted_ms;
    c->head_start_us = c->nrequests ? mpm__now_us() : c->accepted_us;
    c->head_bytes = 0;
}

static mpm__conn_state_t wait_for_input(mpm__conn_t *c, short events)
{
    c->wait_events = events;
    c->deadline = input_deadline(c);
    int idle = !c->head_start_ms && !c->discarding && c->nrequests && c->in_start == c->in_end &&
               !c->pending_len;
    return c->state = idle ? MPM__CONN_PARK : MPM__CONN_READ;
}

static mpm__conn_state_t head_ready(mpm__conn_t *c);

/* The input ended before a complete head: a cut-short head is answered
 * (400), an idle connection just closes. */
static mpm__conn_state_t input_ended(mpm__conn_t *c, ssize_t n)
{
    if (n == 0 && c->head_start_ms && mpm__h1_eof(c->h1))
        return answer_unparsed(c, 400);
    return c->state = MPM__CONN_CLOSE;
}

/* One engine event while the rest of a body is dropped: 1 to go on, 0 when
 * keep-alive is given up (too much left, or bad framing: the response is
 * out, so no second answer; a lingering close). */
static int discard_event(mpm__conn_t *c, const mpm__h1_event_t *ev)
{
    if (ev->type == MPM__H1_BODY) {
        if (ev->len > c->discard_left)
            return 0;
        c->discard_left -= ev->len;
        return 1;
    }
    if (ev->type != MPM__H1_END)
        return 0;
    c->discarding = 0;
    mpm__h1_next(c->h1);
    c->head_bytes = 0;
    c->idle_since_ms = mpm__now_ms();
    return 1;
}

/* Feeds what is buffered to the engine and reads what the socket has,
 * without blocking, until a head is complete or the socket is dry. */
static mpm__conn_state_t input_step(mpm__conn_t *c, int may_read)
{
    for (;;) {
        mpm__h1_event_t ev;
        mpm__conn_next_event(c, &ev);
        if (c->discarding && ev.type != MPM__H1_NEED_MORE) {
            if (!discard_event(c, &ev))
                return enter_linger(c);
            continue;
        }
        if (ev.type == MPM__H1_ERROR) {
            mpm__log(c->srv, MPM_LOG_INFO, "bad request (%d): %s", ev.status, ev.why ? ev.why : "");
            if (!c->head_start_ms)
                head_begins(c);
            return answer_unparsed(c, ev.status);
        }
        if (ev.type != MPM__H1_NEED_MORE)
            return head_ready(c);
        if (!c->head_start_ms && !mpm__h1_idle(c->h1))
            head_begins(c);
        if (!may_read && c->tp->pending(c) == 0)
            return wait_for_input(c, POLLIN);
        may_read = 1;
        ssize_t n = mpm__conn_try_fill(c);
        if (n > 0) {
            if (c->head_start_ms || c->discarding)
                c->head_bytes += (uint64_t)n;
            continue;
        }
        if (mpm__would_block(n))
            return wait_for_input(c, mpm__want_events(n));
        return input_ended(c, n);
    }
}

/* After a request: the next one may already be buffered (pipelined); if
 * not, wait for it without trying a read that would only say EAGAIN. */
static mpm__conn_state_t next_request(mpm__conn_t *c)
{
    c->head_start_ms = 0;
    c->head_start_us = 0;
    c->idle_since_ms = mpm__now_ms();
    if (!c->draining && mpm__server_stopping(c->srv) == MPM__STOP_GRACEFUL)
        mpm__conn_start_draining(c);
    return input_step(c, c->discarding || c->in_start < c->in_end);
}

/* ---- a small body read before its handler (event) ---- */

static int prefetch_wanted(const mpm__conn_t *c)
{
    const mpm__h1_head_t *h = mpm__h1_head(c->h1);
    return c->prefetch_max && !h->chunked && !h->expect_continue && h->content_length > 0 &&
           (uint64_t)h->content_length <= c->prefetch_max &&
           c->in_end - c->in_start < (uint64_t)h->content_length;
}

static mpm__conn_state_t prefetch_step(mpm__conn_t *c);

static mpm__conn_state_t head_ready(mpm__conn_t *c)
{
    if (!prefetch_wanted(c))
        return c->state = MPM__CONN_HANDLER;
    if (mpm__conn_reserve_input(c, (size_t)mpm__h1_head(c->h1)->content_length) < 0)
        return c->state = MPM__CONN_HANDLER; /* the handler reads it the usual way */
    /* From here head_bytes counts body bytes, timed by RequestReadTimeout
     * body= from the end of the head. */
    c->prefetch_started_ms = mpm__now_ms();
    c->head_bytes = 0;
    c->state = MPM__CONN_PREFETCH;
    return prefetch_step(c);
}

static mpm__conn_state_t prefetch_step(mpm__conn_t *c)
{
    uint64_t want = (uint64_t)mpm__h1_head(c->h1)->content_length;
    for (;;) {
        if (c->in_end - c->in_start >= want)
            return c->state = MPM__CONN_HANDLER;
        ssize_t n = mpm__conn_try_fill(c);
        if (n > 0) {
            c->head_bytes += (uint64_t)n;
            continue;
        }
        if (!mpm__would_block(n)) /* the handler finds the body cut short */
            return c->state = MPM__CONN_HANDLER;
        c->wait_events = mpm__want_events(n);
        c->deadline = mpm__read_deadline(c, &c->srv->cfg.s.body_timeout, c->prefetch_started_ms,
                                         c->head_bytes);
        return MPM__CONN_PREFETCH;
    }
}

/* ---- the handler ---- */

static int server_wants_keepalive(const mpm__conn_t *c)
{
    const mpm__settings_t *s = &c->srv->cfg.s;
    if (!s->keepalive || c->draining || mpm__server_stopping(c->srv))
        return 0;
    return s->max_keepalive_requests == 0 || c->nrequests < s->max_keepalive_requests;
}

/* Where the connection goes after its response: the next request, a
 * lingering close (unread input would turn our close into a reset that can
 * destroy the answer in flight), or a close. */
static mpm__conn_after_t after_response(mpm__conn_t *c, const mpm_request_t *req)
{
    if (c->error_queued) {
        c->broken = 0; /* set only to refuse the handler's I/O after the answer */
        return MPM__AFTER_LINGER;
    }
    if (req->keepalive && !c->broken && !req->body_failed)
        return MPM__AFTER_NEXT;
    if (!c->broken && (mpm__request_body_pending(req) || c->in_start < c->in_end))
        return MPM__AFTER_LINGER;
    return MPM__AFTER_CLOSE;
}

/* Before the next request, what the handler left of the body must be read
 * and dropped (at most MPM__CONN_DISCARD_MAX bytes of body in all, within
 * RequestReadTimeout body=); it is the input states' job, not the
 * handler's thread's. */
static mpm__conn_after_t discard_rest(mpm__conn_t *c, const mpm_request_t *req)
{
    if (!mpm__request_body_pending(req)) {
        mpm__h1_next(c->h1);
        return MPM__AFTER_NEXT;
    }
    if (req->body_received > MPM__CONN_DISCARD_MAX)
        return MPM__AFTER_LINGER;
    c->discarding = 1;
    c->discard_left = MPM__CONN_DISCARD_MAX - req->body_received;
    c->pending_len = 0;
    c->prefetch_started_ms = req->body_started_ms ? req->body_started_ms : mpm__now_ms();
    c->head_bytes = req->body_wire_bytes;
    return MPM__AFTER_NEXT;
}

mpm__conn_state_t mpm__conn_run_request(mpm__conn_t *c, mpm__sb_worker_t *unit)
{
    c->unit = unit;
    if (!c->counted) {
        c->counted = 1;
        atomic_fetch_add_explicit(&unit->connections, 1, memory_order_relaxed);
    }
    mpm_request_t req;
    c->nrequests++;
    mpm__request_start(&req, c);
    req.keepalive = server_wants_keepalive(c);
    mpm__sb_set_worker_state(unit, MPM__SB_WRITING);
    c->srv->cfg.handler(&req, c->srv->cfg.handler_data);
    mpm__response_complete(&req);
    mpm__request_finish(&req);
    mpm__conn_after_t after = after_response(c, &req);
    if (after == MPM__AFTER_NEXT)
        after = discard_rest(c, &req);
    if (c->broken)
        return c->state = MPM__CONN_CLOSE;
    return finish_output(c, after);
}

/* ---- opening ---- */

/* One step of the transport's handshake, bounded by the first head's
 * deadline (RequestReadTimeout header= from the accept, as mod_reqtimeout
 * times a TLS handshake); then the first request. */
static mpm__conn_state_t handshake_step(mpm__conn_t *c)
{
    int rc = c->tp->handshake(c);
    if (mpm__would_block(rc)) {
        if (!c->handshake_deadline)
            c->handshake_deadline =
                mpm__read_deadline(c, &c->srv->cfg.s.header_timeout, c->accepted_ms, 0);
        c->wait_events = mpm__want_events(rc);
        return c->state = MPM__CONN_HANDSHAKE;
    }
    if (rc < 0)
        return c->state = MPM__CONN_CLOSE;
    return input_step(c, 1);
}

/* Small responses go out in one segment each; without NODELAY the second
 * write of a streamed response would wait for the client's delayed ACK. */
static void set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

mpm__conn_t *mpm__conn_new(mpm_server_t *srv, const mpm__accepted_t *a)
{
    mpm__conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        mpm__log(srv, MPM_LOG_ERROR, "out of memory for a connection");
        return NULL;
    }
    c->srv = srv;
    c->fd = a->fd;
    c->tp = srv->listeners[a->listener].tp;
    c->accepted_ms = mpm__now_ms();
    c->accepted_us = mpm__now_us();
    c->remote_port = c->local_port = -1;
    c->file_fd = -1;
    c->peer_len = a->peer_len;
    memcpy(&c->peer, &a->peer, sizeof(c->peer));
    set_nodelay(a->fd);
    return c;
}

mpm__conn_state_t mpm__conn_begin(mpm__conn_t *c)
{
    if (c->tp->open(c) < 0)
        return c->state = MPM__CONN_CLOSE;
    return handshake_step(c);
}

/* The caller's close() then sends a reset, not a FIN: the only way to tell
 * a close-delimited body was cut (mpm_response_abort). */
static void reset_on_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

void mpm__conn_free(mpm__conn_t *c)
{
    if (!c)
        return;
    mpm__conn_engine_free(c);
    c->tp->close(c);
    if (c->reset_on_close)
        reset_on_close(c->fd);
    mpm__conn_file_drop(c);
    mpm__resp_headers_free(&c->resp_headers);
    free(c->out);
    free(c->in);
    free(c);
}

/* ---- driving ---- */

mpm__conn_state_t mpm__conn_step(mpm__conn_t *c)
{
    switch (c->state) {
    case MPM__CONN_HANDSHAKE:
        return handshake_step(c);
    case MPM__CONN_READ:
    case MPM__CONN_PARK:
        return input_step(c, 1);
    case MPM__CONN_PREFETCH:
        return prefetch_step(c);
    case MPM__CONN_WRITE:
        return write_step(c);
    case MPM__CONN_LINGER:
        return linger_step(c);
    default:
        return c->state;
    }
}

int64_t mpm__conn_deadline(const mpm__conn_t *c)
{
    switch (c->state) {
    case MPM__CONN_HANDSHAKE:
        return c->handshake_deadline;
    case MPM__CONN_WRITE:
        return c->write_stall_deadline;
    default:
        return c->deadline;
    }
}

mpm__conn_state_t mpm__conn_timed_out(mpm__conn_t *c)
{
    switch (c->state) {
    case MPM__CONN_READ:
        if (c->discarding) {
            /* The client has its answer: a second, unsolicited one would
             * read as the answer to its next request. */
            mpm__log(c->srv, MPM_LOG_INFO, "request body timed out while discarded");
            return enter_linger(c);
        }
        if (!c->head_start_ms)
            break; /* a first request that never began */
        mpm__log(c->srv, MPM_LOG_INFO, "request head timed out");
        return answer_unparsed(c, 408);
    case MPM__CONN_PREFETCH:
        mpm__log(c->srv, MPM_LOG_INFO, "request body timed out after %llu bytes",
                 (unsigned long long)c->head_bytes);
        return answer_unparsed(c, 408);
    case MPM__CONN_HANDSHAKE:
        mpm__log(c->srv, MPM_LOG_INFO, "handshake not done by its deadline: closing");
        break;
    case MPM__CONN_WRITE:
        mpm__log(c->srv, MPM_LOG_INFO, "client took no response bytes for Timeout: closing");
        c->broken = 1;
        break;
    default:
        break;
    }
    return c->state = MPM__CONN_CLOSE;
}

mpm__conn_state_t mpm__conn_drain(mpm__conn_t *c)
{
    if (!c->draining)
        mpm__conn_start_draining(c);
    if (c->state == MPM__CONN_PARK || (c->state == MPM__CONN_READ && !c->head_start_ms))
        c->deadline = input_deadline(c);
    return c->state;
}

/* ---- the blocking driver (prefork, worker, pinned connections) ---- */

static mpm__sb_state_t unit_state(mpm__conn_state_t st)
{
    switch (st) {
    case MPM__CONN_PARK:
        return MPM__SB_KEEPALIVE;
    case MPM__CONN_LINGER:
        return MPM__SB_CLOSING;
    case MPM__CONN_WRITE:
        return MPM__SB_WRITING;
    default:
        return MPM__SB_READING;
    }
}

/* Waits for what the connection wants and takes the next step. A
 * kept-alive connection holding buffers waits a moment first; if still
 * silent, it parks and waits the rest without them. */
static mpm__conn_state_t drive_blocking(mpm__conn_t *c, mpm__sb_worker_t *unit)
{
    if (c->state == MPM__CONN_HANDLER)
        return mpm__conn_run_request(c, unit);
    mpm__sb_set_worker_state(unit, unit_state(c->state));
    int64_t deadline = mpm__conn_deadline(c);
    int64_t until = deadline;
    if (c->state == MPM__CONN_PARK && c->in)
        until = min64(deadline, mpm__now_ms() + MPM__CONN_PARK_AFTER_MS);
    switch (mpm__conn_wait(c, c->wait_events, until)) {
    case MPM__WAIT_READY:
        return mpm__conn_step(c);
    case MPM__WAIT_DRAIN:
        return mpm__conn_drain(c);
    case MPM__WAIT_TIMEOUT:
        if (until < deadline) {
            mpm__conn_park(c);
            return c->state;
        }
        return mpm__conn_timed_out(c);
    default:
        c->broken = 1;
        return c->state = MPM__CONN_CLOSE;
    }
}

void mpm__conn_serve_pinned(mpm__conn_t *c, mpm__sb_worker_t *unit)
{
    c->unit = unit;
    c->counted = 1;
    atomic_fetch_add_explicit(&unit->connections, 1, memory_order_relaxed);
    if (mpm__server_stopping(c->srv) == MPM__STOP_GRACEFUL)
        mpm__conn_start_draining(c);
    mpm__conn_state_t st = mpm__conn_begin(c);
    while (st != MPM__CONN_CLOSE)
        st = drive_blocking(c, unit);
}

void mpm__conn_serve(mpm_server_t *srv, const mpm__accepted_t *a, mpm__sb_worker_t *unit)
{
    mpm__conn_t *c = mpm__conn_new(srv, a);
    if (!c)
        return;
    mpm__conn_serve_pinned(c, unit);
    mpm__conn_free(c);
}
