/* The request as the handler sees it: accessors and the request body. */
#include "conn.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

void mpm__request_start(mpm_request_t *req, mpm__conn_t *c)
{
    memset(req, 0, sizeof(*req));
    req->conn = c;
    req->head = mpm__h1_head(c->h1);
    req->status = 200;
    req->headers = &c->resp_headers;
    req->headers->n = 0;
    req->headers->used = 0;
    req->started_us = mpm__now_us();
    req->wall_us = mpm__wall_us();
    req->id = mpm__request_id_next(c->srv);
}

uint64_t mpm_request_id(const mpm_request_t *req)
{
    return req->id;
}

const char *mpm_request_method(const mpm_request_t *req)
{
    return req->head->method;
}

const char *mpm_request_target(const mpm_request_t *req)
{
    return req->head->target;
}

const char *mpm_request_path(const mpm_request_t *req)
{
    return req->head->path;
}

const char *mpm_request_query(const mpm_request_t *req)
{
    return req->head->query;
}

int mpm_request_version(const mpm_request_t *req)
{
    return req->head->version;
}

const char *mpm_request_header(const mpm_request_t *req, const char *name)
{
    for (unsigned i = 0; i < req->head->nheaders; i++)
        if (strcasecmp(req->head->headers[i].name, name) == 0)
            return req->head->headers[i].value;
    return NULL;
}

size_t mpm_request_header_count(const mpm_request_t *req)
{
    return req->head->nheaders;
}

int mpm_request_header_at(const mpm_request_t *req, size_t i, const char **name, const char **value)
{
    if (i >= req->head->nheaders)
        return MPM_EINVAL;
    if (name)
        *name = req->head->headers[i].name;
    if (value)
        *value = req->head->headers[i].value;
    return 0;
}

int64_t mpm_request_content_length(const mpm_request_t *req)
{
    return req->head->chunked ? -1 : req->head->content_length;
}

/* Both take in a pending command of the master (mpm__server_poll_stop). */
int mpm_request_server_draining(const mpm_request_t *req)
{
    return mpm__server_poll_stop(req->conn->srv) != MPM__STOP_NONE;
}

int mpm_request_server_stopping_now(const mpm_request_t *req)
{
    return mpm__server_poll_stop(req->conn->srv) == MPM__STOP_NOW;
}

mpm_server_t *mpm_request_server(const mpm_request_t *req)
{
    return req->conn->srv;
}

/* ---- addresses: the peer's as accept gave it (access_log.c) ---- */

const char *mpm_request_remote_addr(const mpm_request_t *req)
{
    if (req->conn->remote_port < 0)
        mpm__conn_take_peer(req->conn);
    return req->conn->remote;
}

int mpm_request_remote_port(const mpm_request_t *req)
{
    if (req->conn->remote_port < 0)
        mpm__conn_take_peer(req->conn);
    return req->conn->remote_port;
}

const char *mpm_request_local_addr(const mpm_request_t *req)
{
    mpm__conn_take_local(req->conn);
    return req->conn->local;
}

int mpm_request_local_port(const mpm_request_t *req)
{
    mpm__conn_take_local(req->conn);
    return req->conn->local_port;
}

static const char *transport_info(const mpm_request_t *req, mpm__tp_info_t what)
{
    const mpm__conn_t *c = req->conn;
    return c->tp->info ? c->tp->info(c, what) : NULL;
}

int mpm_request_is_tls(const mpm_request_t *req)
{
    return transport_info(req, MPM__TP_PROTOCOL) != NULL;
}

const char *mpm_request_tls_sni(const mpm_request_t *req)
{
    return transport_info(req, MPM__TP_SNI);
}

const char *mpm_request_tls_protocol(const mpm_request_t *req)
{
    return transport_info(req, MPM__TP_PROTOCOL);
}

const char *mpm_request_tls_cipher(const mpm_request_t *req)
{
    return transport_info(req, MPM__TP_CIPHER);
}

/* ---- request body ---- */

int mpm__request_body_pending(const mpm_request_t *req)
{
    if (req->body_done)
        return 0;
    return req->head->chunked || (uint64_t)req->head->content_length > req->body_received ||
           req->conn->pending_len > 0;
}

/* The body cannot be read further: answer with `status` if the handler has
 * not started a response, and stop using the connection. */
static int body_error(mpm_request_t *req, int status, int err)
{
    req->body_failed = 1;
    if (!req->head_sent) {
        req->status = status;
        req->bytes_sent += mpm__conn_send_error(req->conn, status, req, req->id);
        req->head_sent = req->finished = 1;
    }
    req->conn->broken = 1;
    return err;
}

static int body_status_error(mpm_request_t *req, int status)
{
    if (status == 413)
        return body_error(req, 413, MPM_ETOOLARGE);
    return body_error(req, status, MPM_EPROTO);
}

static void send_continue(mpm_request_t *req)
{
    if (req->continue_sent || req->head_sent || !req->head->expect_continue ||
        !mpm__request_body_pending(req))
        return;
    req->continue_sent = 1;
    struct iovec iov = {.iov_base = MPM__H1_CONTINUE, .iov_len = sizeof(MPM__H1_CONTINUE) - 1};
    (void)mpm__conn_sendv_all(req->conn, &iov, 1);
}

/* The body stopped arriving in time (RequestReadTimeout body=). While the
 * handler reads, the 408 is its answer. Once the response is complete (the
 * rest of the body being discarded for keep-alive) the client has its
 * answer: a second, unsolicited one would read as the answer to its next
 * request, so the connection just ends (serve_request closes lingeringly:
 * the body is still pending). */
static int body_timed_out(mpm_request_t *req)
{
    mpm__log(req->conn->srv, MPM_LOG_INFO, "request body timed out after %llu bytes",
             (unsigned long long)req->body_received);
    if (!req->finished)
        return body_error(req, 408, MPM_ETIMEDOUT);
    req->body_failed = 1;
    return MPM_ETIMEDOUT;
}

/* Reads more of the body into the input buffer, within the body's
 * deadline, which is driven by the clock and the bytes received, so that
 * input producing no body event (chunk framing and extensions) cannot hold
 * the connection either. Returns 0 or an error (answered). */
static int body_fill(mpm_request_t *req)
{
    mpm__conn_t *c = req->conn;
    const mpm__read_timeout_t *t = &c->srv->cfg.s.body_timeout;
    int64_t deadline = mpm__read_deadline(c, t, req->body_started_ms, req->body_wire_bytes);
    ssize_t n = mpm__conn_fill(c, deadline);
    if (n > 0)
        req->body_wire_bytes += (uint64_t)n;
    if (n == MPM_ETIMEDOUT)
        return body_timed_out(req);
    if (n == 0 || n == MPM_ECLOSED)
        return body_error(req, 400, MPM_ECLOSED);
    return 0;
}

/* Makes body bytes available in conn->pending_body. Returns their count,
 * 0 at the end of the body, or an error. */
static ssize_t body_fetch(mpm_request_t *req)
{
    mpm__conn_t *c = req->conn;
    if (!req->body_started_ms)
        req->body_started_ms = mpm__now_ms();
    while (c->pending_len == 0 && !req->body_done) {
        if (req->body_failed || c->broken)
            return MPM_ECLOSED;
        mpm__h1_event_t ev;
        mpm__conn_next_event(c, &ev);
        if (ev.type == MPM__H1_BODY) {
            c->pending_body = ev.data;
            c->pending_len = ev.len;
            req->body_received += ev.len;
        } else if (ev.type == MPM__H1_END) {
            req->body_done = 1;
        } else if (ev.type == MPM__H1_ERROR) {
            return body_status_error(req, ev.status);
        } else {
            int rc = body_fill(req);
            if (rc < 0)
                return rc;
        }
    }
    return (ssize_t)c->pending_len;
}

static ssize_t read_some(mpm_request_t *req, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    send_continue(req);
    ssize_t avail = body_fetch(req);
    if (avail <= 0)
        return avail;
    mpm__conn_t *c = req->conn;
    size_t n = (size_t)avail < len ? (size_t)avail : len;
    memcpy(buf, c->pending_body, n);
    c->pending_body += n;
    c->pending_len -= n;
    return (ssize_t)n;
}

ssize_t mpm_request_read(mpm_request_t *req, void *buf, size_t len)
{
    if (req->body_kept)
        return 0; /* mpm_request_read_body() took it all */
    ssize_t n = read_some(req, buf, len);
    if (n > 0)
        req->body_streamed = 1;
    return n;
}

static int finish_body(mpm_request_t *req, size_t used, const char **body, size_t *len)
{
    req->whole_body[used] = '\0';
    req->whole_len = used;
    req->body_kept = 1;
    *body = req->whole_body;
    *len = used;
    return 0;
}

/* At `max` bytes the body must be over: one more byte means it is too big. */
static int body_ends_here(mpm_request_t *req)
{
    char extra;
    ssize_t n = read_some(req, &extra, 1);
    return n < 0 ? (int)n : n == 0 ? 0 : body_error(req, 413, MPM_ETOOLARGE);
}

/* Doubles buf's capacity, up to ceiling. */
static int grow_body(mpm_request_t *req, size_t *cap, size_t ceiling)
{
    size_t ncap = *cap <= ceiling / 2 ? *cap * 2 : ceiling;
    char *p = realloc(req->whole_body, ncap + 1);
    if (!p)
        return MPM_ENOMEM;
    req->whole_body = p;
    *cap = ncap;
    return 0;
}

/* The buffer starts small and doubles as bytes arrive, never past the
 * declared Content-Length: a client that only announces a large body costs
 * nothing until it sends it. */
#define MPM__BODY_BUF_START 4096

int mpm_request_read_body(mpm_request_t *req, size_t max, const char **body, size_t *len)
{
    if (!body || !len)
        return MPM_EINVAL;
    if (req->body_kept) {
        *body = req->whole_body;
        *len = req->whole_len;
        return 0;
    }
    if (req->body_streamed)
        return MPM_ESTATE; /* part of it is already the handler's */
    if (max == 0)
        max = (size_t)req->conn->srv->cfg.s.limit_request_body;
    if (max == 0)
        max = SIZE_MAX - 1;
    int64_t declared = req->head->chunked ? -1 : req->head->content_length;
    if (declared > 0 && (uint64_t)declared > max)
        return body_error(req, 413, MPM_ETOOLARGE);
    size_t ceiling = declared > 0 ? (size_t)declared : max;
    size_t cap = ceiling < MPM__BODY_BUF_START ? ceiling : MPM__BODY_BUF_START;
    size_t used = 0;
    free(req->whole_body);
    req->whole_body = malloc(cap + 1);
    if (!req->whole_body)
        return MPM_ENOMEM;
    for (;;) {
        int rc = 0;
        if (used == ceiling)
            rc = body_ends_here(req);
        else if (used == cap)
            rc = grow_body(req, &cap, ceiling);
        if (rc < 0 || used == ceiling)
            return rc < 0 ? rc : finish_body(req, used, body, len);
        ssize_t n = read_some(req, req->whole_body + used, cap - used);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return finish_body(req, used, body, len);
        used += (size_t)n;
    }
}

void mpm__request_finish(mpm_request_t *req)
{
    mpm__sb_worker_t *unit = req->conn->unit;
    atomic_fetch_add_explicit(&unit->requests, 1, memory_order_relaxed);
    atomic_store_explicit(&unit->last_used_ms, mpm__now_ms(), memory_order_relaxed);
    mpm__access_log_request(req);
    free(req->whole_body);
    req->whole_body = NULL;
}
